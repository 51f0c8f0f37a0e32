package health

import (
	"math"
	"time"
)

// State is a circuit breaker's state.
type State uint8

const (
	// Closed: requests flow; failures are counted.
	Closed State = iota
	// Open: no request is sent until CoolDown has passed.
	Open
	// HalfOpen: up to HalfOpenTrials trial requests test the server.
	HalfOpen
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half_open"
	}
	return "unknown"
}

// Default values of BreakerConfig. A 50% failure ratio over at least 20
// requests in 10 s is Hystrix's default trip rule; 5 consecutive failures
// catch a dead server at low traffic, where the ratio never gets its 20.
const (
	DefaultConsecutiveFailures = 5
	DefaultFailureRatio        = 0.5
	DefaultWindow              = 10 * time.Second
	DefaultMinRequests         = 20
	DefaultBreakerCoolDown     = 5 * time.Second
	DefaultHalfOpenTrials      = 3
)

// BreakerConfig tunes a Breaker.
type BreakerConfig struct {
	// ConsecutiveFailures opens the breaker after that many failures in a
	// row. Zero means DefaultConsecutiveFailures; negative disables the
	// rule.
	ConsecutiveFailures int
	// FailureRatio opens the breaker when failures exceed this fraction of
	// the results in the window (and there are at least MinRequests). Zero
	// means DefaultFailureRatio; negative, or 1 and above (no ratio can
	// exceed it), disables the rule. It is kept to six decimal places.
	FailureRatio float64
	// Window is the span over which the ratio is taken, in windowBuckets
	// slices. Zero or negative means DefaultWindow.
	Window time.Duration
	// MinRequests is the number of results the window must hold before the
	// ratio can open the breaker. Zero or negative means
	// DefaultMinRequests.
	MinRequests int
	// CoolDown is how long the breaker stays open before trying the server
	// again. Zero or negative means DefaultBreakerCoolDown.
	CoolDown time.Duration
	// HalfOpenTrials is the number of trial requests half-open admits, all
	// of which must succeed to close. Zero or negative means
	// DefaultHalfOpenTrials.
	HalfOpenTrials int
}

func (c BreakerConfig) withDefaults() BreakerConfig {
	if c.ConsecutiveFailures == 0 {
		c.ConsecutiveFailures = DefaultConsecutiveFailures
	}
	if c.FailureRatio == 0 {
		c.FailureRatio = DefaultFailureRatio
	}
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	if c.Window < windowBuckets {
		c.Window = windowBuckets
	}
	if c.MinRequests <= 0 {
		c.MinRequests = DefaultMinRequests
	}
	if c.CoolDown <= 0 {
		c.CoolDown = DefaultBreakerCoolDown
	}
	if c.HalfOpenTrials <= 0 {
		c.HalfOpenTrials = DefaultHalfOpenTrials
	}
	return c
}

// windowBuckets is the number of slices the ratio window is cut into. The
// window slides by one slice at a time, so a result counts for between
// Window×(1-1/windowBuckets) and Window; ten slices keep that within 10%
// for a fixed 160 bytes.
const windowBuckets = 10

// bucket holds the results of one slice of the window.
type bucket struct {
	slice    int64 // which slice (now / width) the counts belong to
	total    uint32
	failures uint32
}

// Breaker is a circuit breaker on one server.
//
// Closed, it counts results: ConsecutiveFailures failures in a row, or a
// failure ratio above FailureRatio over the last Window once the window
// holds MinRequests results, open it. Open, it refuses everything; the
// first Allow CoolDown after opening turns it half-open (lazily: State does
// not look at the clock). Half-open, it admits HalfOpenTrials trial
// requests in all and refuses the rest; when every trial has succeeded it
// closes, with a fresh window, and the first trial failure opens it again
// for another CoolDown. A cancelled trial gives its slot back.
//
// What counts as a failure is the caller's call: Server counts transport
// failures and 5xx responses.
//
// Use NewBreaker; the zero Breaker is not ready for use.
//
// Invariant: owned by one goroutine (not safe for concurrent use).
// gen >= 1 and changes on every transition, so only tickets issued since
// the last transition match. While Closed: 0 <= consecutive <
// ConsecutiveFailures (when that rule is on) and window holds only results
// of this closed period. While HalfOpen: 0 <= passed <= trials <=
// HalfOpenTrials and passed < HalfOpenTrials. trials and passed are 0
// otherwise.
type Breaker struct {
	// OnChange, if set, is called on every transition, after it.
	OnChange func(from, to State)

	cfg         BreakerConfig
	ratio       int64 // FailureRatio in millionths; 0 disables the rule
	width       int64 // nanoseconds per window bucket
	state       State
	gen         uint32
	since       int64 // now of the last transition
	consecutive int   // failures in a row while Closed
	trials      int   // trial slots handed out in this half-open period
	passed      int   // trials that succeeded in this half-open period
	window      [windowBuckets]bucket
}

