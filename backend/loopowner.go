package backend

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/apex-epoll/apex/cacheline"
	"github.com/apex-epoll/apex/h1parse"
	"github.com/apex-epoll/apex/loop"
	"github.com/apex-epoll/apex/retry"
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
	// SpliceTarget is the client connection response bodies may be
	// spliced to (loop.Conn.SpliceTo), or nil if they must be copied.
	SpliceTarget() *loop.Conn
	// ResponseSpliced: body bytes went to the client by splice; full says
	// its socket could not take them all (the upstream is paused until
	// the client drains).
	ResponseSpliced(full bool)
	// UpstreamDrained: request bytes queued on the upstream were written;
	// a paused request body may flow again.
	UpstreamDrained()
	// Gone reports whether the client connection has closed (a queued
	// client is then skipped).
	Gone() bool
	// Attempt is the backend's record of the request's trip (held by the
	// client so that it outlives the upstream connection).
	Attempt() *Attempt
}

// LoopPool is one loop's set of connections to one upstream server: the
// per-loop ownership of Phase 3. Everything in it is touched only by its
// loop's goroutine, so it needs no lock; the loop that reads a client's
// request also writes it upstream, reads the response and writes it back,
// with no goroutine hop.
//
// Invariant: open counts connections dialed and not yet closed (idle,
// busy or connecting), all holds exactly those, and open never exceeds
// max; every UpConn in idle has no request queued; len(waiters) <= queue,
// and every waiter holds an admission of lb on this server (a client that
// closes leaves the queue through LoopBackend.Leave; one found gone when
// popped is skipped and its admission given back); scratch holds one
// response head or chunk-size line at a time; once retired, idle stays
// empty.
type LoopPool struct {
	_       cacheline.Pad // written on every request by its loop only
	l       *loop.Loop
	addr    netip.AddrPort
	cfg     OwnerConfig
	max     int
	idle    []*UpConn
	all     []*UpConn // every open connection, idle or not
	open    int
	waiters []Client
	queue   int
	scratch []byte // response head being rewritten
	// depth is the most requests pipelined on one connection (1: none).
	depth int
	// batch is the connection that took a request this loop turn; other
	// replayable requests of the same turn join it, so they leave in one
	// write and their responses come back in few reads.
	batch     *UpConn
	batchTurn uint64
	// retired: a reload removed this pool's backend; no new clients come,
	// queued ones are served, and connections close as they fall idle.
	retired bool
	lb      *LoopBackend // the loop's backend this pool serves one server of
	idx     int          // the server's index in lb
	_       cacheline.Pad
}

// fail ends cl's try on this server without a response: stage says how far
// it got (for the retry rule), and the server is judged for it.
func (p *LoopPool) fail(cl Client, stage retry.Stage, status int) {
	cl.Attempt().Stage = stage
	p.lb.end(cl, failed)
	cl.ResponseError(status)
}

// Retire closes the idle connections and makes busy ones close when their
// exchanges end. Call on the pool's loop.
func (p *LoopPool) Retire() {
	p.retired = true
	p.batch = nil
	for len(p.idle) > 0 {
		p.idle[len(p.idle)-1].c.Close() // Closed (forget) takes it off idle
	}
}

// NewLoopPool makes a pool on l for addr, with at most max connections and
// queue waiting clients.
func NewLoopPool(l *loop.Loop, addr netip.AddrPort, cfg OwnerConfig, max, queue, depth int) *LoopPool {
	if depth < 1 {
		depth = 1
	}
	return &LoopPool{l: l, addr: addr, cfg: cfg, max: max, queue: queue, depth: depth}
}

// Open is the number of open upstream connections.
func (p *LoopPool) Open() int { return p.open }

