package backend

import (
	"github.com/apex-epoll/apex/balance"
	"github.com/apex-epoll/apex/cacheline"
	"github.com/apex-epoll/apex/config"
	"github.com/apex-epoll/apex/health"
	"github.com/apex-epoll/apex/limit"
	"github.com/apex-epoll/apex/loop"
	"github.com/apex-epoll/apex/retry"
)

// Attempt is a request's trip to a backend, as the backend tracks it: the
// server it was admitted to and with what, how many times it was sent, and
// how far the last try got. The proxy's client holds it (Client.Attempt)
// and leaves it to the backend, except for Key, which it sets before
// Acquire, and Stage, which it reads in ResponseError.
//
// Invariant: server >= 0 exactly while the request holds an admission on
// that server (its limiter slot, its health ticket, its place in the
// balancer's outstanding count); waiting exactly while the client is in
// its LoopBackend's queue.
type Attempt struct {
	Key   uint64      // hash key for balance = "hash"
	Stage retry.Stage // how far the failed try got (valid in ResponseError)

	server  int
	ticket  health.Ticket
	sent    int64 // loop clock when admitted
	headAt  int64 // loop clock when the response head arrived
	status  int   // the response's status
	tries   int   // sends so far
	tried   uint64
	waiting bool
	since   int64 // loop clock when it began waiting
	// pipelinable: the request may go on a connection with others in
	// flight (replayable, and the backend pipelines); noted while it
	// waits in a pool's queue.
	pipelinable bool
}

// Reset prepares a for a new request.
func (a *Attempt) Reset() { *a = Attempt{server: -1} }

// Tries is how many times the request was sent (1 = no retry).
func (a *Attempt) Tries() int { return a.tries }

// Waiting reports whether the request waits in the backend's queue.
func (a *Attempt) Waiting() bool { return a.waiting }

// Result is what Acquire did with a request.
type Result uint8

const (
	Sent     Result = iota // admitted to a server (Assigned, or ResponseError, follows)
	Queued                 // every server is at its limit: waiting in the backend's queue
	Shed                   // the queue is full: answer the backend's shed status
	NoServer               // no server is up (down or circuit open): answer 503
)

// LoopBackend is one loop's share of a backend: a pool of connections per
// server, each server's health, circuit breaker and concurrency limit, the
// balancer that picks among them, the backend's wait queue and its retry
// budget. It is Phase 2's owner: everything in it is touched only by its
// loop, so none of it needs a lock, and each loop judges the servers by
// the traffic it sends them (as Envoy's workers do). Active health checks
// are the exception: one loop runs them and every loop hears the results.
//
// Invariant: pools, hs and lims are indexed by server and fixed after
// newLoopBackend; len(waiters) <= cfg.Limits.Queue, each waiter has
// Attempt().waiting set and holds no admission; a client is never both
// here and in a pool's queue.
type LoopBackend struct {
	_       cacheline.Pad // written on every request by its loop only
	l       *loop.Loop
	b       *Backend
	cfg     *config.Backend
	pools   []*LoopPool
	hs      []health.Server
	lims    []*limit.Limiter
	bal     *balance.Balancer
	budget  retry.Budget
	waiters []Client
	kicking bool
	panics  uint64 // requests sent while no server was up
	_       cacheline.Pad
}

