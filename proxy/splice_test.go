package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// patterned is size bytes that differ with their position (and with
// seed), so a dropped, doubled or reordered piece changes the bytes.
func patterned(size, seed int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(i*7 + i>>8 + seed)
	}
	return b
}

// sizedBackend answers GET /N/seed with N patterned bytes and a
// Content-Length, written in 32 KiB pieces.
func sizedBackend(t *testing.T) *countingBackend {
	return startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
		size, _ := strconv.Atoi(parts[0])
		seed := 0
		if len(parts) > 1 {
			seed, _ = strconv.Atoi(parts[1])
		}
		body := patterned(size, seed)
		w.Header().Set("Content-Length", strconv.Itoa(size))
		for len(body) > 0 {
			n := min(len(body), 32<<10)
			if _, err := w.Write(body[:n]); err != nil {
				return
			}
			body = body[n:]
		}
	})
}

// getPatterned asks sizedBackend for size bytes of seed's pattern on c
// and checks that exactly those came back.
func getPatterned(c net.Conn, br *bufio.Reader, size, seed int) error {
	fmt.Fprintf(c, "GET /%d/%d HTTP/1.1\r\nHost: x\r\n\r\n", size, seed)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if !bytes.Equal(got, patterned(size, seed)) {
		return fmt.Errorf("GET /%d/%d: %d bytes, not the ones sent", size, seed, len(got))
	}
	return nil
}

func splicedBytes(s *Server) uint64 { return s.Snapshot().SplicedBytes }

// Large Content-Length bodies reach the client byte for byte, spliced or
// copied, on keep-alive connections and with pipelined requests, mixed
// with small ones; with splice on (the default) the loop owner really
// splices, and with splice = false nothing is.
func TestSpliceLargeBodiesExact(t *testing.T) {
	sizes := []int{14, 8<<10 - 1, 12 << 10, 20<<10 + 3, 64 << 10, 1 << 20, 5<<20 + 7}
	for _, splice := range []string{"", "splice = false\n"} {
		t.Run(fmt.Sprintf("splice=%v", splice == ""), func(t *testing.T) {
			be := sizedBackend(t)
			s, addr := startProxy(t, "", backendTOML(be.addr(), splice))
			// Eight keep-alive clients, each fetching every size twice.
			wait := goClients(addr, 8, func(g int, c net.Conn, br *bufio.Reader) error {
				c.SetDeadline(time.Now().Add(60 * time.Second))
				for round := 0; round < 2; round++ {
					for i, size := range sizes {
						if err := getPatterned(c, br, size, g*31+i+round); err != nil {
							return fmt.Errorf("client %d: %w", g, err)
						}
					}
				}
				return nil
			})
			for _, err := range wait() {
				t.Error(err)
			}
			// Pipelined: three requests in one write, answered in order.
			c := dial(t, addr)
			c.SetDeadline(time.Now().Add(30 * time.Second))
			br := bufio.NewReader(c)
			io.WriteString(c, "GET /1048576/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /14/2 HTTP/1.1\r\nHost: x\r\n\r\nGET /70000/3 HTTP/1.1\r\nHost: x\r\n\r\n")
			for _, want := range []struct{ size, seed int }{{1 << 20, 1}, {14, 2}, {70000, 3}} {
				_, body := roundTrip(t, c, br, "", "GET")
				if body != string(patterned(want.size, want.seed)) {
					t.Fatalf("pipelined GET /%d/%d: %d bytes, not the ones sent", want.size, want.seed, len(body))
				}
			}
			n := splicedBytes(s)
			switch {
			case ownerMode == "loop" && splice == "" && n < 8*(5<<20):
				t.Fatalf("spliced %d bytes; the 5 MiB bodies alone should have been spliced", n)
			case (ownerMode != "loop" || splice != "") && n != 0:
				t.Fatalf("spliced %d bytes with owner %s and %q", n, ownerMode, splice)
			}
			t.Logf("owner %s: %d bytes spliced", ownerMode, n)
		})
	}
}

