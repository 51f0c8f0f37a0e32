package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/tidwall/evio"
)

// The backend is an HTTP/1.1 responder on github.com/tidwall/evio. Every
// response is built in the Data callback of the connection's own loop (the
// evio inline fast path: no goroutine hand-off, no Wake), from responses
// precomputed at start-up, with Content-Length and keep-alive.
//
// It runs in its own process (the bench re-executes itself with
// -serve-backend ADDR) so that it can be pinned with taskset and so that
// its CPU time is never counted as the proxy's.

// smallBody is the body of "/": 14 bytes.
const smallBody = "Hello, world!\n"

// bodyPaths maps each path the backend serves to its body size. "/" is the
// 14-byte body; "/Nk" is N KiB of 'x'. Scenarios may use any of them.
var bodyPaths = map[string]int{
	"/":     len(smallBody),
	"/1k":   1 << 10,
	"/4k":   4 << 10,
	"/16k":  16 << 10,
	"/64k":  64 << 10,
	"/256k": 256 << 10,
	"/1m":   1 << 20,
}

// maxHeaderBytes bounds a request head; beyond it the backend answers 431
// and closes.
const maxHeaderBytes = 64 << 10

// responder holds the precomputed responses. It is read-only after
// newResponder, so evio loops share it without locking.
type responder struct {
	byPath   map[string][]byte
	notFound []byte
	tooLarge []byte
	badReq   []byte
}

