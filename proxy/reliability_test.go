package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// heapWatcher samples the Go heap (proxy, backend and test share the
// process; the backend and client here allocate nothing that grows with
// the transfer) and keeps the peak.
type heapWatcher struct {
	stop chan struct{}
	done chan struct{}
	peak atomic.Uint64
	base uint64
}

func watchHeap() *heapWatcher {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h := &heapWatcher{stop: make(chan struct{}), done: make(chan struct{}), base: ms.HeapInuse}
	go func() {
		defer close(h.done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > h.peak.Load() {
					h.peak.Store(ms.HeapInuse)
				}
			}
		}
	}()
	return h
}

func (h *heapWatcher) growth() uint64 {
	close(h.stop)
	<-h.done
	if p := h.peak.Load(); p > h.base {
		return p - h.base
	}
	return 0
}

// Slow reader: a client reading a 128 MiB response at a crawl. The proxy's
// memory stays flat: backpressure reaches the upstream socket.
func TestSlowReaderBoundedMemory(t *testing.T) {
	const size = 128 << 20
	chunk := bytes.Repeat([]byte("z"), 64<<10)
	be := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(size))
		for n := 0; n < size; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	_, addr := startProxy(t, "", backendTOML(be.addr(), ""))
	c := dial(t, addr)
	c.SetDeadline(time.Now().Add(60 * time.Second))
	io.WriteString(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	hw := watchHeap()
	// Crawl for a while: 64 KiB every 20 ms.
	buf := make([]byte, 64<<10)
	read := 0
	for i := 0; i < 40; i++ {
		n, err := resp.Body.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		read += n
		time.Sleep(20 * time.Millisecond)
	}
	grown := hw.growth()
	// Then take the rest at full speed: nothing was lost.
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if int(n)+read != size {
		t.Fatalf("read %d of %d body bytes", int(n)+read, size)
	}
	if grown > 16<<20 {
		t.Fatalf("heap grew by %d MiB while a client crawled through a %d MiB response", grown>>20, size>>20)
	}
	t.Logf("owner %s: heap growth %d KiB during the crawl", ownerMode, grown>>10)
}

