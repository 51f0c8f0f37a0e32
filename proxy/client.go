package proxy

import (
	"errors"

	"github.com/apex-epoll/apex/backend"
	"github.com/apex-epoll/apex/h1parse"
	"github.com/apex-epoll/apex/loop"
)

// client states
const (
	stIdle uint8 = iota // between requests (keep-alive), nothing read yet
	stHead              // reading a request head
	stBody              // streaming a request body to the owner
	stWait              // request sent; waiting for / relaying the response
	stDone              // closing
)

// inlineBodyMax is the largest request body sent in the same write as its
// head (and so replayable); larger bodies are streamed.
const inlineBodyMax = 16 << 10

// client is the proxy's state for one client connection. It lives on its
// loop; only that loop's goroutine touches it.
//
// Invariant: ex != nil exactly while an exchange is with an owner (from
// Submit to its Final chunk); held is a chunk kept back while the client's
// output is full, and at most one is held; in loop mode, queued is true
// exactly while a pool's queue or the backend's queue holds the client
// (att.Waiting() for the latter) and uc == nil then; the client is reused
// (from the worker's free list) only when its connection is closed,
// ex == nil and no queue holds it.
type client struct {
	c     *loop.Conn
	w     *worker
	state uint8
	// rs holds the request being read (parsed head, chunked decoder),
	// taken from the worker when a request starts and given back when its
	// response is done, so an idle keep-alive connection holds only this
	// struct. rs.req's byte slices point into the connection's input and
	// are valid only during the Data call that parsed them.
	rs    *reqState
	minor int // the request's HTTP/1.x minor version

	ex        *backend.Exchange
	reqDone   bool // the whole request (head and body) has been read
	keepAlive bool // the connection stays open after this response
	headSent  bool // response bytes have been written to the client
	abortBody bool // the client failed mid-body; the owner still has to be told
	held      *backend.Chunk
	// loop mode (owner = "loop"): the upstream connection is on this loop
	loopMode bool
	uc       *backend.UpConn // assigned upstream connection, nil while queued
	queued   bool            // waiting in a pool's or the backend's queue for a connection
	// queueTimer: the connection's timer is the backend queue's
	// queue_timeout (cl.att.Waiting() says whether it still waits there).
	queueTimer bool
	lb         *backend.LoopBackend
	att        backend.Attempt // the request's trip upstream, kept by the backend
	upHead     []byte          // the upstream request (head and inline body)
	streaming  bool            // the request body is streamed after upHead
	canReplay  bool            // the request may be sent again (saved: cl.rs.req's bytes do not outlive Data)
	isHead     bool            // the method is HEAD

	// pendingStatus is Apex's own answer decided while the owner still had
	// the exchange (a broken or oversized request body); it replaces the
	// owner's result.
	pendingStatus int

	respMark uint64 // c.Written() before the response head (see retractResponse)

	// request body framing
	bodyKind h1parse.BodyKind
	bodyLeft int64
	bodySeen int64
	cur      *backend.BodyBuf // buffer being filled
}

// Opened implements loop.Handler.
func (w *worker) Opened(c *loop.Conn) {
	cl := w.getClient()
	cl.c = c
	c.Ctx = cl
	cl.state = stIdle
	c.SetTimeout(w.idleTimeout())
	w.conns.Add(1)
}

// Data implements loop.Handler.
func (w *worker) Data(c *loop.Conn, in []byte) int {
	cl := c.Ctx.(*client)
	switch cl.state {
	case stIdle:
		cl.state = stHead
		if cl.rs == nil {
			cl.rs = w.getReqState()
		}
		cl.rs.req.Reset()
		cl.rs.began = w.loop.Now()
		cl.rs.outMark = c.Written()
		c.SetTimeout(w.cfg.headerTimeout)
		fallthrough
	case stHead:
		return cl.readHead(in)
	case stBody:
		if cl.loopMode {
			return cl.feedBodyLoop(in)
		}
		return cl.feedBody(in)
	}
	// stWait / stDone: not reading; keep the bytes (a pipelined request).
	c.PauseRead()
	return 0
}

func (cl *client) readHead(in []byte) int {
	w := cl.w
	err := cl.rs.req.Parse(in, &w.cfg.limits)
	if err == h1parse.ErrNeedMore {
		return 0
	}
	if err != nil {
		status := 400
		if pe, ok := err.(*h1parse.Error); ok {
			status = pe.Status
		}
		w.stats.refused(status)
		cl.refuse(status)
		return len(in)
	}
	n := cl.rs.req.HeadLen
	return n + cl.startRequest(in[:n], in[n:])
}

