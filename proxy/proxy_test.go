package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestForwardsAndRewritesHeaders(t *testing.T) {
	var got http.Header
	var gotHost, gotTarget string
	be := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		gotHost, gotTarget = r.Host, r.RequestURI
		w.Header().Set("Connection", "X-Resp-Hop")
		w.Header().Set("X-Resp-Hop", "secret")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-End", "kept")
		io.WriteString(w, "hello")
	})
	_, addr := startProxy(t, "", backendTOML(be.addr(), ""))
	c := dial(t, addr)
	br := bufio.NewReader(c)
	req := "GET /a/b?x=1&y=%2F HTTP/1.1\r\nHost: Example.TEST:8080\r\nConnection: X-Hop, keep-alive\r\nX-Hop: 1\r\n" +
		"Keep-Alive: 300\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nUpgrade: websocket\r\n" +
		"X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\nX-Custom: v\r\n\r\n"
	resp, body := roundTrip(t, c, br, req, "GET")
	if resp.StatusCode != 200 || body != "hello" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if gotTarget != "/a/b?x=1&y=%2F" || gotHost != "Example.TEST:8080" {
		t.Fatalf("target %q host %q not forwarded byte for byte", gotTarget, gotHost)
	}
	for _, h := range []string{"X-Hop", "Keep-Alive", "Proxy-Connection", "Te", "Upgrade", "Connection"} {
		if v := got.Get(h); v != "" {
			t.Errorf("hop-by-hop %s forwarded: %q", h, v)
		}
	}
	if v := got.Get("X-Forwarded-For"); v != "10.0.0.1, 127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q", v)
	}
	if v := got.Get("X-Forwarded-Proto"); v != "http" {
		t.Errorf("X-Forwarded-Proto = %q", v)
	}
	if v := got.Get("X-Forwarded-Host"); v != "Example.TEST:8080" {
		t.Errorf("X-Forwarded-Host = %q", v)
	}
	if got.Get("X-Custom") != "v" {
		t.Errorf("end-to-end field lost")
	}
	for _, h := range []string{"X-Resp-Hop", "Keep-Alive"} {
		if v := resp.Header.Get(h); v != "" {
			t.Errorf("response hop-by-hop %s forwarded: %q", h, v)
		}
	}
	if resp.Header.Get("X-End") != "kept" {
		t.Error("response end-to-end field lost")
	}
	// A client naming X-Forwarded-For in Connection cannot hide itself.
	resp, _ = roundTrip(t, c, br, "GET /x HTTP/1.1\r\nHost: x\r\nConnection: X-Forwarded-For\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n", "GET")
	if v := got.Get("X-Forwarded-For"); resp.StatusCode != 200 || v != "127.0.0.1" {
		t.Fatalf("XFF named in Connection: upstream saw %q", v)
	}
	// Keep-alive: a second request on the same connection works.
	resp, body = roundTrip(t, c, br, "GET /again HTTP/1.1\r\nHost: x\r\n\r\n", "GET")
	if resp.StatusCode != 200 || body != "hello" || be.hits.Load() != 3 {
		t.Fatalf("second request: %d %q hits %d", resp.StatusCode, body, be.hits.Load())
	}
}

func TestRoutingHostAndPrefix(t *testing.T) {
	mk := func(name string) *countingBackend {
		return startBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })
	}
	a, b, d := mk("a"), mk("b"), mk("d")
	cfg := fmt.Sprintf(`
[[backend]]
name = "a"
servers = [%q]
%s[[backend]]
name = "b"
servers = [%q]
%s[[backend]]
name = "d"
servers = [%q]
%s[[route]]
host = "api.test"
path_prefix = "/v2/"
backend = "b"
[[route]]
host = "api.test"
backend = "a"
[[route]]
host = "static.test"
return = 200
body = "fixed"
[[route]]
path_prefix = "/public/"
backend = "d"
`, a.addr(), ownerLine(), b.addr(), ownerLine(), d.addr(), ownerLine())
	_, addr := startProxy(t, "", cfg)
	cases := []struct{ target, host, want string }{
		{"/v2/x", "API.test", "b"},
		{"/v2/x", "api.test:9999", "b"},
		{"/v1/x", "api.test", "a"},
		{"/", "static.test", "fixed"},
		{"/public/x", "other.test", "d"},
		{"http://api.test/v2/abs", "ignored.test", "b"}, // absolute-form wins
		{"/private", "other.test", "404"},
	}
	for _, tc := range cases {
		c := dial(t, addr)
		br := bufio.NewReader(c)
		resp, body := roundTrip(t, c, br, "GET "+tc.target+" HTTP/1.1\r\nHost: "+tc.host+"\r\n\r\n", "GET")
		got := body
		if resp.StatusCode == 404 {
			got = "404"
		}
		if got != tc.want {
			t.Errorf("%s %s: got %q (status %d), want %q", tc.host, tc.target, got, resp.StatusCode, tc.want)
		}
	}
}