func newLoopBackend(b *Backend, l *loop.Loop, pools []*LoopPool, bal *balance.Balancer) *LoopBackend {
	cfg := b.cfg
	lb := &LoopBackend{l: l, b: b, cfg: cfg, pools: pools, bal: bal,
		budget: retry.NewBudget(retry.Config{Ratio: cfg.Retry.Budget})}
	if cfg.Retry.Budget == 0 {
		lb.budget = retry.NewBudget(retry.Config{Ratio: -1, MinPerSecond: -1})
	}
	hc := health.Config{Rise: cfg.Health.Rise, Fall: cfg.Health.Fall, Active: cfg.Health.Path != ""}
	bc := health.BreakerConfig{
		ConsecutiveFailures: cfg.Circuit.ConsecutiveFailures,
		FailureRatio:        cfg.Circuit.FailureRatio,
		Window:              cfg.Circuit.Window.D(),
		MinRequests:         cfg.Circuit.MinRequests,
		CoolDown:            cfg.Circuit.CoolDown.D(),
		HalfOpenTrials:      cfg.Circuit.HalfOpenTrials,
	}
	lc := limit.Config{MinLimit: cfg.Limits.MinLimit, MaxLimit: cfg.Limits.MaxLimit}
	if !cfg.Limits.Adaptive {
		lc.MinLimit = cfg.Limits.MaxLimit // a fixed limit
	}
	// Written per request by this loop only: padded as a whole, apart
	// from other loops' (cacheline).
	lb.hs = cacheline.Slice[health.Server](len(pools))
	for i, p := range pools {
		p.lb, p.idx = lb, i
		lb.hs[i] = health.NewServer(hc, bc)
		lb.lims = append(lb.lims, limit.New(lc))
	}
	for i := range lb.hs {
		log := pools[i].cfg.Logger
		lb.hs[i].Health.OnChange = func(from, to health.Status) {
			log.Warn("upstream server health changed", "from", from.String(), "to", to.String())
		}
		lb.hs[i].Breaker.OnChange = func(from, to health.State) {
			log.Warn("upstream circuit breaker changed", "from", from.String(), "to", to.String())
		}
	}
	return lb
}

// Acquire finds cl's request a server and a connection. What it did is
// the Result; with Sent, Assigned (or ResponseError, if the connect could
// not even start) has been called by the time it returns.
func (lb *LoopBackend) Acquire(cl Client, pipelinable bool) Result {
	a := cl.Attempt()
	now := lb.l.Now()
	if a.tries == 0 {
		lb.budget.Request(now)
	}
	switch lb.admit(cl, now) {
	case admitted:
		return lb.send(cl, pipelinable)
	case atLimit:
		if !lb.enqueue(cl, now) {
			return Shed
		}
		return Queued
	}
	return NoServer
}

// enqueue puts cl in the wait queue unless it is full.
func (lb *LoopBackend) enqueue(cl Client, now int64) bool {
	if len(lb.waiters) >= lb.cfg.Limits.Queue {
		return false
	}
	a := cl.Attempt()
	a.waiting, a.since = true, now
	lb.waiters = append(lb.waiters, cl)
	return true
}

// offerUntried makes the servers cl's request has not tried available to
// the balancer (all of them once every one was tried).
func (lb *LoopBackend) offerUntried(a *Attempt) {
	n := len(lb.pools)
	all := a.tried == allTried(n)
	for i := 0; i < n; i++ {
		lb.bal.SetAvailable(i, all || i >= 64 || a.tried&(1<<i) == 0)
	}
}

// take records that cl's request was admitted to server i.
func (lb *LoopBackend) take(a *Attempt, i int, t health.Ticket, now int64) {
	a.server, a.ticket, a.sent, a.headAt, a.status = i, t, now, 0, 0
	a.tries++
	if i < 64 {
		a.tried |= 1 << i
	}
	lb.bal.Start(i)
}

type admission uint8

const (
	admitted admission = iota
	atLimit            // some server is up but none has room
	noneUp
)