// refuse answers status and closes: the framing of what follows is in
// doubt, so nothing more is read from this connection.
func (cl *client) refuse(status int) {
	cl.state = stDone
	cl.c.Write(errResp[status][1])
	if rs := cl.rs; rs != nil {
		rs.begun, rs.status = true, status
		cl.w.endRequest(cl)
	}
	cl.c.CloseWhenFlushed()
}

// startRequest routes a parsed head and returns how many bytes of rest (the
// bytes after the head) it consumed.
func (cl *client) startRequest(head, rest []byte) int {
	w := cl.w
	r := &cl.rs.req
	cl.minor = r.Minor
	cl.rs.begun = true
	w.stats.requests++
	cl.reqDone, cl.headSent, cl.abortBody, cl.pendingStatus = false, false, false, 0
	cl.loopMode = false
	cl.keepAlive = !r.Close && !w.draining
	if cl.c.PeerClosed() {
		cl.keepAlive = false
	}
	authority, path := splitTarget(r.Target)
	host := r.Host
	if authority != nil {
		host = authority // RFC 9112 §3.2.2: absolute-form wins over Host
	}
	rt := w.routes.match(host, path)
	if rt != nil {
		cl.rs.stat = rt.stat
	}
	if w.cfg.alog != nil {
		w.logHead(cl, rt)
	}
	if h1parse.EqualFold(r.Method, "CONNECT") {
		w.stats.refused(501)
		cl.refuse(501)
		return len(rest)
	}
	cl.bodyKind, cl.bodyLeft = r.Body()
	if cl.bodyKind == h1parse.BodyChunked {
		w.chunkedDecoder(cl.rs)
	}
	if w.cfg.maxBody > 0 && cl.bodyKind == h1parse.BodyLength && cl.bodyLeft > w.cfg.maxBody {
		w.stats.refused(413)
		cl.refuse(413)
		return len(rest)
	}
	if rt == nil || rt.fixed {
		// Answered here. A request body we do not read would be taken
		// for the next request, so the connection closes after it.
		if cl.bodyKind != h1parse.BodyNone {
			cl.keepAlive = false
		}
		if rt == nil {
			cl.writeError(404)
		} else {
			cl.writeFixed(rt)
		}
		cl.reqDone = true
		cl.finishResponse()
		return 0
	}

	if rt.backend.LoopMode {
		return cl.startLoopExchange(rt, host, rest)
	}
	ex := backend.NewExchange()
	ex.Loop = cl.c.Loop()
	ex.Sink = cl
	ex.HeadRequest = h1parse.EqualFold(r.Method, "HEAD")
	ex.ClientMinor = r.Minor
	ex.Head = cl.appendUpstreamHead(ex.Head, rt, host)
	var consumed int
	var berr error
	ex.Head, consumed, ex.Streaming, berr = cl.inlineBody(ex.Head, rest)
	if berr != nil {
		ex.Release()
		w.stats.refused(refusalStatus(berr))
		cl.refuse(refusalStatus(berr))
		return len(rest)
	}
	ex.Replayable = !ex.Streaming && replayable(r)
	cl.ex = ex
	cl.rs.upSent = w.loop.Now()
	if !rt.backend.Submit(ex, w.next()) {
		cl.ex = nil
		ex.Release()
		w.stats.shed++
		cl.answer(503) // overloaded: answer at once
		return consumed
	}
	w.inflight++
	if !ex.Streaming {
		cl.state = stWait
		cl.c.PauseRead()
		cl.c.SetTimeout(0) // the owner's upstream timeout governs now
		return consumed
	}
	cl.state = stBody
	cl.bodySeen = 0
	if cl.rs.dec != nil {
		cl.rs.dec.Reset() // inlineBody may have used it on a partial body
	}
	if r.Expect100 {
		// Apex asks for the body itself (as nginx does) and does not
		// forward Expect: the client gets its 100 now.
		cl.c.Write(continue100)
	}
	cl.c.SetTimeout(w.cfg.bodyTimeout)
	return consumed + cl.feedBody(rest)
}

// errBodyTooLarge refuses a body over server.max_body_bytes (413).
var errBodyTooLarge = errors.New("request body over max_body_bytes")

// refusalStatus is the status for a body refused by inlineBody.
func refusalStatus(err error) int {
	if err == errBodyTooLarge {
		return 413
	}
	return 400
}

