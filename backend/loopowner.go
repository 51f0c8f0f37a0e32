package backend

import (
	"errors"
	"net/netip"
	"strconv"

	"github.com/apex-epoll/apex/h1parse"
	"github.com/apex-epoll/apex/loop"
)

// Client is the loop-side party of a loop-owned exchange: the proxy's
// client connection. Every method is called on the loop that owns both the
// client and the upstream connection.
type Client interface {
	// Assigned gives the client the upstream connection for its request;
	// the client sends the request with UpConn.Send (and any streamed body
	// with UpConn.WriteBody).
	Assigned(uc *UpConn)
	// ResponseHead delivers the client-facing response head without its
	// final CRLF; mustClose says the client connection cannot be kept.
	ResponseHead(head []byte, mustClose bool)
	// ResponseBody delivers body bytes framed for the client and reports
	// whether the client's output is full (the upstream then pauses until
	// UpConn.Resume).
	ResponseBody(b []byte) (full bool)
	// ResponseEnd: the response is complete; the client no longer holds uc.
	ResponseEnd()
	// ResponseError: the exchange failed before any response byte reached
	// the client; answer status (502, 503, 504).
	ResponseError(status int)
	// ResponseAbort: the response broke after bytes were sent; the client
	// must close so the truncation shows.
	ResponseAbort()
	// UpstreamDrained: request bytes queued on the upstream were written;
	// a paused request body may flow again.
	UpstreamDrained()
	// Gone reports whether the client connection has closed (a queued
	// client is then skipped).
	Gone() bool
}

// LoopPool is one loop's set of connections to one upstream server: the
// per-loop ownership of Phase 3. Everything in it is touched only by its
// loop's goroutine, so it needs no lock; the loop that reads a client's
// request also writes it upstream, reads the response and writes it back,
// with no goroutine hop.
//
// Invariant: open counts connections dialed and not yet closed (idle,
// busy or connecting) and never exceeds max; every UpConn in idle has no
// client; len(waiters) <= queue.
type LoopPool struct {
	l       *loop.Loop
	addr    netip.AddrPort
	cfg     OwnerConfig
	max     int
	idle    []*UpConn
	open    int
	waiters []Client
	queue   int
	scratch []byte // response head being rewritten
}

// NewLoopPool makes a pool on l for addr, with at most max connections and
// queue waiting clients.
func NewLoopPool(l *loop.Loop, addr netip.AddrPort, cfg OwnerConfig, max, queue int) *LoopPool {
	return &LoopPool{l: l, addr: addr, cfg: cfg, max: max, queue: queue}
}

// Open is the number of open upstream connections.
func (p *LoopPool) Open() int { return p.open }

// Acquire finds cl an upstream connection: an idle one (most recently used
// first), a new one, or a place in the queue. It returns false when the
// queue is full (the caller answers 503) or a connection cannot even be
// started (502 comes through ResponseError instead).
func (p *LoopPool) Acquire(cl Client) bool {
	if n := len(p.idle); n > 0 {
		uc := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		uc.assign(cl)
		return true
	}
	if p.open < p.max {
		uc, err := p.dial()
		if err != nil {
			p.cfg.Logger.Debug("upstream connect failed", "addr", p.addr, "err", err)
			cl.ResponseError(502)
			return true
		}
		uc.assign(cl)
		return true
	}
	if len(p.waiters) < p.queue {
		p.waiters = append(p.waiters, cl)
		return true
	}
	return false
}

func (p *LoopPool) dial() (*UpConn, error) {
	uc := &UpConn{pool: p}
	c, err := p.l.Dial(p.addr, uc)
	if err != nil {
		return nil, err
	}
	uc.c = c
	p.open++
	c.SetTimeout(int64(p.cfg.ConnectTimeout))
	return uc, nil
}

// release takes uc back after an exchange ended cleanly: the next queued
// client gets it, or it waits in idle.
func (p *LoopPool) release(uc *UpConn) {
	for len(p.waiters) > 0 {
		cl := p.waiters[0]
		copy(p.waiters, p.waiters[1:])
		p.waiters[len(p.waiters)-1] = nil
		p.waiters = p.waiters[:len(p.waiters)-1]
		if !cl.Gone() {
			uc.assign(cl)
			return
		}
	}
	uc.c.SetTimeout(int64(p.cfg.IdleTimeout))
	p.idle = append(p.idle, uc)
}

