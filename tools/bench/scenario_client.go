package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Clients and in-process backends of the reliability scenarios: raw
// sockets and a small HTTP/1.1 response reader (cheaper than net/http at
// tens of thousands of requests per second, and it tells a clean close
// from a truncated response).

// errClosedClean: the connection closed before the first byte of a
// response (a clean close in the scenarios' sense).
var errClosedClean = errors.New("connection closed before a response")

// errBadResponse: bytes that are not an HTTP/1.x response.
var errBadResponse = errors.New("malformed response")

// respInfo is what the scenarios need from one response.
type respInfo struct {
	status  int
	close   bool  // the server will close: Connection: close, HTTP/1.0, or a close-delimited body
	bodyLen int64 // body bytes read
}

// readResp reads one response to a GET (status line, fields, body framed
// by Content-Length, chunked coding or the close) and discards the body.
// A connection that closes before the first byte gives errClosedClean; one
// that closes later, an error wrapping io.ErrUnexpectedEOF.
func readResp(br *bufio.Reader) (respInfo, error) {
	var r respInfo
	line, err := br.ReadSlice('\n')
	if err != nil {
		if len(line) == 0 && errors.Is(err, io.EOF) {
			return r, errClosedClean
		}
		return r, truncated(err)
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return r, fmt.Errorf("%w: status line %q", errBadResponse, truncate(string(line), 60))
	}
	r.status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return r, fmt.Errorf("%w: status line %q", errBadResponse, truncate(string(line), 60))
	}
	http10 := line[7] == '0'
	r.close = http10
	cl := int64(-1)
	chunked := false
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return r, truncated(err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return r, fmt.Errorf("%w: field %q", errBadResponse, truncate(string(line), 60))
		}
		val = bytes.TrimSpace(val)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if cl, err = strconv.ParseInt(string(val), 10, 64); err != nil || cl < 0 {
				return r, fmt.Errorf("%w: Content-Length %q", errBadResponse, val)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.Contains(bytes.ToLower(val), []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			v := bytes.ToLower(val)
			if bytes.Contains(v, []byte("close")) {
				r.close = true
			} else if http10 && bytes.Contains(v, []byte("keep-alive")) {
				r.close = false
			}
		}
	}
	switch {
	case r.status < 200 || r.status == 204 || r.status == 304:
	case chunked:
		r.bodyLen, err = readChunked(br)
	case cl >= 0:
		var n int
		n, err = br.Discard(int(cl))
		r.bodyLen = int64(n)
		if err != nil {
			err = truncated(err)
		}
	default:
		r.close = true
		r.bodyLen, err = io.Copy(io.Discard, br)
	}
	return r, err
}

// readChunked discards a chunked body and its trailer section.
func readChunked(br *bufio.Reader) (int64, error) {
	var total int64
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return total, truncated(err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil || size < 0 {
			return total, fmt.Errorf("%w: chunk size %q", errBadResponse, truncate(string(line), 40))
		}
		if size == 0 {
			for { // trailer fields, then the empty line
				l, err := br.ReadSlice('\n')
				if err != nil {
					return total, truncated(err)
				}
				if len(bytes.TrimRight(l, "\r\n")) == 0 {
					return total, nil
				}
			}
		}
		n, err := br.Discard(int(size))
		total += int64(n)
		if err != nil {
			return total, truncated(err)
		}
		crlf, err := br.ReadSlice('\n')
		if err != nil {
			return total, truncated(err)
		}
		if len(bytes.TrimRight(crlf, "\r\n")) != 0 {
			return total, fmt.Errorf("%w: chunk data not followed by CRLF", errBadResponse)
		}
	}
}

func truncated(err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("response cut short: %w", io.ErrUnexpectedEOF)
	}
	return err
}

// errKind sorts a client-side failure for the counts: "closed" (a clean
// close before a response), "reset", "timeout", "truncated" (closed in the
// middle of a response), "malformed", "connect", or "other".
func errKind(err error) string {
	var ne net.Error
	var oe *net.OpError
	switch {
	case err == nil:
		return ""
	case errors.Is(err, errClosedClean):
		return "closed"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated"
	case errors.Is(err, errBadResponse):
		return "malformed"
	case errors.As(err, &oe) && oe.Op == "dial":
		return "connect"
	}
	return "other"
}

// kaClient is one keep-alive client connection that redials after the
// server closed it.
type kaClient struct {
	addr  string
	c     net.Conn
	br    *bufio.Reader
	req   []byte
	dials int

	// onConn counts the requests answered on the current connection and
	// last is the status of the latest of them (0: none yet): they say
	// what preceded an unexpected close.
	onConn, last int
}

