package proxy

import (
	"github.com/apex-epoll/apex/backend"
	"github.com/apex-epoll/apex/h1parse"
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
		cl.rs.dec.Reset()
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
	cl.queued = true
	pool := rt.backend.Pool(w.loop.ID(), w.next())
	// Acquire may answer at once (Assigned, or ResponseError when the
	// connect cannot even start): nothing below may assume a state.
	cl.canReplay = !cl.streaming && replayable(r)
	cl.isHead = h1parse.EqualFold(r.Method, "HEAD")
	if !pool.Acquire(cl, cl.canReplay) {
		cl.queued = false
		w.inflight--
		w.stats.shed++
		cl.answer(503) // overloaded: answer at once
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

// Assigned implements backend.Client.
func (cl *client) Assigned(uc *backend.UpConn) {
	cl.queued = false
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
	if cl.uc != nil {
		cl.uc.Abandon(cl)
		cl.uc = nil
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
	cl.w.inflight--
	cl.w.stats.upstreamErr(status)
	cl.answer(status)
}

// ResponseAbort implements backend.Client.
func (cl *client) ResponseAbort() {
	cl.uc = nil
	cl.w.inflight--
	cl.state = stDone
	cl.c.Flush()
	cl.c.Close()
}

// UpstreamDrained implements backend.Client.
func (cl *client) UpstreamDrained() {
	if cl.state == stBody {
		cl.c.ResumeRead()
	}
}

// Gone implements backend.Client.
func (cl *client) Gone() bool { return cl.c == nil || cl.c.Closed() }