// closed accounts for a connection that is gone, and gives its place to a
// queued client if there is one.
func (p *LoopPool) closed(uc *UpConn) {
	p.open--
	for i, x := range p.idle {
		if x == uc {
			copy(p.idle[i:], p.idle[i+1:])
			p.idle[len(p.idle)-1] = nil
			p.idle = p.idle[:len(p.idle)-1]
			break
		}
	}
	for len(p.waiters) > 0 && p.open < p.max {
		cl := p.waiters[0]
		copy(p.waiters, p.waiters[1:])
		p.waiters[len(p.waiters)-1] = nil
		p.waiters = p.waiters[:len(p.waiters)-1]
		if cl.Gone() {
			continue
		}
		nuc, err := p.dial()
		if err != nil {
			cl.ResponseError(502)
			continue
		}
		nuc.assign(cl)
	}
}

// UpConn is one loop-owned upstream connection and the exchange it
// carries. It implements loop.Handler for its socket.
//
// Invariant: cl != nil exactly while an exchange is in progress; remain
// and dec describe the response body still expected; sent holds the
// request bytes for a resend and is valid only while cl is set.
type UpConn struct {
	c    *loop.Conn
	pool *LoopPool
	cl   Client

	sent        []byte // the request as sent (head and inline body), for a resend
	replayable  bool   // see Owner.serve for the resend rule
	streamed    bool   // body bytes were streamed: cannot be resent
	headRequest bool
	clientMinor int
	reqDone     bool // the whole request has been written
	reused      bool // this connection served an exchange before
	gotBytes    bool // response bytes arrived
	headDone    bool // response head delivered
	resp        h1parse.Response
	kind        h1parse.BodyKind
	remain      int64
	dec         h1parse.ChunkedDecoder
	chunkedOut  bool
	closeAfter  bool // upstream said Connection: close, or framing forbids reuse
}

func (uc *UpConn) assign(cl Client) {
	uc.cl = cl
	uc.gotBytes, uc.headDone, uc.reqDone, uc.streamed = false, false, false, false
	uc.closeAfter = false
	uc.resp.Reset()
	cl.Assigned(uc)
}

// Send writes the request (head, and the whole body when it is inline).
// sent must stay unchanged until the exchange ends: it is re-sent on a
// fresh connection if this one turns out dead (see Owner.serve).
func (uc *UpConn) Send(sent []byte, replayable, headRequest bool, clientMinor int, bodyFollows bool) {
	uc.sent = sent
	uc.replayable = replayable && !bodyFollows
	uc.headRequest = headRequest
	uc.clientMinor = clientMinor
	uc.reqDone = !bodyFollows
	uc.c.Write(sent)
	uc.c.SetTimeout(int64(uc.pool.cfg.ResponseTimeout))
}

// WriteBody queues streamed request body bytes (already framed) and
// reports whether the upstream's output is full (the client then pauses
// until UpstreamDrained).
func (uc *UpConn) WriteBody(b []byte, last bool) (full bool) {
	uc.streamed = true
	uc.replayable = false
	uc.c.Write(b)
	if last {
		uc.reqDone = true
	}
	uc.c.SetTimeout(int64(uc.pool.cfg.ResponseTimeout))
	return uc.c.OutFull()
}

// Resume lets response bytes flow again after the client drained.
func (uc *UpConn) Resume() {
	if uc.c != nil {
		uc.c.ResumeRead()
	}
}

// Abandon is called when the client went away mid-exchange: the
// connection's state is unknown, so it is closed.
func (uc *UpConn) Abandon() {
	uc.cl = nil
	uc.c.Close()
}

// Opened implements loop.Handler: the connect completed.
func (uc *UpConn) Opened(c *loop.Conn) {
	if uc.cl != nil {
		c.SetTimeout(int64(uc.pool.cfg.ResponseTimeout))
	} else {
		c.SetTimeout(int64(uc.pool.cfg.IdleTimeout))
	}
}