// Acquire finds cl an upstream connection: an idle one (most recently used
// first), a new one, or a place in the queue. It returns false when the
// queue is full (the caller answers 503) or a connection cannot even be
// started (502 comes through ResponseError instead).
func (p *LoopPool) Acquire(cl Client, pipelinable bool) bool {
	pipelinable = pipelinable && p.depth > 1
	turn := p.l.Turn()
	if pipelinable && p.batch != nil && p.batchTurn == turn && p.batch.canPipeline() {
		p.batch.assign(cl)
		return true
	}
	var uc *UpConn
	if n := len(p.idle); n > 0 {
		uc = p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
	} else if p.open < p.max {
		var err error
		if uc, err = p.dial(); err != nil {
			p.cfg.Logger.Debug("upstream connect failed", "addr", p.addr, "err", err)
			p.fail(cl, retry.BeforeWrite, 502)
			p.lb.kick()
			return true
		}
	}
	if uc == nil && pipelinable && len(p.waiters) == 0 {
		// Every connection is open and busy: one with room in its
		// pipeline takes the request rather than the queue, so conns ×
		// pipeline requests can be in flight (with the queue first, a
		// busy backend got one request per connection and round trip,
		// and one write each). Not past anyone queued: a request that
		// may not be pipelined waits there for a connection to drain,
		// and newer ones overtaking it would keep them all busy.
		uc = p.leastBusy()
	}
	if uc != nil {
		if pipelinable {
			p.batch, p.batchTurn = uc, turn
		}
		uc.assign(cl)
		return true
	}
	if len(p.waiters) < p.queue {
		cl.Attempt().pipelinable = pipelinable
		p.waiters = append(p.waiters, cl)
		return true
	}
	return false
}

// joinMaxAge is how long the oldest request on a busy connection may have
// waited for its answer before the connection takes no more requests from
// other turns: a server stuck on it would hold those too (and a timeout
// would fail them all), where the queue serves them on whichever
// connection frees first. Healthy answers on loopback or a LAN come in
// well under it; a server slower than that is served as without
// pipelining across turns.
const joinMaxAge = int64(50 * time.Millisecond)

// leastBusy is the open connection with the fewest requests in flight
// that can take one more pipelined request and is worth joining, or nil.
// It scans every connection (conns, 16 by default), and only when none is
// idle and no more may be opened.
func (p *LoopPool) leastBusy() *UpConn {
	var best *UpConn
	now := p.l.Now()
	for _, uc := range p.all {
		if (best == nil || len(uc.q) < len(best.q)) && uc.joinable(now) {
			best = uc
		}
	}
	return best
}

// joinable reports whether a request from a later turn may go behind
// those uc carries: it has room, and its oldest answer is not held up.
// Not while that answer's body is on its way (it may be long, or paused
// for a client that does not read, and spliced bodies pause nothing
// visibly), nor once it has been owed for joinMaxAge.
func (uc *UpConn) joinable(now int64) bool {
	// Not a connection that has not answered yet either: a server that
	// closes after its first answer (keep-alive off) with requests unread
	// resets the connection, and the reset can destroy that answer.
	if !uc.canPipeline() || len(uc.q) == 0 || !uc.reused {
		return false
	}
	return !uc.headDone && !uc.c.ReadPaused() && now-uc.q[0].at < joinMaxAge
}

// pipelineWaiters gives uc, which has room in its pipeline, the queued
// requests that may be pipelined, oldest first, until the oldest may not
// (it waits for a connection of its own) or uc is full.
func (p *LoopPool) pipelineWaiters(uc *UpConn) {
	for len(p.waiters) > 0 && uc.canPipeline() {
		cl := p.waiters[0]
		if !cl.Gone() && !cl.Attempt().pipelinable {
			return
		}
		p.popWaiter()
		if cl.Gone() {
			p.lb.end(cl, cancelled)
			continue
		}
		uc.assign(cl)
	}
}

func (p *LoopPool) dial() (*UpConn, error) {
	uc := &UpConn{pool: p}
	c, err := p.l.Dial(p.addr, uc)
	if err != nil {
		return nil, err
	}
	uc.c = c
	p.open++
	p.all = append(p.all, uc)
	if p.cfg.Splice {
		c.SetReadMax(headReadMax)
	}
	c.SetTimeout(int64(p.cfg.ConnectTimeout))
	return uc, nil
}