// get sends one GET for path and reads the response within timeout. On
// an error or a response announcing a close the connection is dropped; the
// next get dials a new one.
func (k *kaClient) get(path string, timeout time.Duration) (respInfo, error) {
	if k.c == nil {
		c, err := net.DialTimeout("tcp", k.addr, timeout)
		if err != nil {
			return respInfo{}, err
		}
		k.c, k.dials, k.onConn, k.last = c, k.dials+1, 0, 0
		if k.br == nil {
			k.br = bufio.NewReaderSize(c, 32<<10)
		} else {
			k.br.Reset(c)
		}
	}
	k.req = append(k.req[:0], "GET "...)
	k.req = append(k.req, path...)
	k.req = append(k.req, " HTTP/1.1\r\nHost: bench\r\n\r\n"...)
	_ = k.c.SetDeadline(time.Now().Add(timeout))
	if _, err := k.c.Write(k.req); err != nil {
		k.drop()
		return respInfo{}, err
	}
	r, err := readResp(k.br)
	if err == nil {
		k.onConn, k.last = k.onConn+1, r.status
	}
	if err != nil || r.close {
		k.drop()
	}
	return r, err
}

// where describes the connection's history for a failure report: "on a
// new connection" or "after N responses on the connection, the last a
// STATUS".
func (k *kaClient) where() string {
	if k.onConn == 0 {
		return "on a new connection"
	}
	return fmt.Sprintf("after %d response(s) on the connection, the last a %d", k.onConn, k.last)
}

func (k *kaClient) drop() {
	if k.c != nil {
		k.c.Close()
		k.c = nil
	}
}

// closeNow closes c at once with a reset (SO_LINGER 0) so that the bench,
// which opens tens of thousands of connections, leaves no TIME_WAIT
// entries behind to exhaust the loopback ports of the next scenario.
func closeNow(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

// reqHead is what an in-process backend needs from a request head.
type reqHead struct {
	method, path string
	bodyLen      int64 // Content-Length, 0 if none
	chunked      bool
}

// readReqHead reads one request head from br.
func readReqHead(br *bufio.Reader) (reqHead, error) {
	var h reqHead
	line, err := br.ReadSlice('\n')
	if err != nil {
		return h, err
	}
	f := bytes.Fields(line)
	if len(f) != 3 {
		return h, fmt.Errorf("bad request line %q", truncate(string(line), 60))
	}
	h.method, h.path = string(f[0]), string(f[1])
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return h, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			return h, nil
		}
		name, val, _ := bytes.Cut(line, []byte(":"))
		val = bytes.TrimSpace(val)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if h.bodyLen, err = strconv.ParseInt(string(val), 10, 64); err != nil {
				return h, fmt.Errorf("bad Content-Length %q", val)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			h.chunked = bytes.Contains(bytes.ToLower(val), []byte("chunked"))
		}
	}
}

// rawServer is an in-process TCP server on a free loopback port: every
// accepted connection is passed to handle on its own goroutine. close
// stops accepting, closes every connection and waits (bounded) for the
// handlers.
type rawServer struct {
	ln       net.Listener
	handle   func(c net.Conn)
	accepted atomic.Int64

	mu    sync.Mutex // guards conns
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startRawServer(handle func(c net.Conn)) (*rawServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &rawServer{ln: ln, handle: handle, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

func (s *rawServer) addr() string { return s.ln.Addr().String() }

func (s *rawServer) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return
		}
		s.accepted.Add(1)
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serveConn(c)
	}
}

func (s *rawServer) serveConn(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	s.handle(c)
}

func (s *rawServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		fmt.Fprintln(os.Stderr, "bench: an in-process backend handler did not return within 5 s")
	}
}

// tally counts outcomes by name; safe for concurrent use.
type tally struct {
	mu sync.Mutex
	m  map[string]int64
}

func (t *tally) add(k string, n int64) {
	t.mu.Lock()
	if t.m == nil {
		t.m = map[string]int64{}
	}
	t.m[k] += n
	t.mu.Unlock()
}

// snapshot returns a copy of the counts.
func (t *tally) snapshot() map[string]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]int64, len(t.m))
	for k, v := range t.m {
		out[k] = v
	}
	return out
}

// maxDur keeps the largest duration stored into it; safe for concurrent use.
type maxDur struct{ v atomic.Int64 }

func (m *maxDur) observe(d time.Duration) {
	for {
		cur := m.v.Load()
		if int64(d) <= cur || m.v.CompareAndSwap(cur, int64(d)) {
			return
		}
	}
}

func (m *maxDur) get() time.Duration { return time.Duration(m.v.Load()) }

// latencyBucket names the decade of d for failure reports.
func latencyBucket(d time.Duration) string {
	for _, b := range []time.Duration{time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond, time.Second} {
		if d < b {
			return "< " + b.String()
		}
	}
	return "≥ 1s"
}

// noteDetails adds the counts of t to the report's notes, most frequent
// first, at most limit of them.
func noteDetails(rep *scenarioReport, prefix string, t *tally, limit int) {
	m := t.snapshot()
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	for i, k := range keys {
		if i == limit {
			rep.note("%s: %d more kinds", prefix, len(keys)-limit)
			break
		}
		rep.note("%s: %d × %s", prefix, m[k], k)
	}
}
