package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apex-epoll/apex/config"
)

func TestUpstreamRefused502(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now
	_, addr := startProxy(t, "", backendTOML(dead, ""))
	c := dial(t, addr)
	br := bufio.NewReader(c)
	resp, _ := roundTrip(t, c, br, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET")
	if resp.StatusCode != 502 {
		t.Fatalf("got %d, want 502", resp.StatusCode)
	}
	// The client connection stays usable.
	resp, _ = roundTrip(t, c, br, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET")
	if resp.StatusCode != 502 {
		t.Fatalf("second: got %d, want 502", resp.StatusCode)
	}
}

func silentBackend(t *testing.T) *rawBackend {
	return startRaw(t, func(c net.Conn) {
		io.Copy(io.Discard, c) // accept, read, never answer
	})
}

func TestSilentUpstream504(t *testing.T) {
	rb := silentBackend(t)
	_, addr := startProxy(t, "", backendTOML(rb.addr(), `response_timeout = "300ms"`))
	c := dial(t, addr)
	br := bufio.NewReader(c)
	start := time.Now()
	resp, _ := roundTrip(t, c, br, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET")
	if resp.StatusCode != 504 {
		t.Fatalf("got %d, want 504", resp.StatusCode)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 3*time.Second {
		t.Fatalf("504 after %v, want about 300ms", d)
	}
}

// With one owner and a queue of one, a third concurrent request is shed
// at once with 503 instead of queueing without bound.
func TestQueueFull503(t *testing.T) {
	rb := silentBackend(t)
	// One loop: in loop mode the connection and queue bounds are per loop.
	_, addr := startProxy(t, "loops = 1", backendTOML(rb.addr(), "conns = 1\nqueue = 1\nresponse_timeout = \"2s\""))
	var wg sync.WaitGroup
	statuses := make(chan int, 3)
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				statuses <- -1
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				statuses <- -1
				return
			}
			statuses <- resp.StatusCode
		}()
	}
	time.Sleep(200 * time.Millisecond) // both are with the owner now
	c := dial(t, addr)
	br := bufio.NewReader(c)
	start := time.Now()
	resp, _ := roundTrip(t, c, br, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("got %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if time.Since(start) > time.Second {
		t.Fatal("503 was not immediate")
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != 504 {
			t.Fatalf("queued request ended with %d, want 504", s)
		}
	}
}

// A backend that dies mid-response, after part of it went to the client:
// the client sees the head, then a closed connection (never a response
// that looks complete). (Cut before anything left Apex, it is a 502:
// TestGarbageBackends.)
func TestBackendDiesMidResponse(t *testing.T) {
	rb := startRaw(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := readRequestHead(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
		io.WriteString(c, strings.Repeat("x", 5000))
		time.Sleep(50 * time.Millisecond) // the head and these bytes leave Apex
		// and die
	})
	_, addr := startProxy(t, "", backendTOML(rb.addr(), ""))
	c := dial(t, addr)
	br := bufio.NewReader(c)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 || err == nil || n >= 100000 {
		t.Fatalf("truncated body read as complete: %d bytes, err %v", n, err)
	}
	// The same client's next attempt reaches a fresh upstream connection.
	c2 := dial(t, addr)
	io.WriteString(c2, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := http.ReadResponse(bufio.NewReader(c2), nil); err != nil {
		t.Fatal(err)
	}
	if rb.conns.Load() < 2 {
		t.Fatalf("upstream connection reused after its response was cut (%d conns)", rb.conns.Load())
	}
}

func TestGarbageBackends(t *testing.T) {
	cases := []struct {
		name, resp string
		want       int // 502: answered by Apex; 0: head sent, then closed
	}{
		{"invalid status line", "HTTP/1.1 OK\r\n\r\n", 502},
		{"not http", "SSH-2.0-OpenSSH\r\n\r\n", 502},
		{"CL+TE", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 502},
		{"two CL", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 502},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded\r\nContent-Length: 0\r\n\r\n", 502},
		// Head and broken body in one write: Apex takes the queued head
		// back and answers 502 (the loop owner reads them together; the
		// goroutine owner may hand the head over first, and then closes).
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", -1},
		// The head alone first: it is on its way to the client when the
		// bad chunk comes, so the client connection is closed.
		{"bad chunk size after the head", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n|zz\r\nabc\r\n0\r\n\r\n", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rb := startRaw(t, func(c net.Conn) {
				br := bufio.NewReader(c)
				if _, err := readRequestHead(br); err != nil {
					return
				}
				head, body, split := strings.Cut(tc.resp, "|")
				io.WriteString(c, head)
				if split {
					time.Sleep(50 * time.Millisecond)
					io.WriteString(c, body)
				}
				time.Sleep(100 * time.Millisecond)
			})
			_, addr := startProxy(t, "", backendTOML(rb.addr(), ""))
			c := dial(t, addr)
			br := bufio.NewReader(c)
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			want := tc.want
			if want == -1 {
				want = 502
				if ownerMode == "goroutine" && err == nil && resp.StatusCode == 200 {
					want = 0
				}
			}
			if want == 502 {
				if err != nil || resp.StatusCode != 502 {
					t.Fatalf("got %v %v, want 502", resp, err)
				}
				io.Copy(io.Discard, resp.Body)
				// Nothing of the bad response reached the client, so its
				// connection is still usable.
				resp, _ = roundTrip(t, c, br, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET")
				if resp.StatusCode != 502 {
					t.Fatalf("second request: %d", resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadAll(resp.Body); err == nil {
				t.Fatal("broken chunked body read as complete")
			}
		})
	}
}

// Body longer than its Content-Length, seen before anything was sent: 502,
// the upstream connection dropped, the client connection still usable.
func TestBodyLongerThanContentLength(t *testing.T) {
	rb := startRaw(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			if _, err := readRequestHead(br); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA-BYTES")
		}
	})
	_, addr := startProxy(t, "", backendTOML(rb.addr(), "conns = 1"))
	c := dial(t, addr)
	br := bufio.NewReader(c)
	for i := 0; i < 3; i++ {
		resp, _ := roundTrip(t, c, br, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET")
		if resp.StatusCode != 502 {
			t.Fatalf("round %d: %d, want 502", i, resp.StatusCode)
		}
	}
	if rb.conns.Load() != 3 {
		t.Fatalf("%d upstream connections for 3 requests; a connection with stray bytes was reused", rb.conns.Load())
	}
}

// The keep-alive race: a backend closes a kept-alive connection just as
// the proxy sends the next request on it (here: it reads the second
// request on a connection and closes without answering). A GET is re-sent
// on a fresh connection; a POST is not, since it reached the server; a
// POST with an Idempotency-Key is.
func TestKeepAliveRaceResend(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	rb := startRaw(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for n := 0; ; n++ {
			r, err := readRequestHead(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, r.Body)
			mu.Lock()
			seen = append(seen, r.Method+" "+r.URL.Path)
			mu.Unlock()
			if n == 1 {
				return // the race: the request arrived, the connection dies
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	_, addr := startProxy(t, "", backendTOML(rb.addr(), "conns = 1"))
	c := dial(t, addr)
	br := bufio.NewReader(c)
	step := func(req, method string, want int) {
		t.Helper()
		resp, _ := roundTrip(t, c, br, req, method)
		if resp.StatusCode != want {
			t.Fatalf("%q: got %d, want %d", req, resp.StatusCode, want)
		}
	}
	step("GET /1 HTTP/1.1\r\nHost: x\r\n\r\n", "GET", 200)
	step("GET /2 HTTP/1.1\r\nHost: x\r\n\r\n", "GET", 200) // raced, resent
	step("POST /3 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", "POST", 502)
	step("GET /4 HTTP/1.1\r\nHost: x\r\n\r\n", "GET", 200)
	step("POST /5 HTTP/1.1\r\nHost: x\r\nIdempotency-Key: k1\r\nContent-Length: 3\r\n\r\nabc", "POST", 200)
	mu.Lock()
	defer mu.Unlock()
	posts := 0
	for _, s := range seen {
		if s == "POST /3" {
			posts++
		}
	}
	if posts != 1 {
		t.Fatalf("POST /3 reached the backend %d times, want exactly 1 (never resent): %v", posts, seen)
	}
}

func TestHeaderAndIdleTimeouts(t *testing.T) {
	be := startBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	_, addr := startProxy(t, "header_timeout = \"300ms\"\nidle_timeout = \"400ms\"", backendTOML(be.addr(), ""))
	// Slowloris: part of a head, then nothing.
	c := dial(t, addr)
	br := bufio.NewReader(c)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
	start := time.Now()
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 408 {
		t.Fatalf("got %v %v, want 408", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("408 after %v", d)
	}
	expectClosed(t, c, br)
	// Idle keep-alive connection: closed after idle_timeout.
	c = dial(t, addr)
	br = bufio.NewReader(c)
	roundTrip(t, c, br, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET")
	start = time.Now()
	expectClosed(t, c, br)
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("idle connection closed after %v, before idle_timeout", d)
	}
}

// Graceful shutdown: an in-flight request finishes (with Connection:
// close), idle connections close, no new connection is accepted, and no
// goroutine is left behind.
func TestGracefulShutdownNoLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	be := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "finished")
	})
	cfg, err := config.Parse("t.toml", []byte("[server]\nlisten = \"127.0.0.1:0\"\n"+backendTOML(be.addr(), "")))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	addr := s.Addrs()[0].String()
	idle := dial(t, addr)
	idleBr := bufio.NewReader(idle)
	busy := dial(t, addr)
	busyBr := bufio.NewReader(busy)
	roundTrip(t, idle, idleBr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET")
	io.WriteString(busy, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	done := make(chan error)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	resp, body := roundTrip(t, busy, busyBr, "", "GET")
	if resp.StatusCode != 200 || body != "finished" || !resp.Close {
		t.Fatalf("in-flight request: %d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	expectClosed(t, idle, idleBr)
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("still accepting after shutdown")
	}
	be.Close()
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("%d goroutines after shutdown, %d before:\n%s", n, before, buf)
	}
}

var _ = fmt.Sprint
