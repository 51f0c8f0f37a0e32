package proxy

import (
	"sync/atomic"

	"github.com/apex-epoll/apex/accesslog"
	"github.com/apex-epoll/apex/metrics"

	"github.com/apex-epoll/apex/h1parse"
	"github.com/apex-epoll/apex/loop"
)

// workerConfig is the per-loop copy of the settings the request path reads.
type workerConfig struct {
	alog          *accesslog.Log // nil: no access log
	limits        h1parse.Limits
	headerTimeout int64
	idleTimeout   int64
	bodyTimeout   int64
	sendTimeout   int64
	maxBody       int64
}

// worker is the proxy's handler for one loop: everything it holds is
// touched only by that loop's goroutine.
//
// Invariant: conns counts this loop's open client connections; inflight
// counts exchanges submitted and not yet finished (Final received); free
// holds at most 1024 clients whose connection is closed and whose exchange
// is done, reqFree at most 256 request states not in use; scratch holds
// one chunk-size line at a time.
type worker struct {
	srv      *Server
	loop     *loop.Loop
	cfg      workerConfig
	routes   *routes
	draining bool
	conns    atomic.Int64 // open client connections; read by Shutdown from another goroutine
	inflight int
	rr       int
	free     []*client
	reqFree  []*reqState               // request states not in use
	decFree  []*h1parse.ChunkedDecoder // chunked decoders not in use (at most 64)
	scratch  []byte                    // chunk framing being written
	stats    workerStats
}

// workerStats are this loop's counters; only its goroutine writes them.
type workerStats struct {
	requests  uint64
	shed      uint64
	retries   uint64
	refusedBy [600]uint64 // Apex's own refusals by status
	answers   [6]uint64   // Apex-generated answers by status class
	upErrs    [600]uint64
	routes    []routeStats // by route stat id (Server.statID); grows only after a reload
	_         [64]byte
}

// routeStats is one route's traffic on one loop.
//
// Invariant: workerStats.routes has at most one entry per metrics id,
// and ids are only made for (route, backend) pairs a configuration named
// (Server.statID), so the table is bounded by the configurations loaded.
type routeStats struct {
	classes  [6]uint64 // by status class; 0: ended without a response
	duration metrics.Histogram
	upstream metrics.Histogram
}

// route returns the stats for id, growing the table on first use.
func (s *workerStats) route(id int) *routeStats {
	if id >= len(s.routes) {
		s.routes = append(s.routes, make([]routeStats, id+1-len(s.routes))...)
	}
	return &s.routes[id]
}

func (s *workerStats) refused(status int) {
	if status > 0 && status < 600 {
		s.refusedBy[status]++
	}
}
func (s *workerStats) answered(status int) { s.answers[status/100]++ }
func (s *workerStats) upstreamErr(status int) {
	if status > 0 && status < 600 {
		s.upErrs[status]++
	}
}

func (w *worker) next() int {
	w.rr++
	return w.rr
}

func (w *worker) idleTimeout() int64 { return w.cfg.idleTimeout }

func (w *worker) getClient() *client {
	if n := len(w.free); n > 0 {
		cl := w.free[n-1]
		w.free[n-1] = nil
		w.free = w.free[:n-1]
		return cl
	}
	return &client{w: w}
}

// putClient keeps a finished client for the next connection, up to a bound
// so a burst of connections does not pin memory forever.
func (w *worker) putClient(cl *client) {
	if cl.c != nil {
		cl.c.Ctx = nil
	}
	cl.c = nil
	cl.cur = nil
	cl.held = nil
	w.putReqState(cl)
	if len(w.free) < 1024 {
		w.free = append(w.free, cl)
	}
}

// reqState is what a client needs only while a request is in progress.
//
// Invariant: owned by exactly one client from the first byte of a request
// until its response is done (finishResponse) or the connection closes,
// then by the worker's free list.
type reqState struct {
	req h1parse.Request
	// dec decodes a chunked request body. Taken from the worker only for
	// such bodies: its 8 KiB of trailer space would otherwise be held by
	// every connection with a head in progress (slowloris).
	dec *h1parse.ChunkedDecoder

	// What the metrics and the access log need once the request is over
	// (the parsed head's slices are gone by then).
	begun   bool   // the request was routed or refused: it will be counted
	stat    int    // its route's stat id (0: answered before routing)
	began   int64  // loop clock at its first byte
	upSent  int64  // loop clock when it went upstream (0: it did not)
	upHead  int64  // loop clock when the response head came back
	status  int    // status written to the client (0: none yet)
	outMark uint64 // the connection's Written() when the request began

	// logRec is the access-log line's request part (AppendHead), kept
	// until the response ends; logSplit is where the response part goes.
	logRec   []byte
	logSplit int
}

