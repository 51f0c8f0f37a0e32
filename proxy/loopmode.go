package proxy

import (
	"bytes"

	"github.com/apex-epoll/apex/backend"
	"github.com/apex-epoll/apex/balance"
	"github.com/apex-epoll/apex/config"
	"github.com/apex-epoll/apex/h1parse"
	"github.com/apex-epoll/apex/loop"
)

// This file is the client's side of loop-owned exchanges (owner =
// "loop"): the upstream connection lives on the same loop as the client,
// so request and response bytes move between the two sockets inside one
// loop turn, with no goroutine hop.

// startLoopExchange sends the request to a loop-owned upstream connection;
// it returns how many bytes of rest (after the head) it consumed.
func (cl *client) startLoopExchange(rt *route, host, rest []byte) int {
	w := cl.w
	r := &cl.rs.req
	cl.loopMode = true
	cl.upHead = cl.appendUpstreamHead(cl.upHead[:0], rt, host)
	var consumed int
	var berr error
	cl.upHead, consumed, cl.streaming, berr = cl.inlineBody(cl.upHead, rest)
	if berr != nil {
		w.stats.refused(refusalStatus(berr))
		cl.refuse(refusalStatus(berr))
		return len(rest)
	}
	if cl.streaming {
		cl.bodySeen = 0
		if cl.rs.dec != nil {
			cl.rs.dec.Reset() // inlineBody may have used it on a partial body
		}
	}
	if cl.streaming {
		cl.state = stBody
		cl.c.SetTimeout(w.cfg.bodyTimeout)
	} else {
		cl.state = stWait
		cl.c.PauseRead()
		cl.c.SetTimeout(0) // upstream timeouts govern now
	}
	w.inflight++
	lb := rt.backend.Loop(w.loop.ID())
	cl.lb = lb
	cl.att.Reset()
	if rt.hashKey.Kind != config.HashKeyNone {
		cl.att.Key = hashKeyOf(&rt.hashKey, r, cl.c)
	}
	// Acquire may answer at once (Assigned, or ResponseError when the
	// connect cannot even start): nothing below may assume a state.
	cl.canReplay = !cl.streaming && replayable(r)
	cl.isHead = h1parse.EqualFold(r.Method, "HEAD")
	cl.queued = true
	switch lb.Acquire(cl, cl.canReplay) {
	case backend.Queued:
		// Every server is at its limit: wait, at most queue_timeout.
		cl.queueTimer = true
		cl.c.SetTimeout(lb.QueueTimeout())
	case backend.Shed:
		cl.queued = false
		w.inflight--
		w.stats.shed++
		cl.answer(lb.ShedStatus()) // overloaded: answer at once
		return consumed
	case backend.NoServer:
		cl.queued = false
		w.inflight--
		w.stats.upstreamErr(503)
		cl.answer(503)
		return consumed
	}
	if cl.state == stBody {
		if r.Expect100 {
			cl.c.Write(continue100)
		}
		return consumed + cl.feedBodyLoop(rest)
	}
	return consumed
}

// restoreTimer sets the timer a request has once it stops waiting for a
// server: the body timeout while a body is being read, none otherwise
// (the upstream's timeouts govern).
func (cl *client) restoreTimer() {
	if cl.state == stBody {
		cl.c.SetTimeout(cl.w.cfg.bodyTimeout)
	} else {
		cl.c.SetTimeout(0)
	}
}

// Attempt implements backend.Client.
func (cl *client) Attempt() *backend.Attempt { return &cl.att }

// Assigned implements backend.Client.
func (cl *client) Assigned(uc *backend.UpConn) {
	cl.queued = false
	if cl.queueTimer {
		cl.queueTimer = false
		cl.restoreTimer()
	}
	cl.uc = uc
	cl.rs.upSent = cl.w.loop.Now()
	// cl.rs.req's slices point into input already consumed: only the facts
	// saved at startLoopExchange may be used here.
	uc.Send(cl.upHead, cl.canReplay, cl.isHead, cl.rs.req.Minor, cl.streaming)
	if cl.state == stBody {
		cl.c.ResumeRead()
	}
}