// inlineBody appends the request body to head when it is small and
// already here (one write upstream, and the request stays replayable), and
// reports how many bytes of rest it used and whether the body must be
// streamed instead.
func (cl *client) inlineBody(head, rest []byte) ([]byte, int, bool, error) {
	switch {
	case cl.bodyKind == h1parse.BodyNone:
		cl.reqDone = true
		return head, 0, false, nil
	case cl.bodyKind == h1parse.BodyLength && cl.bodyLeft <= inlineBodyMax && int64(len(rest)) >= cl.bodyLeft:
		n := int(cl.bodyLeft)
		head = append(head, rest[:n]...)
		cl.bodyLeft = 0
		cl.reqDone = true
		return head, n, false, nil
	case cl.bodyKind == h1parse.BodyChunked && len(rest) > 0 && len(rest) <= inlineBodyMax:
		// A small chunked body that is all here is validated before
		// anything goes upstream: bad framing is refused with nothing
		// forwarded, as for a bad head.
		dec := cl.rs.dec
		dec.Reset()
		mark := len(head)
		used := 0
		var total int64
		for used < len(rest) && !dec.Done() {
			n, data, err := dec.Decode(rest[used:])
			if err != nil {
				dec.Reset()
				return head[:mark], 0, false, err
			}
			used += n
			if total += int64(len(data)); cl.w.cfg.maxBody > 0 && total > cl.w.cfg.maxBody {
				dec.Reset()
				return head[:mark], 0, false, errBodyTooLarge
			}
			if len(data) > 0 {
				head = h1parse.AppendChunkHeader(head, len(data))
				head = append(head, data...)
				head = h1parse.AppendChunkEnd(head)
			}
		}
		if dec.Done() {
			head = h1parse.AppendLastChunk(head, dec.Trailer())
			cl.reqDone = true
			return head, used, false, nil
		}
		dec.Reset() // incomplete: stream it from the start
		return head[:mark], 0, true, nil
	}
	return head, 0, true, nil
}

// replayable: idempotent methods (RFC 9110 §9.2.2) or an Idempotency-Key.
func replayable(r *h1parse.Request) bool {
	switch string(r.Method) { // no allocation: the compiler compares in place
	case "GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE":
		return true
	}
	for i := range r.Fields {
		if h1parse.EqualFold(r.Fields[i].Name, "idempotency-key") {
			return true
		}
	}
	return false
}

// feedBody moves request body bytes from in into body buffers for the
// owner, re-framing chunked bodies, and returns how many bytes it used.
func (cl *client) feedBody(in []byte) int {
	w := cl.w
	used := 0
	for !cl.reqDone {
		if cl.cur == nil {
			if cl.cur = cl.ex.FreeBody(); cl.cur == nil {
				cl.c.PauseRead() // both buffers upstream: backpressure
				return used
			}
		}
		b := cl.cur
		if len(in) == 0 {
			break
		}
		switch cl.bodyKind {
		case h1parse.BodyLength:
			k := min(int64(cap(b.Data)-len(b.Data)), cl.bodyLeft, int64(len(in)))
			b.Data = append(b.Data, in[:k]...)
			in = in[k:]
			used += int(k)
			cl.bodyLeft -= k
			cl.bodySeen += k
			if cl.bodyLeft == 0 {
				cl.reqDone = true
			}
		case h1parse.BodyChunked:
			room := cap(b.Data) - len(b.Data) - 32 // chunk-size line and CRLF
			if room <= 0 {
				cl.sendCur(false)
				continue
			}
			n, data, err := cl.rs.dec.Decode(in[:min(len(in), room)])
			if err != nil {
				cl.bodyError(400)
				return used + len(in)
			}
			in = in[n:]
			used += n
			if len(data) > 0 {
				b.Data = h1parse.AppendChunkHeader(b.Data, len(data))
				b.Data = append(b.Data, data...)
				b.Data = h1parse.AppendChunkEnd(b.Data)
				cl.bodySeen += int64(len(data))
			}
			if cl.rs.dec.Done() {
				b.Data = h1parse.AppendLastChunk(b.Data, cl.rs.dec.Trailer())
				cl.reqDone = true
			}
		}
		if w.cfg.maxBody > 0 && cl.bodySeen > w.cfg.maxBody {
			cl.bodyError(413)
			return used + len(in)
		}
		if cl.reqDone || cap(b.Data)-len(b.Data) < 64 {
			cl.sendCur(cl.reqDone)
		}
	}
	if cl.reqDone {
		cl.state = stWait
		cl.c.PauseRead()
		cl.c.SetTimeout(0)
	} else {
		cl.c.SetTimeout(w.cfg.bodyTimeout)
	}
	return used
}