// NewBreaker returns a closed breaker.
func NewBreaker(c BreakerConfig) Breaker {
	c = c.withDefaults()
	b := Breaker{cfg: c, gen: 1, width: int64(c.Window) / windowBuckets}
	if c.FailureRatio > 0 && c.FailureRatio < 1 {
		b.ratio = int64(math.Round(c.FailureRatio * 1e6))
	}
	return b
}

// State is the state after the last call; see Breaker for the lazy
// Open→HalfOpen step.
func (b *Breaker) State() State { return b.state }

// Since is when the current state began (the now of the call that made the
// transition), or 0 if it is the initial one.
func (b *Breaker) Since() int64 { return b.since }

// Allow reports whether a request may be sent, and admits it: always while
// Closed, never while Open (until CoolDown has passed, when the breaker
// turns HalfOpen), and while HalfOpen only if a trial slot is free, which
// it then takes.
func (b *Breaker) Allow(now int64) (Ticket, bool) {
	switch b.state {
	case Open:
		if now-b.since < int64(b.cfg.CoolDown) {
			return Ticket{}, false
		}
		b.set(now, HalfOpen)
		fallthrough
	case HalfOpen:
		if b.trials >= b.cfg.HalfOpenTrials {
			return Ticket{}, false
		}
		b.trials++
	}
	return Ticket{breaker: b.gen}, true
}

// OnSuccess records the success of the request admitted with t.
func (b *Breaker) OnSuccess(now int64, t Ticket) {
	if t.breaker != b.gen {
		return
	}
	switch b.state {
	case Closed:
		b.consecutive = 0
		b.record(now, false)
	case HalfOpen:
		b.passed++
		if b.passed >= b.cfg.HalfOpenTrials {
			b.set(now, Closed)
		}
	}
}

// OnFailure records the failure of the request admitted with t.
func (b *Breaker) OnFailure(now int64, t Ticket) {
	if t.breaker != b.gen {
		return
	}
	switch b.state {
	case Closed:
		b.consecutive++
		total, failures := b.record(now, true)
		if b.cfg.ConsecutiveFailures > 0 && b.consecutive >= b.cfg.ConsecutiveFailures ||
			b.ratio > 0 && total >= int64(b.cfg.MinRequests) && failures*1e6 > b.ratio*total {
			b.set(now, Open)
		}
	case HalfOpen:
		b.set(now, Open)
	}
}

// Cancel gives back the admission of t when the request was not sent or its
// outcome says nothing about the server: a half-open trial slot is freed.
func (b *Breaker) Cancel(t Ticket) {
	if t.breaker == b.gen && b.state == HalfOpen {
		b.trials--
	}
}

// record adds a result to the window and returns the window's totals. Only
// a failure needs the totals; a success pays for one bucket.
func (b *Breaker) record(now int64, failed bool) (total, failures int64) {
	s := floorDiv(now, b.width)
	k := &b.window[bucketIndex(s)]
	if k.slice != s {
		*k = bucket{slice: s}
	}
	k.total++
	if !failed {
		return 0, 0
	}
	k.failures++
	for i := range b.window {
		// Only slices s-windowBuckets+1 .. s are in the window; a slice
		// ahead of s comes from a clock that stepped back and is left out.
		if w := &b.window[i]; w.slice > s-windowBuckets && w.slice <= s {
			total += int64(w.total)
			failures += int64(w.failures)
		}
	}
	return total, failures
}

// set moves to s, starting a new generation. Closing starts a fresh window
// and count: the old ones led to the opening.
func (b *Breaker) set(now int64, s State) {
	from := b.state
	b.state, b.since = s, now
	b.gen++
	if b.gen == 0 { // keep the zero Ticket unmatched across wrap-around
		b.gen = 1
	}
	b.trials, b.passed, b.consecutive = 0, 0, 0
	if s == Closed {
		b.window = [windowBuckets]bucket{}
	}
	if b.OnChange != nil {
		b.OnChange(from, s)
	}
}

// floorDiv is a/b rounded towards minus infinity (b > 0), so slices stay
// one width wide on both sides of zero.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// bucketIndex maps slice s to its place in the ring, for any sign of s.
func bucketIndex(s int64) int {
	return int((s%windowBuckets + windowBuckets) % windowBuckets)
}