// feedBodyLoop writes request body bytes straight to the upstream
// connection, re-framing chunked bodies, and returns how many it used.
func (cl *client) feedBodyLoop(in []byte) int {
	w := cl.w
	uc := cl.uc
	if uc == nil {
		cl.c.PauseRead() // still queued for a connection
		return 0
	}
	used := 0
	full := false
	for !cl.reqDone && len(in) > 0 && !full {
		switch cl.bodyKind {
		case h1parse.BodyLength:
			k := min(cl.bodyLeft, int64(len(in)))
			cl.bodyLeft -= k
			cl.bodySeen += k
			cl.reqDone = cl.bodyLeft == 0
			full = uc.WriteBody(in[:k], cl.reqDone)
			in = in[k:]
			used += int(k)
		case h1parse.BodyChunked:
			n, data, err := cl.rs.dec.Decode(in)
			if err != nil {
				cl.loopBodyError(400)
				return used + len(in)
			}
			in = in[n:]
			used += n
			if len(data) > 0 {
				cl.bodySeen += int64(len(data))
				w.scratch = h1parse.AppendChunkHeader(w.scratch[:0], len(data))
				uc.WriteBody(w.scratch, false)
				uc.WriteBody(data, false)
				full = uc.WriteBody(crlf, false)
			}
			if cl.rs.dec.Done() {
				cl.reqDone = true
				w.scratch = h1parse.AppendLastChunk(w.scratch[:0], cl.rs.dec.Trailer())
				full = uc.WriteBody(w.scratch, true)
			}
		}
		if w.cfg.maxBody > 0 && cl.bodySeen > w.cfg.maxBody {
			cl.loopBodyError(413)
			return used + len(in)
		}
	}
	if cl.reqDone {
		if cl.state == stBody {
			cl.state = stWait
		}
		cl.c.PauseRead()
		cl.c.SetTimeout(0)
	} else {
		if full {
			cl.c.PauseRead()
		}
		cl.c.SetTimeout(w.cfg.bodyTimeout)
	}
	return used
}

var crlf = []byte("\r\n")

// loopBodyError refuses a broken or oversized request body: the upstream
// connection, which has part of it, is dropped.
func (cl *client) loopBodyError(status int) {
	cl.w.stats.refused(status)
	switch {
	case cl.uc != nil:
		cl.uc.Abandon(cl)
		cl.uc = nil
		cl.w.inflight--
	case cl.queued:
		cl.lb.Leave(cl)
		cl.queued, cl.queueTimer = false, false
		cl.w.inflight--
	}
	cl.keepAlive = false
	cl.reqDone = true
	cl.state = stWait
	if cl.headSent {
		cl.c.Flush()
		cl.c.Close()
		return
	}
	cl.writeError(status)
	cl.finishResponse()
}

// ResponseHead implements backend.Client.
func (cl *client) ResponseHead(head []byte, mustClose bool) {
	if mustClose || !cl.reqDone || cl.w.draining {
		cl.keepAlive = false
	}
	cl.rs.status, cl.rs.upHead = statusOf(head), cl.w.loop.Now()
	cl.respMark = cl.c.Written()
	cl.c.Write(head)
	cl.writeConnection()
	cl.headSent = true
}

// ResponseBody implements backend.Client.
func (cl *client) ResponseBody(b []byte) bool {
	cl.c.Write(b)
	if cl.c.OutFull() {
		cl.c.SetTimeout(cl.w.cfg.sendTimeout)
		return true
	}
	return false
}

// SpliceTarget implements backend.Client.
func (cl *client) SpliceTarget() *loop.Conn { return cl.c }

// ResponseSpliced implements backend.Client.
func (cl *client) ResponseSpliced(full bool) {
	if full {
		cl.c.SetTimeout(cl.w.cfg.sendTimeout)
	}
}

