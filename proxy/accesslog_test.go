package proxy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAccessLogLines: one well-formed JSON line per request (proxied,
// fixed, refused), with the fields a reader needs.
func TestAccessLogLines(t *testing.T) {
	be := startBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	path := filepath.Join(t.TempDir(), "access.log")
	conf := fmt.Sprintf("[log]\naccess = %q\nformat = \"json\"\n\n[[route]]\npath_prefix = \"/fixed\"\nreturn = 204\n\n%s", path, backendTOML(be.addr(), ""))
	s, addr := startProxy(t, "", conf)
	c := dial(t, addr)
	br := bufio.NewReader(c)
	roundTrip(t, c, br, "GET /x?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: tester\r\nReferer: http://r/\r\n\r\n", "GET")
	roundTrip(t, c, br, "HEAD /fixed HTTP/1.1\r\nHost: example.com\r\n\r\n", "HEAD")
	bad := dial(t, addr)
	roundTrip(t, bad, bufio.NewReader(bad), "GET / HTTP/1.1\r\nHost: x\r\nBad Field: y\r\n\r\n", "GET")
	bad.Close()
	c.Close()
	shutdownNow(s) // flushes the log

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines:\n%s", len(lines), data)
	}
	var got []map[string]any
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("bad line %q: %v", l, err)
		}
		got = append(got, m)
	}
	check := func(i int, want map[string]any) {
		t.Helper()
		for k, v := range want {
			if got[i][k] != v {
				t.Errorf("line %d: %s = %#v, want %#v\n%s", i, k, got[i][k], v, lines[i])
			}
		}
	}
	check(0, map[string]any{"method": "GET", "uri": "/x?q=1", "host": "example.com", "status": 200.0,
		"user_agent": "tester", "referer": "http://r/", "route": "/", "backend": "app", "remote_addr": "127.0.0.1"})
	check(1, map[string]any{"method": "HEAD", "uri": "/fixed", "status": 204.0, "route": "/fixed", "backend": ""})
	check(2, map[string]any{"status": 400.0, "remote_addr": "127.0.0.1"})
	if b, _ := got[0]["bytes"].(float64); b < 100 {
		t.Errorf("bytes %v: the response head and body are more", got[0]["bytes"])
	}
	if _, ok := got[0]["upstream_ms"]; !ok {
		t.Errorf("proxied request without upstream_ms: %s", lines[0])
	}
	if _, ok := got[1]["upstream_ms"]; ok {
		t.Errorf("fixed answer with upstream_ms: %s", lines[1])
	}
}

// TestAccessLogSlowSinkDoesNotBlock: the log goes to a pipe nobody reads.
// Requests keep being answered at full speed; lines beyond the log's
// buffers are dropped and counted.
func TestAccessLogSlowSinkDoesNotBlock(t *testing.T) {
	be := startBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	fifo := filepath.Join(t.TempDir(), "access.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// A reader that never reads, so the proxy's open succeeds and its
	// writes block once the pipe's buffer is full.
	rd, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	conf := fmt.Sprintf("[log]\naccess = %q\nformat = \"combined\"\n\n%s", fifo, backendTOML(be.addr(), ""))
	s, addr := startProxy(t, "", conf)
	defer func() {
		// Drain the pipe so the log can close.
		go io.Copy(io.Discard, rd)
		shutdownNow(s)
	}()

	const clients, each = 8, 1000
	errs := make(chan error, clients)
	start := time.Now()
	for g := 0; g < clients; g++ {
		go func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(60 * time.Second))
			br := bufio.NewReader(c)
			for i := 0; i < each; i++ {
				fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: x\r\nUser-Agent: %s\r\n\r\n", i, strings.Repeat("u", 100))
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- fmt.Errorf("status %d", resp.StatusCode)
					return
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < clients; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	lines, drops, _ := s.AccessLogCounts()
	t.Logf("%d requests in %v: %d lines written, %d dropped", clients*each, time.Since(start), lines, drops)
	if drops == 0 {
		t.Fatal("a blocked sink should have made the log drop lines")
	}
	// Lines written are at most what fits in the writer's 64 KiB buffer
	// and the pipe's; queued ones are at most the log's buffers.
	if lines+drops > clients*each {
		t.Fatalf("lines %d + drops %d exceed %d requests", lines, drops, clients*each)
	}
}