func buildResponse(status string, body []byte, close bool) []byte {
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 " + status + "\r\n")
	b.WriteString("Server: apex-bench-echo\r\n")
	b.WriteString("Content-Type: text/plain\r\n")
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n")
	if close {
		b.WriteString("Connection: close\r\n")
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

func newResponder() *responder {
	r := &responder{byPath: map[string][]byte{}}
	for path, n := range bodyPaths {
		var body []byte
		if path == "/" {
			body = []byte(smallBody)
		} else {
			body = bytes.Repeat([]byte{'x'}, n)
		}
		r.byPath[path] = buildResponse("200 OK", body, false)
	}
	r.notFound = buildResponse("404 Not Found", []byte("not found\n"), false)
	r.tooLarge = buildResponse("431 Request Header Fields Too Large", nil, true)
	r.badReq = buildResponse("400 Bad Request", nil, true)
	return r
}

// request is what the backend needs to know about one parsed request head.
type request struct {
	path      string
	bodyLen   int  // Content-Length of the request body, 0 if none
	keepAlive bool // false: close after answering
}

// parseHead parses a request head (without the final CRLFCRLF). It is
// deliberately small: request line, Content-Length, Connection,
// Transfer-Encoding (chunked request bodies are refused).
func parseHead(head []byte) (request, error) {
	var rq request
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return rq, fmt.Errorf("bad request line %q", line)
	}
	sp2 := bytes.LastIndexByte(line, ' ')
	if sp2 <= sp1 {
		return rq, fmt.Errorf("bad request line %q", line)
	}
	target := line[sp1+1 : sp2]
	proto := string(line[sp2+1:])
	if q := bytes.IndexByte(target, '?'); q >= 0 {
		target = target[:q]
	}
	rq.path = string(target)
	switch proto {
	case "HTTP/1.1":
		rq.keepAlive = true
	case "HTTP/1.0":
		rq.keepAlive = false
	default:
		return rq, fmt.Errorf("unsupported protocol %q", proto)
	}
	for len(rest) > 0 {
		var h []byte
		h, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, err := strconv.Atoi(string(value))
			if err != nil || n < 0 {
				return rq, fmt.Errorf("bad Content-Length %q", value)
			}
			rq.bodyLen = n
		case bytes.EqualFold(name, []byte("Connection")):
			for _, tok := range strings.Split(string(value), ",") {
				switch strings.ToLower(strings.TrimSpace(tok)) {
				case "close":
					rq.keepAlive = false
				case "keep-alive":
					rq.keepAlive = true
				}
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return rq, fmt.Errorf("request Transfer-Encoding %q not supported", value)
		}
	}
	return rq, nil
}

// connState is the per-connection context: bytes of an incomplete request
// carried over to the next read, and a reusable output buffer for
// pipelined reads.
type connState struct {
	pending []byte
	out     []byte
}

// handle consumes complete requests from data and returns the bytes to send,
// the unconsumed remainder, and whether to close after sending. When data
// holds exactly one request the precomputed response is returned as is
// (evio copies it into the connection's output buffer).
func (r *responder) handle(cs *connState, data []byte) (out, rest []byte, closeConn bool) {
	nreq := 0
	var single []byte
	cs.out = cs.out[:0]
	for {
		end := bytes.Index(data, []byte("\r\n\r\n"))
		if end < 0 {
			if len(data) > maxHeaderBytes {
				return r.appendOut(cs, &nreq, single, r.tooLarge), nil, true
			}
			break
		}
		rq, err := parseHead(data[:end])
		if err != nil {
			return r.appendOut(cs, &nreq, single, r.badReq), nil, true
		}
		total := end + 4 + rq.bodyLen
		if len(data) < total {
			break // request body not all here yet
		}
		data = data[total:]
		resp, ok := r.byPath[rq.path]
		if !ok {
			resp = r.notFound
		}
		if nreq == 0 {
			single = resp
		} else {
			if nreq == 1 {
				cs.out = append(cs.out, single...)
			}
			cs.out = append(cs.out, resp...)
		}
		nreq++
		if !rq.keepAlive {
			closeConn = true
			data = nil
			break
		}
	}
	switch nreq {
	case 0:
		out = nil
	case 1:
		out = single
	default:
		out = cs.out
	}
	return out, data, closeConn
}

// appendOut adds a final error response after whatever was already answered.
func (r *responder) appendOut(cs *connState, nreq *int, single, resp []byte) []byte {
	switch *nreq {
	case 0:
		return resp
	case 1:
		cs.out = append(cs.out[:0], single...)
	}
	return append(cs.out, resp...)
}

// serveBackend runs the evio server on addr with the given number of loops.
// It only returns on error.
func serveBackend(addr string, loops int) error {
	r := newResponder()
	var ev evio.Events
	if loops < 1 {
		loops = 1
	}
	ev.NumLoops = loops
	ev.LoadBalance = evio.LeastConnections
	ev.Serving = func(s evio.Server) evio.Action {
		fmt.Fprintf(os.Stderr, "backend: evio serving on %s, %d loop(s)\n", addr, s.NumLoops)
		return evio.None
	}
	ev.Opened = func(c evio.Conn) ([]byte, evio.Options, evio.Action) {
		c.SetContext(&connState{})
		// ReuseInputBuffer: no per-read copy; handle() copies the
		// unconsumed tail into connState.pending.
		return nil, evio.Options{ReuseInputBuffer: true}, evio.None
	}
	ev.Data = func(c evio.Conn, in []byte) ([]byte, evio.Action) {
		if in == nil { // Wake; never used
			return nil, evio.None
		}
		cs := c.Context().(*connState)
		data := in
		if len(cs.pending) > 0 {
			cs.pending = append(cs.pending, in...)
			data = cs.pending
		}
		out, rest, closeConn := r.handle(cs, data)
		// rest may alias cs.pending or evio's shared input buffer:
		// copy it to the front of pending (copy handles overlap).
		n := copy(cs.pending[:cap(cs.pending)], rest)
		if n < len(rest) {
			cs.pending = append(cs.pending[:n], rest[n:]...)
		} else {
			cs.pending = cs.pending[:n]
		}
		if closeConn {
			return out, evio.Close
		}
		return out, evio.None
	}
	return evio.Serve(ev, "tcp4://"+addr)
}