// release takes uc back after an exchange ended cleanly: the next queued
// client gets it, or it waits in idle.
func (p *LoopPool) release(uc *UpConn) {
	// The exchange that ended gave back its limiter slot: requests
	// waiting in the backend's queue may go once uc is placed.
	defer p.lb.kick()
	if cl := p.nextWaiter(); cl != nil {
		uc.assign(cl)
		p.pipelineWaiters(uc)
		return
	}
	if p.retired {
		uc.c.Close()
		return
	}
	uc.c.SetTimeout(int64(p.cfg.IdleTimeout))
	p.idle = append(p.idle, uc)
}

// nextWaiter pops the oldest queued client still connected, or nil. A pop
// shifts the queue (O(len), at most conns × queue pointers): it happens
// only while every connection is busy, and keeps the queue a plain slice.
func (p *LoopPool) nextWaiter() Client {
	for len(p.waiters) > 0 {
		cl := p.popWaiter()
		if !cl.Gone() {
			return cl
		}
		p.lb.end(cl, cancelled)
	}
	return nil
}

// popWaiter takes the oldest queued client off the queue.
func (p *LoopPool) popWaiter() Client {
	cl := p.waiters[0]
	copy(p.waiters, p.waiters[1:])
	p.waiters[len(p.waiters)-1] = nil
	p.waiters = p.waiters[:len(p.waiters)-1]
	return cl
}

// forget takes a closed connection off the pool's books (UpConn.Closed
// then re-sends what it carried and calls serveQueue).
func (p *LoopPool) forget(uc *UpConn) {
	p.open--
	removeConn(&p.all, uc)
	removeConn(&p.idle, uc)
}

// serveQueue opens connections for queued clients while there is room,
// then lets the backend's queue use what came free.
func (p *LoopPool) serveQueue() {
	for p.open < p.max {
		cl := p.nextWaiter()
		if cl == nil {
			break
		}
		nuc, err := p.dial()
		if err != nil {
			p.fail(cl, retry.BeforeWrite, 502)
			continue
		}
		nuc.assign(cl)
		p.pipelineWaiters(nuc)
	}
	p.lb.kick()
}

// removeConn takes uc out of *list if it is there, keeping the order.
func removeConn(list *[]*UpConn, uc *UpConn) {
	s := *list
	for i, x := range s {
		if x == uc {
			copy(s[i:], s[i+1:])
			s[len(s)-1] = nil
			*list = s[:len(s)-1]
			return
		}
	}
}

// upReq is one request written on an UpConn and waiting for its response.
type upReq struct {
	cl          Client
	at          int64 // loop clock when it was assigned to the connection
	replayable  bool  // idempotent or keyed, and wholly in its head: may be sent again
	headRequest bool
	clientMinor int
}

// UpConn is one loop-owned upstream connection and the exchanges it
// carries: one at a time, or up to the backend's pipeline depth when the
// requests are replayable (responses come back in order, RFC 9112 §9.3.2).
// It implements loop.Handler for its socket.
//
// Invariant: q holds the requests written and not yet answered, oldest
// first, len(q) <= depth; the response fields describe q[0]'s response;
// a request with a streamed body is always alone in q.
type UpConn struct {
	c    *loop.Conn
	pool *LoopPool
	q    []upReq

	streamed   bool // q[0]'s body is streamed: cannot be resent, nothing may follow it
	reqDone    bool // the last request in q has been written whole
	reused     bool // this connection has completed an exchange before
	gotBytes   bool // bytes of q[0]'s response arrived
	headDone   bool // q[0]'s response head was delivered
	resp       h1parse.Response
	kind       h1parse.BodyKind
	remain     int64
	dec        h1parse.ChunkedDecoder
	chunkedOut bool
	closeAfter bool // the upstream said Connection: close, or framing forbids reuse
	closed     bool
}

// canPipeline reports whether one more replayable request may be queued.
func (uc *UpConn) canPipeline() bool {
	if uc.closed || uc.streamed || uc.closeAfter || !uc.reqDone || len(uc.q) >= uc.pool.depth {
		return false
	}
	for i := range uc.q {
		if !uc.q[i].replayable {
			return false
		}
	}
	return true
}