// admit picks a server for cl's request and takes an admission on it: a
// health/breaker ticket and a limiter slot. Servers that refuse are set
// aside for this pick only.
func (lb *LoopBackend) admit(cl Client, now int64) admission {
	a := cl.Attempt()
	lb.offerUntried(a)
	full := false
	for {
		i := lb.bal.Pick(now, a.Key)
		if i < 0 {
			break
		}
		t, ok := lb.hs[i].Allow(now)
		if !ok {
			lb.bal.SetAvailable(i, false)
			continue
		}
		if !lb.lims[i].Acquire() {
			lb.hs[i].Cancel(t)
			lb.bal.SetAvailable(i, false)
			full = true
			continue
		}
		lb.take(a, i, t, now)
		return admitted
	}
	if full {
		return atLimit
	}
	// No server is up (down, or circuit open). Refusing everything would
	// turn a backend-wide outage into one that lasts until the cool-downs
	// end, even after the servers are back; like Envoy's panic routing
	// and nginx once every server has failed, send to any server with
	// room instead. The tries carry no ticket, so their results do not
	// count: the servers come back through the usual ways (checks,
	// probes, half-open trials).
	lb.offerUntried(a)
	for {
		i := lb.bal.Pick(now, a.Key)
		if i < 0 {
			if full {
				return atLimit
			}
			return noneUp
		}
		if !lb.lims[i].Acquire() {
			lb.bal.SetAvailable(i, false)
			full = true
			continue
		}
		lb.panics++
		lb.take(a, i, health.Ticket{}, now)
		return admitted
	}
}

func allTried(n int) uint64 {
	if n >= 64 {
		return ^uint64(0)
	}
	return 1<<n - 1
}

// send hands an admitted request to its server's connection pool.
func (lb *LoopBackend) send(cl Client, pipelinable bool) Result {
	a := cl.Attempt()
	if !lb.pools[a.server].Acquire(cl, pipelinable) {
		// The pool's own queue is full (conns × queue): give the
		// admission back and shed.
		lb.end(cl, cancelled)
		return Shed
	}
	return Sent
}

// outcome is how a try ended, for the server's judgement.
type outcome uint8

const (
	succeeded outcome = iota // a response (its status decides for the breaker)
	failed                   // no usable response: connect, reset, timeout, garbage
	cancelled                // the client left: no judgement
)

// end releases cl's admission and judges its server by how the try went,
// then lets waiting requests use the room.
func (lb *LoopBackend) end(cl Client, o outcome) {
	a := cl.Attempt()
	i := a.server
	if i < 0 {
		return
	}
	a.server = -1
	now := lb.l.Now()
	rtt := now - a.sent
	if a.headAt != 0 {
		rtt = a.headAt - a.sent
	}
	lb.bal.Done(i)
	switch o {
	case succeeded:
		ho := health.Success
		if a.status >= 500 {
			ho = health.ServerError
		}
		lb.hs[i].Observe(now, a.ticket, ho)
		lb.lims[i].Release(now, rtt, a.status < 500)
		lb.bal.Observe(i, now, rtt)
	case failed:
		lb.hs[i].Observe(now, a.ticket, health.TransportError)
		lb.lims[i].Release(now, rtt, false)
	default:
		lb.hs[i].Cancel(a.ticket)
		lb.lims[i].Cancel()
	}
}

// kick admits waiting requests while servers have room. It runs after a
// connection is released or closed, when room may have appeared; a kick
// started from inside a kick (a send that fails at once) returns, the
// outer one goes on.
func (lb *LoopBackend) kick() {
	if lb.kicking || len(lb.waiters) == 0 {
		return
	}
	lb.kicking = true
	defer func() { lb.kicking = false }()
	for len(lb.waiters) > 0 {
		cl := lb.waiters[0]
		a := cl.Attempt()
		if cl.Gone() || !a.waiting {
			lb.popWaiter()
			continue
		}
		now := lb.l.Now()
		switch lb.admit(cl, now) {
		case admitted:
			lb.popWaiter()
			a.waiting = false
			if lb.send(cl, false) == Shed {
				a.Stage = retry.AfterResponse // an answer, not a failure: no retry
				cl.ResponseError(lb.cfg.Limits.ShedStatus)
			}
		case noneUp:
			lb.popWaiter()
			a.waiting = false
			a.Stage = retry.AfterResponse
			cl.ResponseError(503)
		default:
			return // still no room
		}
	}
}