func (cl *client) sendCur(last bool) {
	b := cl.cur
	cl.cur = nil
	b.Last = last
	cl.ex.SendBody(b)
}

// bodyError handles a broken request body: the owner is told to give up,
// and the client gets status once the owner lets go of the exchange.
func (cl *client) bodyError(status int) {
	cl.w.stats.refused(status)
	cl.pendingStatus = status
	cl.keepAlive = false
	cl.reqDone = true
	cl.state = stWait
	cl.c.PauseRead()
	cl.c.SetTimeout(0)
	cl.abortBody = true
	cl.sendAbort()
}

// sendAbort passes the Abort marker to the owner, now if a buffer is free,
// else when one comes back (BodySent).
func (cl *client) sendAbort() {
	b := cl.cur
	if b == nil {
		b = cl.ex.FreeBody()
	}
	if b == nil {
		return
	}
	cl.cur = nil
	b.Data = b.Data[:0]
	b.Abort = true
	cl.abortBody = false
	cl.ex.SendBody(b)
}

// BodySent implements backend.Sink: a body buffer came back.
func (cl *client) BodySent(*backend.BodyBuf) {
	if cl.abortBody {
		cl.sendAbort()
		return
	}
	if cl.state == stBody && !cl.c.Closed() {
		cl.c.ResumeRead()
	}
}

// Deliver implements backend.Sink: response bytes from the owner.
func (cl *client) Deliver(ch *backend.Chunk) {
	// Read everything needed from ch now: Release hands it back to the
	// owner goroutine.
	ex := ch.Exchange()
	c := cl.c
	final, abort := ch.Final, ch.Abort
	switch {
	case c.Closed():
		ch.Release()
	case ch.Status != 0 || cl.pendingStatus != 0 && final:
		// The owner failed before any response byte, or Apex refused the
		// body meanwhile: answer with our own status.
		status := ch.Status
		if cl.pendingStatus != 0 {
			status = cl.pendingStatus
		}
		ch.Release()
		if cl.headSent {
			c.Close()
			break
		}
		if !cl.reqDone {
			cl.keepAlive = false
		}
		cl.w.stats.upstreamErr(status)
		cl.writeError(status)
	default:
		cl.writeChunk(ch)
	}
	if final {
		cl.ex = nil
		ex.ReclaimBody()
		ex.Release()
		cl.w.inflight--
		if c.Closed() {
			cl.w.putClient(cl)
			return
		}
		if abort {
			if !cl.retractResponse() {
				// The response broke after bytes went out: send what
				// we have, then close hard (no lingering half-close)
				// so the client sees the response is incomplete.
				c.Flush()
				c.Close()
				return
			}
			cl.writeError(502)
		}
		if cl.state == stDone {
			return
		}
		cl.finishResponse()
	}
}

// writeChunk writes response bytes to the client, holding the chunk back
// (and so stopping the owner) while the client's output is full.
func (cl *client) writeChunk(ch *backend.Chunk) {
	c := cl.c
	if len(ch.Head) > 0 {
		if ch.MustClose || !cl.reqDone || cl.w.draining {
			cl.keepAlive = false
		}
		cl.rs.status, cl.rs.upHead = statusOf(ch.Head), cl.w.loop.Now()
		cl.respMark = c.Written()
		c.Write(ch.Head)
		cl.writeConnection()
		cl.headSent = true
	}
	c.Write(ch.Data)
	if !ch.Final && c.OutFull() {
		cl.held = ch
		c.SetTimeout(cl.w.cfg.sendTimeout)
		return
	}
	ch.Release()
}

// writeConnection ends a head with the Connection field Apex decided.
func (cl *client) writeConnection() {
	switch {
	case !cl.keepAlive:
		cl.c.WriteString("Connection: close\r\n\r\n")
	case cl.minor == 0:
		cl.c.WriteString("Connection: keep-alive\r\n\r\n")
	default:
		cl.c.WriteString("\r\n")
	}
}

// answer sends Apex's own response status and ends the request. A request
// body not read to its end cannot be told from the next request, so the
// connection then closes.
func (cl *client) answer(status int) {
	if !cl.reqDone {
		cl.keepAlive = false
		cl.reqDone = true
	}
	cl.writeError(status)
	cl.finishResponse()
}