func (w *worker) getReqState() *reqState {
	if n := len(w.reqFree); n > 0 {
		rs := w.reqFree[n-1]
		w.reqFree[n-1] = nil
		w.reqFree = w.reqFree[:n-1]
		return rs
	}
	return &reqState{}
}

// putReqState takes cl's request state back, keeping a bounded number for
// reuse.
func (w *worker) putReqState(cl *client) {
	rs := cl.rs
	if rs == nil {
		return
	}
	cl.rs = nil
	rs.begun, rs.stat, rs.upSent, rs.upHead, rs.status = false, 0, 0, 0, 0
	if rs.dec != nil {
		if len(w.decFree) < 64 {
			w.decFree = append(w.decFree, rs.dec)
		}
		rs.dec = nil
	}
	if len(w.reqFree) < 256 {
		w.reqFree = append(w.reqFree, rs)
	}
}

// endRequest records a finished request (once) in the loop's counters.
func (w *worker) endRequest(cl *client) {
	rs := cl.rs
	if rs == nil || !rs.begun {
		return
	}
	rs.begun = false
	now := w.loop.Now()
	st := w.stats.route(rs.stat)
	st.classes[rs.status/100%6]++
	st.duration.Observe(now - rs.began)
	up := int64(-1)
	if rs.upSent != 0 && rs.upHead != 0 {
		up = rs.upHead - rs.upSent
		st.upstream.Observe(up)
	}
	if al := w.cfg.alog; al != nil {
		w.logRequest(al, cl, &accesslog.End{Status: rs.status, Bytes: cl.c.Written() - rs.outMark, Duration: now - rs.began, Upstream: up})
	}
}

// logHead keeps the access-log fields of the request just parsed: its
// bytes do not outlive this Data call.
func (w *worker) logHead(cl *client, rt *route) {
	rs := cl.rs
	r := &rs.req
	h := accesslog.Head{Time: rs.began, Remote: cl.c.RemoteAddr(), Method: r.Method, Target: r.Target,
		Minor: r.Minor, Host: r.Host}
	for i := range r.Fields {
		f := &r.Fields[i]
		switch {
		case h1parse.EqualFold(f.Name, "user-agent"):
			h.UserAgent = f.Value
		case h1parse.EqualFold(f.Name, "referer"):
			h.Referer = f.Value
		}
	}
	if rt != nil {
		h.Route, h.Backend = rt.label, rt.backendName
	}
	rs.logRec, rs.logSplit = w.cfg.alog.Format.AppendHead(rs.logRec[:0], &h)
}

// logRequest queues the request's line, or drops it (counted by the log)
// when the writer is behind.
func (w *worker) logRequest(al *accesslog.Log, cl *client, e *accesslog.End) {
	rs := cl.rs
	if len(rs.logRec) == 0 {
		// Refused before its head was understood: what little is known.
		h := accesslog.Head{Time: rs.began, Remote: cl.c.RemoteAddr()}
		rs.logRec, rs.logSplit = al.Format.AppendHead(rs.logRec, &h)
	}
	if line := al.Get(); line != nil {
		al.Put(al.Format.AppendLine(line, rs.logRec, rs.logSplit, e))
	}
	rs.logRec = rs.logRec[:0]
}

// statusOf reads the status code of a response head ("HTTP/1.1 200 ...").
func statusOf(head []byte) int {
	if len(head) < 12 {
		return 0
	}
	return int(head[9]-'0')*100 + int(head[10]-'0')*10 + int(head[11]-'0')
}

// chunkedDecoder gives rs a reset chunked decoder, from the free list when
// one is there.
func (w *worker) chunkedDecoder(rs *reqState) {
	if rs.dec == nil {
		if n := len(w.decFree); n > 0 {
			rs.dec = w.decFree[n-1]
			w.decFree[n-1] = nil
			w.decFree = w.decFree[:n-1]
		} else {
			rs.dec = new(h1parse.ChunkedDecoder)
		}
	}
	rs.dec.Reset()
}