// Pipelined requests are answered in order even when the first is slowest.
func TestPipeliningInOrder(t *testing.T) {
	be := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(200 * time.Millisecond)
		}
		io.WriteString(w, r.URL.Path)
	})
	_, addr := startProxy(t, "", backendTOML(be.addr(), "conns = 4"))
	c := dial(t, addr)
	br := bufio.NewReader(c)
	var sb strings.Builder
	paths := []string{"/slow", "/fast1", "/fast2", "/slow", "/fast3"}
	for _, p := range paths {
		sb.WriteString("GET " + p + " HTTP/1.1\r\nHost: x\r\n\r\n")
	}
	io.WriteString(c, sb.String())
	for _, p := range paths {
		resp, body := roundTrip(t, c, br, "", "GET")
		if resp.StatusCode != 200 || body != p {
			t.Fatalf("got %d %q, want %q", resp.StatusCode, body, p)
		}
	}
}

func TestChunkedBothWaysWithTrailers(t *testing.T) {
	be := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Trailer.Get("X-Req-Trailer") != "rt" {
			w.WriteHeader(400)
			fmt.Fprintf(w, "missing request trailer: %v", r.Trailer)
			return
		}
		w.Header().Set("Trailer", "X-Sum")
		w.WriteHeader(200)
		for i := 0; i < 3; i++ {
			w.Write(b)
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Sum", "ok")
	})
	_, addr := startProxy(t, "", backendTOML(be.addr(), ""))
	c := dial(t, addr)
	br := bufio.NewReader(c)
	req := "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Req-Trailer\r\n\r\n" +
		"3;ext=1\r\nabc\r\n4\r\ndefg\r\n0\r\nX-Req-Trailer: rt\r\n\r\n"
	resp, body := roundTrip(t, c, br, req, "POST")
	if resp.StatusCode != 200 || body != "abcdefgabcdefgabcdefg" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("response not chunked: %v", resp.TransferEncoding)
	}
	if resp.Trailer.Get("X-Sum") != "ok" {
		t.Fatalf("response trailer lost: %v", resp.Trailer)
	}
}

// A close-delimited upstream body reaches an HTTP/1.1 client re-framed as
// chunked (the client connection stays usable) and an HTTP/1.0 client
// close-delimited.
func TestCloseDelimitedResponse(t *testing.T) {
	rb := startRaw(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := readRequestHead(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil-close body")
	})
	_, addr := startProxy(t, "", backendTOML(rb.addr(), ""))
	c := dial(t, addr)
	br := bufio.NewReader(c)
	resp, body := roundTrip(t, c, br, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET")
	if body != "until-close body" || len(resp.TransferEncoding) == 0 {
		t.Fatalf("1.1 client: %q te=%v", body, resp.TransferEncoding)
	}
	resp, body = roundTrip(t, c, br, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET")
	if body != "until-close body" || resp.Close {
		t.Fatalf("second request on kept connection: %q close=%v", body, resp.Close)
	}
	c2 := dial(t, addr)
	br2 := bufio.NewReader(c2)
	resp, body = roundTrip(t, c2, br2, "GET / HTTP/1.0\r\n\r\n", "GET")
	if body != "until-close body" || len(resp.TransferEncoding) != 0 || !resp.Close {
		t.Fatalf("1.0 client: %q te=%v close=%v", body, resp.TransferEncoding, resp.Close)
	}
}

func TestExpectContinue(t *testing.T) {
	be := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s expect=%q", b, r.Header.Get("Expect"))
	})
	_, addr := startProxy(t, "", backendTOML(be.addr(), ""))
	c := dial(t, addr)
	br := bufio.NewReader(c)
	io.WriteString(c, "PUT /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("want 100 Continue, got %q %v", line, err)
	}
	if l, _ := br.ReadString('\n'); l != "\r\n" {
		t.Fatalf("bad interim response end %q", l)
	}
	resp, body := roundTrip(t, c, br, "hello", "PUT")
	if resp.StatusCode != 200 || body != `hello expect=""` {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}

func TestBodilessResponses(t *testing.T) {
	rb := startRaw(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			r, err := readRequestHead(br)
			if err != nil {
				return
			}
			switch r.URL.Path {
			case "/204":
				io.WriteString(c, "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n")
			case "/304":
				io.WriteString(c, "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 10\r\n\r\n")
			default: // HEAD
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
			}
		}
	})
	_, addr := startProxy(t, "", backendTOML(rb.addr(), "conns = 1"))
	c := dial(t, addr)
	br := bufio.NewReader(c)
	for _, tc := range []struct{ method, path string }{{"GET", "/204"}, {"GET", "/304"}, {"HEAD", "/h"}, {"GET", "/204"}} {
		resp, body := roundTrip(t, c, br, tc.method+" "+tc.path+" HTTP/1.1\r\nHost: x\r\n\r\n", tc.method)
		if body != "" {
			t.Fatalf("%s %s: body %q", tc.method, tc.path, body)
		}
		if tc.method == "HEAD" && resp.ContentLength != 1234 {
			t.Fatalf("HEAD lost Content-Length: %d", resp.ContentLength)
		}
	}
}