// A client that reads a large spliced body slowly gets every byte (the
// splice meets a full socket: the pipe's rest goes to the output buffer
// and the upstream waits), and Apex's heap does not grow with the body.
func TestSpliceSlowClient(t *testing.T) {
	const size = 16 << 20
	be := sizedBackend(t)
	_, addr := startProxy(t, "", backendTOML(be.addr(), ""))
	c := dial(t, addr)
	c.(*net.TCPConn).SetReadBuffer(16 << 10)
	c.SetDeadline(time.Now().Add(60 * time.Second))
	fmt.Fprintf(c, "GET /%d/9 HTTP/1.1\r\nHost: x\r\n\r\n", size)
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 4<<10), nil)
	if err != nil {
		t.Fatal(err)
	}
	hw := watchHeap()
	h := sha256.New()
	buf := make([]byte, 32<<10)
	for i := 0; i < 30; i++ {
		n, err := resp.Body.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		h.Write(buf[:n])
		time.Sleep(10 * time.Millisecond)
	}
	grown := hw.growth()
	if _, err := io.Copy(h, resp.Body); err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprintf("%x", h.Sum(nil)), fmt.Sprintf("%x", sha256.Sum256(patterned(size, 9))); got != want {
		t.Fatal("the slowly read body is not the one the backend sent")
	}
	if grown > 8<<20 {
		t.Fatalf("heap grew by %d MiB while a client crawled through a %d MiB response", grown>>20, size>>20)
	}
	// The connection is still good for another request.
	_, body := roundTrip(t, c, bufio.NewReader(c), "GET /100/1 HTTP/1.1\r\nHost: x\r\n\r\n", "GET")
	if body != string(patterned(100, 1)) {
		t.Fatalf("next request on the connection: %q", body)
	}
}

// A client that leaves in the middle of a spliced body costs the upstream
// connection (its state is unknown) and nothing else: the proxy goes on
// serving, large bodies included.
func TestSpliceClientLeavesMidBody(t *testing.T) {
	be := sizedBackend(t)
	s, addr := startProxy(t, "", backendTOML(be.addr(), ""))
	for i := 0; i < 20; i++ {
		c := dial(t, addr)
		fmt.Fprintf(c, "GET /%d/1 HTTP/1.1\r\nHost: x\r\n\r\n", 32<<20)
		br := bufio.NewReader(c)
		if _, err := http.ReadResponse(br, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(io.Discard, br, int64(100<<10+i*4099)); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			c.(*net.TCPConn).SetLinger(0) // a reset rather than a FIN
		}
		c.Close()
	}
	c := dial(t, addr)
	c.SetDeadline(time.Now().Add(30 * time.Second))
	_, body := roundTrip(t, c, bufio.NewReader(c), fmt.Sprintf("GET /%d/4 HTTP/1.1\r\nHost: x\r\n\r\n", 3<<20), "GET")
	if body != string(patterned(3<<20, 4)) {
		t.Fatalf("after 20 clients left mid-body: %d bytes, not the ones sent", len(body))
	}
	if ownerMode == "loop" && splicedBytes(s) == 0 {
		t.Fatal("nothing was spliced")
	}
}

// An upstream that closes in the middle of a spliced body: the client
// gets the bytes that came and then a close (never a response that looks
// complete), and the next client is served.
func TestSpliceUpstreamCutShort(t *testing.T) {
	const promised, sent = 4 << 20, 300 << 10
	rb := startRaw(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := readRequestHead(br)
			if err != nil {
				return
			}
			if req.URL.Path == "/cut" {
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", promised)
				c.Write(patterned(sent, 5))
				return
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	_, addr := startProxy(t, "", backendTOML(rb.addr(), ""))
	c := dial(t, addr)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c, "GET /cut HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("a body cut at %d of %d bytes read as complete", len(got), promised)
	}
	if len(got) != sent || !bytes.Equal(got, patterned(sent, 5)) {
		t.Fatalf("got %d bytes before the cut, want the %d sent", len(got), sent)
	}
	c2 := dial(t, addr)
	_, body := roundTrip(t, c2, bufio.NewReader(c2), "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n", "GET")
	if body != "ok" {
		t.Fatalf("next request: %q", body)
	}
}

// With upstream pipelining, large bodies spliced on one connection do not
// swallow the responses queued behind them. (The goroutine owner ignores
// pipeline and serves the same requests one at a time.)
func TestSplicePipelinedUpstream(t *testing.T) {
	be := sizedBackend(t)
	s, addr := startProxy(t, "", backendTOML(be.addr(), "conns = 2\npipeline = 8\n"))
	sizes := []int{200 << 10, 14, 33 << 10, 1 << 20, 9000}
	wait := goClients(addr, 12, func(g int, c net.Conn, br *bufio.Reader) error {
		c.SetDeadline(time.Now().Add(60 * time.Second))
		for i := 0; i < 15; i++ {
			if err := getPatterned(c, br, sizes[(g+i)%len(sizes)], g*100+i); err != nil {
				return fmt.Errorf("client %d: %w", g, err)
			}
		}
		return nil
	})
	for _, err := range wait() {
		t.Error(err)
	}
	if ownerMode == "loop" && splicedBytes(s) == 0 {
		t.Fatal("nothing was spliced")
	}
}