func (lb *LoopBackend) popWaiter() {
	copy(lb.waiters, lb.waiters[1:])
	lb.waiters[len(lb.waiters)-1] = nil
	lb.waiters = lb.waiters[:len(lb.waiters)-1]
}

// Leave takes cl out of whichever queue holds it: the backend's wait
// queue (its queue_timeout passed, or it closed), or its server's
// connection queue, where it holds an admission that is given back. It
// reports whether cl was queued; afterwards no queue refers to cl.
func (lb *LoopBackend) Leave(cl Client) bool {
	a := cl.Attempt()
	if a.waiting {
		a.waiting = false
		removeClient(&lb.waiters, cl)
		return true
	}
	if a.server >= 0 && removeClient(&lb.pools[a.server].waiters, cl) {
		lb.end(cl, cancelled)
		lb.kick()
		return true
	}
	return false
}

// removeClient deletes cl from the queue q, keeping the order.
func removeClient(q *[]Client, cl Client) bool {
	for i, w := range *q {
		if w == cl {
			s := *q
			copy(s[i:], s[i+1:])
			s[len(s)-1] = nil
			*q = s[:len(s)-1]
			return true
		}
	}
	return false
}

// QueueTimeout is how long a request may wait in the queue, in ns.
func (lb *LoopBackend) QueueTimeout() int64 { return int64(lb.cfg.Limits.QueueTimeout.D()) }

// ShedStatus is the status for shed requests (503 or 429).
func (lb *LoopBackend) ShedStatus() int { return lb.cfg.Limits.ShedStatus }

// Retry re-sends cl's failed request on another server when that is safe:
// the request is whole in the client's hands (streamed is false), the
// rule of retry.Safe allows it for how far the try got (idempotent: an
// idempotent method or an Idempotency-Key), the attempts setting has a
// try left, and the retry budget agrees. It reports whether a new try
// started (sent or queued); false leaves the error to the caller.
func (lb *LoopBackend) Retry(cl Client, idempotent, streamed bool) bool {
	a := cl.Attempt()
	if streamed || a.tries >= lb.cfg.Retry.Attempts || !retry.Safe(nil, idempotent, a.Stage) {
		return false
	}
	if len(lb.pools) == 1 && a.Stage != retry.BeforeWrite {
		// No other server, and this one took the request: do not
		// hammer it again.
		return false
	}
	now := lb.l.Now()
	if !lb.budget.TryRetry(now) {
		return false
	}
	switch lb.admit(cl, now) {
	case admitted:
		return lb.send(cl, false) == Sent
	case atLimit:
		return lb.enqueue(cl, now)
	}
	return false
}

// CheckResult applies an active health check's result for server i.
func (lb *LoopBackend) CheckResult(i int, ok bool) {
	now := lb.l.Now()
	if ok {
		lb.hs[i].Health.CheckOK(now)
	} else {
		lb.hs[i].Health.CheckFailed(now)
	}
	lb.kick()
}

// ServerState is one server as this loop sees it.
type ServerState struct {
	Up          bool
	Circuit     health.State
	Limit       int
	Outstanding int
	Conns       int
	Waiting     int // in the pool's own queue
}

// State reports server i as this loop sees it. Call on the loop.
func (lb *LoopBackend) State(i int) ServerState {
	p := lb.pools[i]
	return ServerState{
		Up:          lb.hs[i].Health.Status() != health.Down,
		Circuit:     lb.hs[i].Breaker.State(),
		Limit:       lb.lims[i].Limit(),
		Outstanding: lb.bal.Outstanding(i),
		Conns:       p.open,
		Waiting:     len(p.waiters),
	}
}

// Waiting is the number of requests in the backend's queue.
func (lb *LoopBackend) Waiting() int { return len(lb.waiters) }