func TestHTTP10AndConnectionClose(t *testing.T) {
	be := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "proto=%s host=%s", r.Proto, r.Host)
	})
	_, addr := startProxy(t, "", backendTOML(be.addr(), ""))
	// HTTP/1.0 without keep-alive: answered, then closed.
	c := dial(t, addr)
	br := bufio.NewReader(c)
	resp, body := roundTrip(t, c, br, "GET / HTTP/1.0\r\n\r\n", "GET")
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "proto=HTTP/1.1 host=") {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	expectClosed(t, c, br)
	// HTTP/1.0 with keep-alive: kept.
	c = dial(t, addr)
	br = bufio.NewReader(c)
	resp, _ = roundTrip(t, c, br, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "GET")
	if resp.Header.Get("Connection") != "keep-alive" {
		t.Fatalf("1.0 keep-alive not confirmed: %v", resp.Header)
	}
	resp, _ = roundTrip(t, c, br, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "GET")
	if resp.StatusCode != 200 {
		t.Fatal("second 1.0 keep-alive request failed")
	}
	// HTTP/1.1 Connection: close.
	c = dial(t, addr)
	br = bufio.NewReader(c)
	resp, _ = roundTrip(t, c, br, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "GET")
	if !resp.Close {
		t.Fatal("Connection: close not echoed")
	}
	expectClosed(t, c, br)
}

// A client that shuts its write side after the request still gets the
// whole response.
func TestHalfCloseGetsResponse(t *testing.T) {
	be := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond)
		io.WriteString(w, "late answer")
	})
	_, addr := startProxy(t, "", backendTOML(be.addr(), ""))
	c := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	c.(*net.TCPConn).CloseWrite()
	all, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(all, []byte("late answer")) || !bytes.HasPrefix(all, []byte("HTTP/1.1 200")) {
		t.Fatalf("got %q", all)
	}
}

// Large bodies stream both ways; the content arrives intact.
func TestLargeBodiesStream(t *testing.T) {
	const size = 48 << 20
	be := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			h := sha256.New()
			n, _ := io.Copy(h, r.Body)
			fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(size))
		buf := bytes.Repeat([]byte("0123456789abcdef"), 4096)
		for n := 0; n < size; n += len(buf) {
			w.Write(buf)
		}
	})
	_, addr := startProxy(t, "", backendTOML(be.addr(), ""))
	hc := &http.Client{Timeout: 60 * time.Second}
	resp, err := hc.Get("http://" + addr + "/down")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != size {
		t.Fatalf("download: %d bytes, %v", n, err)
	}
	payload := bytes.Repeat([]byte("xyz"), size/3)
	sum := sha256.Sum256(payload)
	want := fmt.Sprintf("%d %x", len(payload), sum)
	for _, chunked := range []bool{false, true} {
		var body io.Reader = bytes.NewReader(payload)
		if chunked {
			body = io.MultiReader(bytes.NewReader(payload)) // unknown length: chunked
		}
		resp, err := hc.Post("http://"+addr+"/up", "application/octet-stream", body)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != want {
			t.Fatalf("upload chunked=%v: got %q want %q", chunked, got, want)
		}
	}
}

func TestConcurrentKeepAliveLoad(t *testing.T) {
	be := startBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.Path) })
	_, addr := startProxy(t, "loops = 2", backendTOML(be.addr(), "conns = 4"))
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			br := bufio.NewReader(c)
			for i := 0; i < 100; i++ {
				p := fmt.Sprintf("/%d/%d", g, i)
				fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", p)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				if string(b) != p {
					errs <- fmt.Errorf("got %q want %q", b, p)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