func (cl *client) writeError(status int) {
	cl.w.stats.answered(status)
	if cl.rs != nil {
		cl.rs.status = status
	}
	i := 0
	if !cl.keepAlive {
		i = 1
	}
	cl.c.Write(errResp[status][i])
	cl.headSent = true
}

func (cl *client) writeFixed(rt *route) {
	cl.rs.status = rt.status
	cl.c.Write(rt.fixedHead)
	cl.writeConnection()
	if !h1parse.EqualFold(cl.rs.req.Method, "HEAD") {
		cl.c.Write(rt.fixedBody)
	}
	cl.headSent = true
}

// finishResponse ends a request/response cycle: keep the connection for the
// next request (offering any pipelined bytes already read), or close it.
func (cl *client) finishResponse() {
	c := cl.c
	cl.w.endRequest(cl)
	cl.w.putReqState(cl)
	if !cl.keepAlive || !cl.reqDone || cl.w.draining {
		cl.state = stDone
		c.CloseWhenFlushed()
		return
	}
	cl.state = stIdle
	c.SetTimeout(cl.w.idleTimeout())
	if c.OutFull() {
		// The client is not reading its responses (a pipelining flood):
		// its next request is read only once it has caught up (Drained),
		// so responses never pile up beyond output_buffer and the
		// backend sees no more requests meanwhile.
		return
	}
	c.ResumeRead()
}

// Drained implements loop.Handler: the client caught up.
func (w *worker) Drained(c *loop.Conn) {
	cl := c.Ctx.(*client)
	if cl.uc != nil {
		cl.uc.Resume()
		return
	}
	if cl.state == stIdle {
		c.ResumeRead() // caught up after finishResponse held back its next request
		return
	}
	if ch := cl.held; ch != nil {
		cl.held = nil
		ch.Release()
		if cl.state == stWait {
			c.SetTimeout(0)
		}
	}
}

// Timeout implements loop.Handler.
func (w *worker) Timeout(c *loop.Conn) {
	cl := c.Ctx.(*client)
	if cl.queueTimer {
		cl.queueTimer = false
		if cl.att.Waiting() && cl.lb.Leave(cl) {
			// queue_timeout: shed, quickly, with Retry-After.
			cl.queued = false
			w.inflight--
			w.stats.shed++
			cl.answer(cl.lb.ShedStatus())
			return
		}
		// The request left the queue for a server's connection queue:
		// the usual timers govern again.
		cl.restoreTimer()
		return
	}
	switch cl.state {
	case stHead:
		if c.Buffered() > 0 {
			// Part of a head arrived, too slowly (slowloris): say so.
			w.stats.refused(408)
			cl.refuse(408)
			return
		}
		c.Close()
	case stBody:
		if cl.loopMode {
			cl.loopBodyError(408)
			return
		}
		cl.bodyError(408)
	default:
		// Idle keep-alive, or a client that stopped reading its response.
		c.Close()
	}
}

// ReadClosed implements loop.Handler: the client shut its write side.
func (w *worker) ReadClosed(c *loop.Conn) {
	cl := c.Ctx.(*client)
	switch cl.state {
	case stIdle, stHead:
		// Nothing (or only part of a head) to answer; a response to the
		// previous request may still be on its way out.
		cl.state = stDone
		c.CloseWhenFlushed()
	case stBody:
		// The body ended before its framing said.
		if cl.loopMode {
			cl.loopBodyError(400)
			return
		}
		cl.bodyError(400)
	case stWait:
		cl.keepAlive = false // answer, then close (half-close, RFC 9112 §9.6)
	}
}

// Closed implements loop.Handler.
func (w *worker) Closed(c *loop.Conn, err error) {
	cl := c.Ctx.(*client)
	w.conns.Add(-1)
	w.endRequest(cl) // a request cut short: counted with the status it got, if any
	if h := cl.held; h != nil {
		cl.held = nil
		h.Release()
	}
	if cl.loopMode {
		if cl.uc != nil {
			cl.uc.Abandon(cl)
			cl.uc = nil
			w.inflight--
		}
		if cl.queued {
			// Out of whichever queue holds it, so cl can be reused.
			cl.lb.Leave(cl)
			cl.queued, cl.queueTimer = false, false
			w.inflight--
		}
		w.putClient(cl)
		return
	}
	if cl.ex == nil {
		w.putClient(cl)
		return
	}
	// The owner still has the exchange: tell it, and keep cl until the
	// Final chunk comes back (Deliver frees it then).
	cl.ex.Cancel()
	if cl.state == stBody {
		cl.abortBody = true
		cl.sendAbort()
	}
}