func (uc *UpConn) assign(cl Client) {
	if len(uc.q) == 0 {
		uc.resetResponse()
		uc.streamed = false
	}
	// The server's latency is timed from here: time spent waiting for a
	// connection is Apex's queueing, not the server's. (at is kept with
	// the request too: a client that leaves takes its Attempt along.)
	now := uc.pool.l.Now()
	uc.q = append(uc.q, upReq{cl: cl, at: now})
	cl.Attempt().sent = now
	cl.Assigned(uc)
}

func (uc *UpConn) resetResponse() {
	uc.gotBytes, uc.headDone = false, false
	uc.resp.Reset()
	if uc.pool.cfg.Splice {
		uc.c.SetReadMax(headReadMax)
	}
}

// Send writes the request (head, and the whole body when it is inline).
// The client keeps sent unchanged until its exchange ends: it sends it
// again itself if this connection turns out dead (Assigned is called with
// a fresh one; see Owner.serve for the rule).
func (uc *UpConn) Send(sent []byte, replayable, headRequest bool, clientMinor int, bodyFollows bool) {
	r := &uc.q[len(uc.q)-1]
	r.replayable = replayable && !bodyFollows
	r.headRequest = headRequest
	r.clientMinor = clientMinor
	uc.reqDone = !bodyFollows
	uc.streamed = bodyFollows
	uc.c.Write(sent)
	uc.c.SetTimeout(int64(uc.pool.cfg.ResponseTimeout))
}

// WriteBody queues streamed request body bytes (already framed) and
// reports whether the upstream's output is full (the client then pauses
// until UpstreamDrained).
func (uc *UpConn) WriteBody(b []byte, last bool) (full bool) {
	uc.c.Write(b)
	if last {
		uc.reqDone = true
	}
	uc.c.SetTimeout(int64(uc.pool.cfg.ResponseTimeout))
	return uc.c.OutFull()
}

// Resume lets response bytes flow again after the client drained.
func (uc *UpConn) Resume() {
	if !uc.closed {
		uc.c.ResumeRead()
	}
}

// Abandon is called when a client went away mid-exchange: the
// connection's state is unknown, so it is closed (requests pipelined
// behind are re-sent elsewhere).
func (uc *UpConn) Abandon(cl Client) {
	for i := range uc.q {
		if uc.q[i].cl == cl {
			uc.q[i].cl = nil
			uc.pool.lb.end(cl, cancelled)
		}
	}
	uc.c.Close()
}

// Opened implements loop.Handler: the connect completed.
func (uc *UpConn) Opened(c *loop.Conn) {
	if len(uc.q) > 0 {
		c.SetTimeout(int64(uc.pool.cfg.ResponseTimeout))
	} else {
		c.SetTimeout(int64(uc.pool.cfg.IdleTimeout))
	}
}

// Drained implements loop.Handler: queued request bytes went out.
func (uc *UpConn) Drained(*loop.Conn) {
	if n := len(uc.q); n > 0 && uc.q[n-1].cl != nil {
		uc.q[n-1].cl.UpstreamDrained()
	}
}

// Data implements loop.Handler: response bytes, possibly several
// pipelined responses in one read.
func (uc *UpConn) Data(c *loop.Conn, in []byte) int {
	used := uc.consume(c, in)
	if len(uc.q) > 0 && !c.Closed() && c.OutLen() == 0 {
		// More of the answers is owed and no request is about to carry
		// our acknowledgement: send it now. A server with Nagle's
		// algorithm on (no TCP_NODELAY; the bench's evio backend is one)
		// holds a small write while an earlier one is unacknowledged,
		// and our kernel delays that acknowledgement by up to 40 ms: a
		// head and body written separately took 40 ms a request, and
		// with requests pipelined behind a partly answered batch 1-2 %
		// of requests waited that long (p99 21-23 ms against 1.4 ms at
		// 64 connections).
		c.AckNow()
	}
	return used
}