// ResponseEnd implements backend.Client.
func (cl *client) ResponseEnd() {
	cl.uc = nil
	cl.w.inflight--
	if cl.state == stBody {
		// The upstream answered before the body was all read: the rest
		// of it cannot be told from the next request.
		cl.keepAlive = false
		cl.reqDone = true
	}
	cl.finishResponse()
}

// ResponseError implements backend.Client.
func (cl *client) ResponseError(status int) {
	cl.uc = nil
	cl.queued = false
	if cl.lb.Retry(cl, cl.canReplay, cl.streaming) {
		// Another try is under way: it was sent (Assigned ran), it waits
		// for a connection or in the backend's queue, or it failed at
		// once and an inner ResponseError already answered.
		cl.w.stats.retries++
		if cl.uc == nil && cl.state == stWait && !cl.headSent {
			cl.queued = true
			if cl.att.Waiting() {
				cl.queueTimer = true
				cl.c.SetTimeout(cl.lb.QueueTimeout())
			}
		}
		return
	}
	if cl.queueTimer {
		cl.queueTimer = false
		cl.restoreTimer()
	}
	cl.w.inflight--
	cl.w.stats.upstreamErr(status)
	cl.answer(status)
}

// ResponseAbort implements backend.Client.
func (cl *client) ResponseAbort() {
	cl.uc = nil
	cl.w.inflight--
	if cl.retractResponse() {
		cl.answer(502)
		return
	}
	cl.state = stDone
	cl.c.Flush()
	cl.c.Close()
}

// retractResponse takes back a response whose body broke before any byte
// of it left Apex (its head and body arrived in one read, say): the client
// then gets a 502 on a connection that stays usable, instead of a cut
// response and a close.
func (cl *client) retractResponse() bool {
	if !cl.headSent || !cl.c.Retract(cl.respMark) {
		return false
	}
	cl.headSent = false
	cl.w.stats.upstreamErr(502)
	return true
}

// UpstreamDrained implements backend.Client.
func (cl *client) UpstreamDrained() {
	if cl.state == stBody {
		cl.c.ResumeRead()
	}
}

// Gone implements backend.Client.
func (cl *client) Gone() bool { return cl.c == nil || cl.c.Closed() }

// hashKeyOf hashes the request's balancing key (balance = "hash"): a
// header's value, a cookie's value, or the client's address. A request
// without the header or cookie hashes as empty, so such requests share one
// server rather than scatter.
func hashKeyOf(k *config.HashKey, r *h1parse.Request, c *loop.Conn) uint64 {
	switch k.Kind {
	case config.HashKeyClientIP:
		a := c.RemoteAddr().Addr().As16()
		return balance.Sum64(a[:])
	case config.HashKeyHeader:
		for i := range r.Fields {
			if h1parse.EqualFold(r.Fields[i].Name, k.Name) {
				return balance.Sum64(r.Fields[i].Value)
			}
		}
	case config.HashKeyCookie:
		for i := range r.Fields {
			if h1parse.EqualFold(r.Fields[i].Name, "cookie") {
				if v, ok := cookieValue(r.Fields[i].Value, k.Name); ok {
					return balance.Sum64(v)
				}
			}
		}
	}
	return balance.Sum64(nil)
}

// cookieValue finds name's value in a Cookie field ("a=1; b=2").
func cookieValue(field []byte, name string) ([]byte, bool) {
	for len(field) > 0 {
		var pair []byte
		if i := bytes.IndexByte(field, ';'); i >= 0 {
			pair, field = field[:i], field[i+1:]
		} else {
			pair, field = field, nil
		}
		pair = bytes.TrimLeft(pair, " \t")
		if len(pair) > len(name) && pair[len(name)] == '=' && string(pair[:len(name)]) == name {
			return pair[len(name)+1:], true
		}
	}
	return nil, false
}