// Drained implements loop.Handler: queued request bytes went out.
func (uc *UpConn) Drained(*loop.Conn) {
	if uc.cl != nil {
		uc.cl.UpstreamDrained()
	}
}

// Data implements loop.Handler: response bytes.
func (uc *UpConn) Data(c *loop.Conn, in []byte) int {
	if uc.cl == nil {
		// Bytes on an idle connection: nothing may be in flight, so the
		// framing is lost. Drop the connection.
		c.Close()
		return len(in)
	}
	uc.gotBytes = true
	used := 0
	if !uc.headDone {
		for {
			err := uc.resp.Parse(in[used:], &uc.pool.cfg.Limits)
			if err == h1parse.ErrNeedMore {
				return used
			}
			if err != nil {
				uc.pool.cfg.Logger.Debug("bad upstream response head", "addr", uc.pool.addr, "err", err)
				uc.fail(502)
				return len(in)
			}
			if uc.resp.Status >= 200 {
				break
			}
			if uc.resp.Status == 101 {
				uc.fail(502)
				return len(in)
			}
			used += uc.resp.HeadLen // interim 1xx: dropped
			uc.resp.Reset()
		}
		used += uc.resp.HeadLen
		if !uc.startBody(in[used:]) {
			return len(in)
		}
	}
	n, done, err := uc.relayBody(in[used:])
	used += n
	if err != nil {
		uc.abort()
		return len(in)
	}
	if done {
		if used < len(in) {
			uc.closeAfter = true // bytes after the response: framing lost
		}
		uc.finish()
		return len(in)
	}
	c.SetTimeout(int64(uc.pool.cfg.ResponseTimeout))
	return used
}

// startBody delivers the head and sets up the body relay; false if the
// exchange already ended.
func (uc *UpConn) startBody(rest []byte) bool {
	r := &uc.resp
	uc.kind, uc.remain = r.Body(uc.headRequest)
	if uc.kind == h1parse.BodyLength && int64(len(rest)) > uc.remain {
		// More bytes than the Content-Length promised, before anything
		// reached the client: refuse the response, drop the connection.
		uc.fail(502)
		return false
	}
	uc.chunkedOut = uc.clientMinor >= 1 && (uc.kind == h1parse.BodyChunked || uc.kind == h1parse.BodyUntilClose)
	mustClose := uc.clientMinor == 0 && (uc.kind == h1parse.BodyChunked || uc.kind == h1parse.BodyUntilClose)
	if r.Close || uc.kind == h1parse.BodyUntilClose {
		uc.closeAfter = true
	}
	if uc.kind == h1parse.BodyChunked {
		uc.dec.Reset()
	}
	uc.pool.scratch = AppendClientHead(uc.pool.scratch[:0], r, uc.chunkedOut)
	uc.headDone = true
	uc.cl.ResponseHead(uc.pool.scratch, mustClose)
	return true
}

var errBodyFraming = errors.New("bad response body framing")

// relayBody forwards body bytes from in; it returns how many it used and
// whether the body is complete.
func (uc *UpConn) relayBody(in []byte) (int, bool, error) {
	cl := uc.cl
	switch uc.kind {
	case h1parse.BodyNone:
		return 0, true, nil
	case h1parse.BodyLength:
		k := min(int64(len(in)), uc.remain)
		if k > 0 {
			uc.remain -= k
			if cl.ResponseBody(in[:k]) && uc.remain > 0 {
				uc.c.PauseRead()
			}
		}
		return int(k), uc.remain == 0, nil
	case h1parse.BodyChunked:
		used := 0
		full := false
		for used < len(in) && !uc.dec.Done() {
			n, data, err := uc.dec.Decode(in[used:])
			if err != nil {
				return used, false, err
			}
			used += n
			if len(data) > 0 {
				full = uc.writeFramed(data)
			}
		}
		if uc.dec.Done() {
			if uc.chunkedOut {
				uc.pool.scratch = h1parse.AppendLastChunk(uc.pool.scratch[:0], uc.dec.Trailer())
				cl.ResponseBody(uc.pool.scratch)
			}
			return used, true, nil
		}
		if full {
			uc.c.PauseRead()
		}
		return used, false, nil
	default: // until close
		if len(in) > 0 && uc.writeFramed(in) {
			uc.c.PauseRead()
		}
		return len(in), false, nil
	}
}