// consume delivers the responses in in and returns how many bytes it used.
func (uc *UpConn) consume(c *loop.Conn, in []byte) int {
	used := 0
	for len(uc.q) > 0 && used < len(in) {
		uc.gotBytes = true
		if !uc.headDone {
			n, ok := uc.readHead(in[used:])
			if !ok {
				return len(in) // the exchange failed and the connection is closed
			}
			if n == 0 {
				return used // head incomplete: keep the bytes
			}
			used += n
		}
		n, done, err := uc.relayBody(in[used:])
		used += n
		if err != nil {
			uc.abortHead()
			return len(in)
		}
		if !done {
			if uc.pool.cfg.Splice && c.SpliceLeft() == 0 {
				c.SetReadMax(0) // a body relayed by copy: read it in big pieces
			}
			c.SetTimeout(int64(uc.pool.cfg.ResponseTimeout))
			return used
		}
		if !uc.finishOne() {
			return len(in)
		}
	}
	if used < len(in) {
		// Bytes nobody asked for: the framing is lost.
		c.Close()
		return len(in)
	}
	return used
}

// readHead parses q[0]'s response head (skipping interim 1xx responses)
// and delivers it; it returns the bytes used (0: incomplete) and false if
// the exchange failed.
func (uc *UpConn) readHead(in []byte) (int, bool) {
	used := 0
	for {
		err := uc.resp.Parse(in[used:], &uc.pool.cfg.Limits)
		if err == h1parse.ErrNeedMore {
			if used > 0 {
				return used, true // interim responses consumed; head follows
			}
			return 0, true
		}
		if err != nil {
			uc.pool.cfg.Logger.Debug("bad upstream response head", "addr", uc.pool.addr, "err", err)
			uc.failHead(502)
			return 0, false
		}
		if uc.resp.Status == 101 {
			uc.failHead(502) // Upgrade is never forwarded, so 101 is a protocol error
			return 0, false
		}
		if uc.resp.Status >= 200 {
			break
		}
		used += uc.resp.HeadLen // interim 1xx: dropped
		uc.resp.Reset()
	}
	used += uc.resp.HeadLen
	if !uc.startBody(in[used:]) {
		return 0, false
	}
	return used, true
}

// startBody delivers the head and sets up the body relay; false if the
// exchange already ended.
func (uc *UpConn) startBody(rest []byte) bool {
	r := &uc.resp
	req := &uc.q[0]
	uc.kind, uc.remain = r.Body(req.headRequest)
	if uc.kind == h1parse.BodyLength && int64(len(rest)) > uc.remain && len(uc.q) == 1 {
		// More bytes than the Content-Length promised, before anything
		// reached the client: refuse the response, drop the connection.
		uc.failHead(502)
		return false
	}
	uc.chunkedOut = req.clientMinor >= 1 && (uc.kind == h1parse.BodyChunked || uc.kind == h1parse.BodyUntilClose)
	mustClose := req.clientMinor == 0 && (uc.kind == h1parse.BodyChunked || uc.kind == h1parse.BodyUntilClose)
	if r.Close || uc.kind == h1parse.BodyUntilClose {
		uc.closeAfter = true
	}
	if uc.kind == h1parse.BodyChunked {
		uc.dec.Reset()
	}
	uc.headDone = true
	if req.cl != nil {
		a := req.cl.Attempt()
		a.status, a.headAt = r.Status, uc.pool.l.Now()
		uc.pool.scratch = AppendClientHead(uc.pool.scratch[:0], r, uc.chunkedOut)
		req.cl.ResponseHead(uc.pool.scratch, mustClose)
	}
	return true
}

