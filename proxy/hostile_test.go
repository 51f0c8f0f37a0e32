package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// A client that pipelines 10,000 requests without reading is throttled:
// Apex answers one request at a time and stops reading the client while
// its output is full, so the backend sees only a bounded number of
// requests until the client reads. Then every request is answered, in
// order.
func TestPipeliningFloodIsThrottled(t *testing.T) {
	// Two backends: net/http (chunked, written in pieces) and one that
	// writes each whole response, head and 16 KiB body, in one write, so
	// Apex reads complete responses and only the client's output bound
	// can stop it.
	t.Run("net/http", func(t *testing.T) {
		be := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
			w.Write(bytes.Repeat([]byte("x"), 16<<10))
		})
		pipelineFlood(t, be.addr(), be.hits.Load)
	})
	t.Run("one write", func(t *testing.T) {
		resp := append([]byte("HTTP/1.1 200 OK\r\nContent-Length: 16384\r\n\r\n"), bytes.Repeat([]byte("x"), 16<<10)...)
		var hits atomic.Int64
		rb := startRaw(t, func(c net.Conn) {
			br := bufio.NewReader(c)
			for {
				if _, err := readRequestHead(br); err != nil {
					return
				}
				hits.Add(1)
				if _, err := c.Write(resp); err != nil {
					return
				}
			}
		})
		pipelineFlood(t, rb.addr(), hits.Load)
	})
}

func pipelineFlood(t *testing.T, backendAddr string, backendHits func() int64) {
	_, addr := startProxy(t, "loops = 1\noutput_buffer = 65536", backendTOML(backendAddr, ""))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 10000
	var req bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&req, "GET /%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
	}
	writeDone := make(chan error, 1)
	go func() {
		c.SetWriteDeadline(time.Now().Add(60 * time.Second))
		_, err := c.Write(req.Bytes())
		writeDone <- err
	}()
	// Without reading: the hits stop growing well short of n. Wait until
	// they hold still (slower under -race), then check where they stopped.
	var stalled int64 = -1
	prev := int64(-1)
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); {
		time.Sleep(300 * time.Millisecond)
		cur := backendHits()
		if cur == prev {
			stalled = cur
			break
		}
		prev = cur
	}
	if stalled < 0 || stalled >= n {
		t.Fatalf("backend hits never stopped growing (last %d) while the client read nothing: not throttled", prev)
	}
	// Each response is 16 KiB: what is in flight is bounded by the output
	// bound plus the kernel's socket buffers (a few MiB on loopback), far
	// below the 160 MiB that n responses make.
	if stalled > 2000 {
		t.Fatalf("%d requests proxied before the client read anything", stalled)
	}
	// Now read everything: all n answered, in order.
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	br := bufio.NewReaderSize(c, 64<<10)
	for i := 0; i < n; i++ {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		m, _ := io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 || m != 16<<10 {
			t.Fatalf("response %d: %d, %d bytes", i, resp.StatusCode, m)
		}
	}
	if err := <-writeDone; err != nil {
		t.Fatal(err)
	}
	t.Logf("backend hits before the client read: %d of %d", stalled, n)
}

// A small chunked body that arrives with its head is validated before
// anything goes upstream: bad framing or an oversized body is refused and
// the backend sees nothing at all (not even the head).
func TestBadSmallChunkedBodyNeverForwarded(t *testing.T) {
	be := startBackend(t, func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) })
	_, addr := startProxy(t, "max_body_bytes = 10", backendTOML(be.addr(), ""))
	cases := []struct {
		body string
		want int
	}{
		{"zz\r\nabc\r\n0\r\n\r\n", 400},                      // size not hex
		{"3\r\nabcX\r\n0\r\n\r\n", 400},                      // data not followed by CRLF
		{"fffffffffffffffff\r\n", 400},                       // overflow
		{"8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n", 413}, // over max_body_bytes
	}
	for _, tc := range cases {
		c := dial(t, addr)
		br := bufio.NewReader(c)
		resp, _ := roundTrip(t, c, br, "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"+tc.body, "POST")
		if resp.StatusCode != tc.want {
			t.Fatalf("%q: got %d, want %d", tc.body, resp.StatusCode, tc.want)
		}
		expectClosed(t, c, br)
	}
	// A good one still goes through.
	c := dial(t, addr)
	br := bufio.NewReader(c)
	resp, _ := roundTrip(t, c, br, "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", "POST")
	if resp.StatusCode != 200 {
		t.Fatalf("valid chunked body: %d", resp.StatusCode)
	}
	if n := be.hits.Load(); n != 1 {
		t.Fatalf("backend saw %d requests, want only the valid one", n)
	}
}

// TestBodyCutShort: a client that shuts its side in the middle of a
// streamed request body gets a 400, one that stops sending it gets a 408
// at body_timeout; the proxy goes on serving (in both owner modes).
func TestBodyCutShort(t *testing.T) {
	be := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	})
	_, addr := startProxy(t, "body_timeout = \"300ms\"", backendTOML(be.addr(), ""))
	for _, tc := range []struct {
		name      string
		halfClose bool
		want      int
	}{{"half-close", true, 400}, {"stalled", false, 408}} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, addr)
			io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc")
			if tc.halfClose {
				c.(*net.TCPConn).CloseWrite()
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			// Still serving.
			c2 := dial(t, addr)
			if resp, body := roundTrip(t, c2, bufio.NewReader(c2), "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET"); resp.StatusCode != 200 || body != "ok" {
				t.Fatalf("after: %d %q", resp.StatusCode, body)
			}
		})
	}
}