func (uc *UpConn) writeFramed(data []byte) bool {
	if !uc.chunkedOut {
		return uc.cl.ResponseBody(data)
	}
	uc.pool.scratch = h1parse.AppendChunkHeader(uc.pool.scratch[:0], len(data))
	uc.cl.ResponseBody(uc.pool.scratch)
	uc.cl.ResponseBody(data)
	return uc.cl.ResponseBody(crlf)
}

var crlf = []byte("\r\n")

// finish ends a complete exchange and recycles or closes the connection.
func (uc *UpConn) finish() {
	cl := uc.cl
	uc.cl = nil
	uc.sent = nil
	reusable := !uc.closeAfter && uc.reqDone
	uc.reused = true
	if reusable {
		uc.c.ResumeRead()
		uc.pool.release(uc)
	} else {
		uc.c.Close()
	}
	cl.ResponseEnd()
}

// fail ends the exchange before any byte reached the client.
func (uc *UpConn) fail(status int) {
	cl := uc.cl
	uc.cl = nil
	uc.c.Close()
	if cl != nil {
		cl.ResponseError(status)
	}
}

// abort ends an exchange whose response broke after bytes were sent.
func (uc *UpConn) abort() {
	cl := uc.cl
	uc.cl = nil
	uc.c.Close()
	if cl != nil {
		cl.ResponseAbort()
	}
}

// ReadClosed implements loop.Handler: the upstream closed its side.
func (uc *UpConn) ReadClosed(c *loop.Conn) {
	if uc.cl != nil && uc.headDone && uc.kind == h1parse.BodyUntilClose {
		if uc.chunkedOut {
			uc.cl.ResponseBody(lastChunk)
		}
		uc.closeAfter = true
		uc.finish()
		return
	}
	c.Close() // Closed handles an exchange in progress
}

var lastChunk = []byte("0\r\n\r\n")

// Timeout implements loop.Handler.
func (uc *UpConn) Timeout(c *loop.Conn) {
	switch {
	case uc.cl == nil:
		c.Close() // idle too long (or a connect nobody waits for)
	case uc.headDone:
		uc.abort()
	case c.Connecting():
		uc.fail(502)
	default:
		uc.fail(504)
	}
}

// Closed implements loop.Handler. A connection that dies with an exchange
// in progress either resends it (the rule in Owner.serve: reused
// connection, no response byte, replayable request) or fails it.
func (uc *UpConn) Closed(c *loop.Conn, err error) {
	uc.pool.closed(uc)
	cl := uc.cl
	if cl == nil {
		return
	}
	uc.cl = nil
	switch {
	case uc.headDone:
		cl.ResponseAbort()
	case uc.reused && !uc.gotBytes && uc.replayable && !uc.streamed:
		uc.pool.cfg.Logger.Debug("resending request after reused connection failed", "addr", uc.pool.addr, "err", err)
		nuc, derr := uc.pool.dial()
		if derr != nil {
			cl.ResponseError(502)
			return
		}
		// The client sends its request again on the new connection.
		nuc.assign(cl)
	default:
		cl.ResponseError(502)
	}
}

// AppendClientHead writes the client-facing response head, without the
// final CRLF: status line, end-to-end fields, and the framing Apex chose.
// Hop-by-hop fields are dropped (RFC 9110 §7.6.1).
func AppendClientHead(dst []byte, r *h1parse.Response, chunkedOut bool) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(r.Status), 10)
	dst = append(dst, ' ')
	dst = append(dst, r.Reason...)
	dst = append(dst, "\r\n"...)
	for i := range r.Fields {
		f := &r.Fields[i]
		if r.IsHopByHop(f.Name) {
			continue
		}
		dst = append(dst, f.Name...)
		dst = append(dst, ": "...)
		dst = append(dst, f.Value...)
		dst = append(dst, "\r\n"...)
	}
	if chunkedOut {
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
	}
	return dst
}