// relayBody forwards q[0]'s body bytes from in; it returns how many it
// used and whether the body is complete.
func (uc *UpConn) relayBody(in []byte) (int, bool, error) {
	cl := uc.q[0].cl
	switch uc.kind {
	case h1parse.BodyNone:
		return 0, true, nil
	case h1parse.BodyLength:
		k := min(int64(len(in)), uc.remain)
		full := false
		if k > 0 {
			uc.remain -= k
			full = cl != nil && cl.ResponseBody(in[:k])
		}
		switch {
		case uc.remain == 0 || cl == nil:
		case full:
			uc.c.PauseRead()
		case uc.remain >= spliceMin && uc.pool.cfg.Splice:
			// The rest of the body goes straight to the client.
			if dst := cl.SpliceTarget(); dst != nil {
				uc.c.SpliceTo(dst, uc.remain)
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
			if len(data) > 0 && cl != nil {
				full = uc.writeFramed(cl, data)
			}
		}
		if uc.dec.Done() {
			if uc.chunkedOut && cl != nil {
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
		if len(in) > 0 && cl != nil && uc.writeFramed(cl, in) {
			uc.c.PauseRead()
		}
		return len(in), false, nil
	}
}

// spliceMin is the least body left after a read that is spliced rather
// than copied: below it, the pipe's two calls and the extra read that
// finds the socket empty cost more than copying saves.
const spliceMin = 8 << 10

// headReadMax caps an upstream read that waits for a response head when
// splicing is on, so that a large body is mostly left in the socket for
// the splice (it still holds some thirty small pipelined responses). Once
// a body that is not spliced has begun, reads take the full 64 KiB again.
const headReadMax = 4 << 10

// Spliced implements loop.SpliceHandler: n more body bytes went to the
// client without passing through Apex.
func (uc *UpConn) Spliced(c *loop.Conn, n int, full bool) {
	if uc.closed || len(uc.q) == 0 || !uc.headDone || uc.kind != h1parse.BodyLength {
		return
	}
	uc.gotBytes = true
	uc.remain -= int64(n)
	if cl := uc.q[0].cl; cl != nil {
		cl.ResponseSpliced(full)
	}
	if uc.remain > 0 {
		c.SetTimeout(int64(uc.pool.cfg.ResponseTimeout))
		return
	}
	uc.finishOne()
}

func (uc *UpConn) writeFramed(cl Client, data []byte) bool {
	if !uc.chunkedOut {
		return cl.ResponseBody(data)
	}
	uc.pool.scratch = h1parse.AppendChunkHeader(uc.pool.scratch[:0], len(data))
	cl.ResponseBody(uc.pool.scratch)
	cl.ResponseBody(data)
	return cl.ResponseBody(crlf)
}

var crlf = []byte("\r\n")

// finishOne ends q[0]'s complete exchange. It returns false when the
// connection was closed (the caller stops reading it).
func (uc *UpConn) finishOne() bool {
	req := uc.q[0]
	copy(uc.q, uc.q[1:])
	uc.q[len(uc.q)-1] = upReq{}
	uc.q = uc.q[:len(uc.q)-1]
	uc.reused = true
	uc.resetResponse()
	if !uc.reqDone && len(uc.q) == 0 {
		uc.closeAfter = true // answered before the body was all sent
	}
	uc.streamed = false
	if req.cl != nil {
		uc.pool.lb.end(req.cl, succeeded)
		req.cl.ResponseEnd()
	}
	if uc.closeAfter {
		uc.c.Close() // Closed re-sends whatever was pipelined behind
		return false
	}
	if len(uc.q) == 0 && !uc.closed {
		uc.c.ResumeRead()
		uc.pool.release(uc) // kicks the backend's queue
		return !uc.closed
	}
	// A pipeline slot came free, and a limiter slot.
	uc.pool.pipelineWaiters(uc)
	uc.pool.lb.kick()
	return !uc.closed
}

// failHead fails q[0] before any byte reached its client and drops the
// connection; requests behind it are re-sent (Closed).
func (uc *UpConn) failHead(status int) {
	req := uc.q[0]
	uc.q = uc.q[1:]
	if req.cl != nil {
		uc.pool.fail(req.cl, uc.stage(), status)
	}
	uc.c.Close()
}

// stage is how far q[0] got: never written (still connecting), written
// with no response byte back, or answered in part.
func (uc *UpConn) stage() retry.Stage {
	switch {
	case uc.gotBytes:
		return retry.AfterResponse
	case uc.c.Connecting():
		return retry.BeforeWrite
	}
	return retry.AfterWrite
}

// abortHead ends q[0], whose response broke after bytes were sent.
func (uc *UpConn) abortHead() {
	req := uc.q[0]
	uc.q = uc.q[1:]
	if req.cl != nil {
		uc.pool.lb.end(req.cl, failed)
		req.cl.ResponseAbort()
	}
	uc.c.Close()
}

// ReadClosed implements loop.Handler: the upstream closed its side.
func (uc *UpConn) ReadClosed(c *loop.Conn) {
	if len(uc.q) > 0 && uc.headDone && uc.kind == h1parse.BodyUntilClose {
		if cl := uc.q[0].cl; cl != nil && uc.chunkedOut {
			cl.ResponseBody(lastChunk)
		}
		uc.closeAfter = true
		uc.finishOne()
		return
	}
	c.Close() // Closed handles exchanges in progress
}

var lastChunk = []byte("0\r\n\r\n")

// Timeout implements loop.Handler.
func (uc *UpConn) Timeout(c *loop.Conn) {
	switch {
	case len(uc.q) == 0:
		c.Close() // idle too long
	case uc.headDone:
		uc.abortHead()
	case c.Connecting():
		uc.failHead(502)
	default:
		// No answer in time: the server is slow, not racing a close, so
		// nothing queued behind is re-sent to it either (Closed would:
		// the queue is emptied first).
		q := uc.q
		uc.q = nil
		st := uc.stage()
		for i, req := range q {
			if req.cl == nil {
				continue
			}
			if i > 0 {
				st = retry.AfterWrite
			}
			uc.pool.fail(req.cl, st, 504)
		}
		c.Close()
	}
}

// Closed implements loop.Handler. Exchanges still queued on a dying
// connection are re-sent on a fresh one when that is safe (the rule in
// Owner.serve: a reused connection or a request pipelined behind another,
// no response byte seen, a replayable request); otherwise they fail.
func (uc *UpConn) Closed(c *loop.Conn, err error) {
	uc.closed = true
	uc.pool.forget(uc)
	q := uc.q
	uc.q = nil
	// Re-sent requests go first, in their order: they are older than
	// anyone queued. Each goes alone, on a new connection while fewer
	// than conns are open, else at the front of the queue: the server
	// just closed a pipeline, and may close the next one after its first
	// answer too (then with requests unread it resets the connection,
	// which can destroy that answer).
	front := 0 // where the next re-send goes if it must queue
	for i, req := range q {
		if req.cl == nil {
			continue
		}
		switch {
		case i == 0 && uc.headDone:
			uc.pool.lb.end(req.cl, failed)
			req.cl.ResponseAbort()
		case req.replayable && (i > 0 || (uc.reused && !uc.gotBytes)):
			// The keep-alive race: the same try goes on, on a fresh
			// connection to the same server.
			uc.pool.cfg.Logger.Debug("re-sending request after upstream connection closed", "addr", uc.pool.addr, "err", err)
			uc.pool.resend(req.cl, &front)
		default:
			uc.pool.cfg.Logger.Debug("upstream connection closed before a response", "addr", uc.pool.addr, "err", err,
				"position", i, "reused", uc.reused, "replayable", req.replayable, "gotBytes", uc.gotBytes)
			st := retry.AfterWrite
			if i == 0 {
				st = uc.stage()
			}
			uc.pool.fail(req.cl, st, 502)
		}
	}
	uc.pool.serveQueue() // and kick: the failed tries gave their limiter slots back
}

// resend places a replayable request whose connection closed under it:
// alone on a new connection while fewer than max are open, else at the
// front of the queue (at *front, after earlier re-sends), where it waits
// for a connection of its own.
func (p *LoopPool) resend(cl Client, front *int) {
	if p.open < p.max {
		nuc, err := p.dial()
		if err != nil {
			p.fail(cl, retry.AfterWrite, 502)
			return
		}
		nuc.assign(cl) // the client sends its request again
		return
	}
	if len(p.waiters) >= p.queue {
		p.fail(cl, retry.AfterWrite, 503)
		return
	}
	cl.Attempt().pipelinable = false
	p.waiters = append(p.waiters, nil)
	copy(p.waiters[*front+1:], p.waiters[*front:])
	p.waiters[*front] = cl
	*front++
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