// Slowloris (scaled): 200 connections trickling header bytes do not slow a
// keep-alive load down much, and are closed at the header timeout.
func TestSlowlorisDoesNotStarveOthers(t *testing.T) {
	be := startBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	_, addr := startProxy(t, "header_timeout = \"1s\"", backendTOML(be.addr(), ""))
	load := func(d time.Duration) int {
		c := dial(t, addr)
		br := bufio.NewReader(c)
		n := 0
		for end := time.Now().Add(d); time.Now().Before(end); n++ {
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
		}
		return n
	}
	base := load(500 * time.Millisecond)
	const slow = 200
	var closed atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < slow; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			msg := "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: "
			// One byte per 100 ms, for longer than the 1 s header timeout.
			for j := 0; j < 20; j++ {
				if _, err := c.Write([]byte{msg[j%len(msg)]}); err != nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			// By now Apex has answered 408 and closed.
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			b, err := io.ReadAll(c)
			if err == nil && (len(b) == 0 || bytes.HasPrefix(b, []byte("HTTP/1.1 408"))) {
				closed.Add(1)
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	under := load(500 * time.Millisecond)
	wg.Wait()
	// The 80 % goal at 2,000 connections is a benchmark figure (see
	// docs/RELIABILITY.md); here, on a shared 2-core machine under -race,
	// the test asserts the load is not starved.
	if under < base/2 {
		t.Errorf("keep-alive load fell from %d to %d requests per 0.5 s under slowloris", base, under)
	}
	if closed.Load() < slow*9/10 {
		t.Errorf("only %d of %d slowloris connections got a 408 or a close at the header timeout", closed.Load(), slow)
	}
	t.Logf("owner %s: keep-alive load %d -> %d requests per 0.5 s; %d of %d slowloris connections closed", ownerMode, base, under, closed.Load(), slow)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// Backend killed under load and restarted: every request gets a response
// (2xx, or 502/503 while it is down) or a clean close, none hangs, and
// successes resume soon after the backend is back.
func TestBackendKilledUnderLoad(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	var mu sync.Mutex
	var conns []net.Conn
	serve := func(ln net.Listener) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				br := bufio.NewReader(c)
				for {
					r, err := http.ReadRequest(br)
					if err != nil {
						c.Close()
						return
					}
					io.Copy(io.Discard, r.Body)
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			}()
		}
	}
	go serve(ln)
	_, paddr := startProxy(t, "", backendTOML(addr, "response_timeout = \"2s\"\nconnect_timeout = \"500ms\""))

	var ok, failed, closed atomic.Int64
	var backAt, firstOKAfter atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.Dial("tcp", paddr)
				if err != nil {
					t.Error(err)
					return
				}
				br := bufio.NewReader(c)
				for i := 0; i < 50; i++ {
					c.SetDeadline(time.Now().Add(5 * time.Second)) // none may hang
					if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
						closed.Add(1)
						break
					}
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						if isTimeout(err) {
							t.Error("a request hung past the upstream timeout")
						}
						closed.Add(1)
						break
					}
					io.Copy(io.Discard, resp.Body)
					switch {
					case resp.StatusCode == 200:
						ok.Add(1)
						if b, now := backAt.Load(), time.Now().UnixNano(); b != 0 && now > b {
							firstOKAfter.CompareAndSwap(0, now)
						}
					case resp.StatusCode == 502 || resp.StatusCode == 503:
						failed.Add(1)
					default:
						t.Errorf("unexpected status %d", resp.StatusCode)
					}
				}
				c.Close()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	// Kill: stop listening and cut every connection.
	ln.Close()
	mu.Lock()
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	mu.Unlock()
	time.Sleep(300 * time.Millisecond)
	downOK := ok.Load()
	// Restart on the same address.
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("restart on %s: %v", addr, err)
	}
	defer ln2.Close()
	backAt.Store(time.Now().UnixNano())
	go serve(ln2)
	time.Sleep(1200 * time.Millisecond)
	close(stop)
	wg.Wait()
	if ok.Load() == downOK {
		t.Fatal("no success after the backend came back")
	}
	if f := firstOKAfter.Load(); f == 0 || time.Duration(f-backAt.Load()) > time.Second {
		t.Fatalf("successes did not resume within 1s of the restart (first after %v)", time.Duration(f-backAt.Load()))
	}
	t.Logf("owner %s: %d ok, %d 502/503, %d closed connections", ownerMode, ok.Load(), failed.Load(), closed.Load())
}

// Slow uploader: a client sending a 64 MiB body in pieces with pauses
// (the backend reads as fast as it can) and a backend reading slowly (the
// client sends as fast as it can): either way the proxy's heap stays flat
// and the body arrives whole.
func TestSlowUploadBoundedMemory(t *testing.T) {
	const size = 64 << 20
	var slowBackend atomic.Bool
	be := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 64<<10)
		var n int64
		for {
			m, err := r.Body.Read(buf)
			n += int64(m)
			if err != nil {
				break
			}
			if slowBackend.Load() && n < 8<<20 {
				time.Sleep(2 * time.Millisecond)
			}
		}
		fmt.Fprintf(w, "%d", n)
	})
	_, addr := startProxy(t, "", backendTOML(be.addr(), ""))
	for _, slowSide := range []string{"client", "backend"} {
		slowBackend.Store(slowSide == "backend")
		c := dial(t, addr)
		c.SetDeadline(time.Now().Add(60 * time.Second))
		fmt.Fprintf(c, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size)
		hw := watchHeap()
		chunk := bytes.Repeat([]byte("u"), 64<<10)
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := c.Write(chunk); err != nil {
				t.Fatal(err)
			}
			if slowSide == "client" && sent < 4<<20 {
				time.Sleep(2 * time.Millisecond)
			}
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		grown := hw.growth()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != fmt.Sprint(size) {
			t.Fatalf("slow %s: backend got %q bytes, want %d", slowSide, b, size)
		}
		if grown > 16<<20 {
			t.Fatalf("slow %s: heap grew by %d MiB during a %d MiB upload", slowSide, grown>>20, size>>20)
		}
		t.Logf("owner %s, slow %s: heap growth %d KiB", ownerMode, slowSide, grown>>10)
	}
}
