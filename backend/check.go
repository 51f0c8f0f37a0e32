package backend

import (
	"sync/atomic"
	"time"

	"github.com/apex-epoll/apex/h1parse"
	"github.com/apex-epoll/apex/loop"
)

// Active health checks ([backend.health] path). One loop, the backend's
// first, runs them: every interval it opens a connection to each server,
// sends "GET path" with Connection: close, and takes a 2xx or 3xx status
// line within the timeout as a good check; anything else (refused, reset,
// timeout, another status, garbage) is a failed one. Every loop then hears
// the result and feeds its own view of the server (LoopBackend.CheckResult),
// so all loops agree on what the checks say while each keeps judging the
// traffic it sends. A ticker goroutine per backend only posts the "time to
// check" task; the checks themselves are loop connections like any other.

// checker runs a backend's active checks.
//
// Invariant: at most one check per server is in flight (inflight[i], on
// the backend's first loop only); the ticker goroutine is the only one the
// checker starts, its task is posted at most once at a time (busy), and
// close (from Backend.Close or Retire) ends it.
type checker struct {
	b        *Backend
	req      [][]byte // the check request per server
	inflight []bool   // loop 0 only
	stop     chan struct{}
	done     chan struct{}
	stopped  atomic.Bool // a round posted before close does nothing
}

func (b *Backend) startChecks() {
	if !b.LoopMode || b.cfg.Health.Path == "" || len(b.loops) == 0 {
		return
	}
	ck := &checker{b: b, inflight: make([]bool, len(b.cfg.Servers)),
		stop: make(chan struct{}), done: make(chan struct{})}
	for _, s := range b.cfg.Servers {
		ck.req = append(ck.req, []byte("GET "+b.cfg.Health.Path+" HTTP/1.1\r\nHost: "+s.Addr+
			"\r\nUser-Agent: apex-epoll health check\r\nConnection: close\r\n\r\n"))
	}
	b.checks = ck
	go ck.run(b.cfg.Health.Interval.D())
}

func (ck *checker) run(every time.Duration) {
	defer close(ck.done)
	t := time.NewTicker(every)
	defer t.Stop()
	// busy keeps the one task from being posted again before it ran.
	var busy atomic.Bool
	task := &loop.Task{Run: func() { ck.round(); busy.Store(false) }}
	busy.Store(true)
	ck.b.loops[0].l.Post(task) // a first round at once
	for {
		select {
		case <-ck.stop:
			return
		case <-t.C:
			if busy.CompareAndSwap(false, true) {
				ck.b.loops[0].l.Post(task)
			}
		}
	}
}

func (ck *checker) close() {
	ck.stopped.Store(true)
	close(ck.stop)
	<-ck.done
}

// round starts a check on every server that has none in flight. On loop 0.
func (ck *checker) round() {
	if ck.stopped.Load() {
		return
	}
	lb := ck.b.loops[0]
	timeout := int64(ck.b.cfg.Health.Timeout.D())
	for i, p := range lb.pools {
		if ck.inflight[i] {
			continue
		}
		cc := &checkConn{ck: ck, i: i}
		c, err := lb.l.Dial(p.addr, cc)
		if err != nil {
			ck.result(i, false)
			continue
		}
		ck.inflight[i] = true
		cc.c = c
		c.SetTimeout(timeout)
		c.Write(ck.req[i])
	}
}

// result tells every loop the outcome of a check of server i. On loop 0.
func (ck *checker) result(i int, ok bool) {
	ck.inflight[i] = false
	for _, lb := range ck.b.loops {
		if lb.l == ck.b.loops[0].l {
			lb.CheckResult(i, ok)
			continue
		}
		lb.l.Post(&loop.Task{Run: func() { lb.CheckResult(i, ok) }})
	}
}

// checkConn is one check's connection (a loop.Handler).
//
// Invariant: owned by the backend's first loop; it reports its result
// exactly once (done), then its connection is closed; it lives at most
// health.timeout.
type checkConn struct {
	ck   *checker
	i    int
	c    *loop.Conn
	resp h1parse.Response
	done bool
}

func (cc *checkConn) finish(ok bool) {
	if cc.done {
		return
	}
	cc.done = true
	cc.ck.result(cc.i, ok)
	cc.c.Close()
}

func (cc *checkConn) Opened(*loop.Conn)  {}
func (cc *checkConn) Drained(*loop.Conn) {}
func (cc *checkConn) Data(c *loop.Conn, in []byte) int {
	err := cc.resp.Parse(in, &cc.ck.b.lim)
	if err == h1parse.ErrNeedMore {
		if len(in) > 16<<10 {
			cc.finish(false)
			return len(in)
		}
		return 0
	}
	cc.finish(err == nil && cc.resp.Status >= 200 && cc.resp.Status < 400)
	return len(in)
}
func (cc *checkConn) ReadClosed(*loop.Conn)        { cc.finish(false) }
func (cc *checkConn) Timeout(*loop.Conn)           { cc.finish(false) }
func (cc *checkConn) Closed(c *loop.Conn, _ error) { cc.finish(false) }
