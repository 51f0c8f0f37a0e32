package health

import "time"

// Status is whether a server is taken to be able to serve.
type Status uint8

const (
	// Up: requests may go to the server.
	Up Status = iota
	// Down: no request goes to the server until it recovers (Rise good
	// checks, or a successful probe when there are no active checks).
	Down
	// Probing: a down server without active checks whose cool-down has
	// passed; Allow lets exactly one real request through to test it.
	Probing
)

func (s Status) String() string {
	switch s {
	case Up:
		return "up"
	case Down:
		return "down"
	case Probing:
		return "probing"
	}
	return "unknown"
}

// Default values of Config, taken from HAProxy's rise 2 / fall 3 for the
// counts. The cool-downs are ours: one second is longer than a backend's
// restart blip and short enough not to be noticed, and the 30 s cap keeps
// a long outage to two probes a minute per loop.
const (
	DefaultRise        = 2
	DefaultFall        = 3
	DefaultCoolDown    = time.Second
	DefaultMaxCoolDown = 30 * time.Second
)

// Config tunes a Health.
type Config struct {
	// Rise is the number of consecutive good active checks that bring a
	// down server back up. Zero or negative means DefaultRise.
	Rise int
	// Fall is the number of consecutive failures that take an up server
	// down. Failed checks and failed real requests are counted apart, and
	// either count reaching Fall is enough. Zero or negative means
	// DefaultFall.
	Fall int
	// Active says active checks run for this server (CheckOK, CheckFailed
	// will be called): a down server then comes back only through Rise good
	// checks and is never probed with real requests. When false, a down
	// server is probed after a cool-down (see Health).
	Active bool
	// StartDown makes the server start down instead of up. With Active it
	// waits for Rise good checks; without, its first probe may go at once.
	StartDown bool
	// CoolDown is how long a server without active checks stays down
	// before its first probe. Zero or negative means DefaultCoolDown.
	CoolDown time.Duration
	// MaxCoolDown caps the cool-down, which doubles after each failed
	// probe. Zero or negative means DefaultMaxCoolDown; a value below
	// CoolDown is raised to CoolDown.
	MaxCoolDown time.Duration
}

func (c Config) withDefaults() Config {
	if c.Rise <= 0 {
		c.Rise = DefaultRise
	}
	if c.Fall <= 0 {
		c.Fall = DefaultFall
	}
	if c.CoolDown <= 0 {
		c.CoolDown = DefaultCoolDown
	}
	if c.MaxCoolDown <= 0 {
		c.MaxCoolDown = DefaultMaxCoolDown
	}
	if c.MaxCoolDown < c.CoolDown {
		c.MaxCoolDown = c.CoolDown
	}
	return c
}

// Ticket ties a result to the admission it answers (see the package doc).
// The zero Ticket matches no admission: a result reported with it is
// ignored.
type Ticket struct {
	health  uint32 // Health.gen when admitted; 0 if Health did not admit
	breaker uint32 // Breaker.gen when admitted; 0 if Breaker did not admit
}

// Health is the up/down state of one server.
//
// Active checks and real requests are two sources of evidence. Either
// source seeing Fall consecutive failures takes the server down; a success
// from a source resets that source's count only, so healthy traffic does
// not hide a failing health endpoint, nor passing checks a server that
// resets every real connection. Only transport failures count as request
// failures (connect refused or timed out, connection reset, a timeout with
// no response): a 5xx is an answer, and is left to the Breaker.
//
// Recovery. With active checks (Config.Active), a down server comes back
// after Rise consecutive good checks, whatever took it down, and is never
// probed: the checks are the authority, as in HAProxy. Without them nothing
// else would ever look at the server, so it is probed with real traffic:
// CoolDown after going down it turns Probing, and Allow admits exactly one
// request. A probe that succeeds brings the server up and resets the
// cool-down; one that fails takes it down again with the cool-down doubled,
// capped at MaxCoolDown. Down turns Probing lazily, in the first Allow at or
// after the deadline; Status does not look at the clock.
//
// Use NewHealth; the zero Health is not ready for use.
//
// Invariant: owned by one goroutine (not safe for concurrent use).
// gen >= 1 and changes on every transition, so only tickets issued since
// the last transition match. 0 <= checkFails, passFails < Fall while Up and
// both are 0 otherwise; 0 <= checkOKs < Rise while Down or Probing, 0 while
// Up. probeOut only while Probing. CoolDown <= coolDown <= MaxCoolDown.
type Health struct {
	// OnChange, if set, is called on every transition, after it.
	OnChange func(from, to Status)

	cfg        Config
	status     Status
	gen        uint32
	checkFails int   // consecutive failed checks while Up
	passFails  int   // consecutive failed requests while Up
	checkOKs   int   // consecutive good checks while Down or Probing
	probeOut   bool  // the probe has been admitted and not answered
	probeAt    int64 // Down without active checks: when probing may start
	coolDown   int64 // the cool-down the next Down will wait
	since      int64 // now of the last transition
}

// NewHealth returns the health of a server that starts up, or down with
// Config.StartDown (its first probe then allowed at once).
func NewHealth(c Config) Health {
	c = c.withDefaults()
	h := Health{cfg: c, gen: 1, coolDown: int64(c.CoolDown)}
	if c.StartDown {
		h.status = Down
		h.probeAt = minTime
	}
	return h
}

// minTime is a deadline that has always passed.
const minTime = -1 << 63

// Status is the state after the last call; see Health for the lazy
// Down→Probing step.
func (h *Health) Status() Status { return h.status }

// Since is when the current status began (the now of the call that made
// the transition), or 0 if it is the initial one.
func (h *Health) Since() int64 { return h.since }

// Allow reports whether a request may go to the server, and admits it. It
// is true while Up, and for the single probe while Probing.
func (h *Health) Allow(now int64) (Ticket, bool) {
	if !h.ready(now) {
		return Ticket{}, false
	}
	return h.admit(), true
}

// ready is Allow without taking the probe, so that Server can ask the
// Breaker in between.
func (h *Health) ready(now int64) bool {
	switch h.status {
	case Up:
		return true
	case Down:
		if h.cfg.Active || now < h.probeAt {
			return false
		}
		h.set(now, Probing)
	}
	return !h.probeOut
}

func (h *Health) admit() Ticket {
	if h.status == Probing {
		h.probeOut = true
	}
	return Ticket{health: h.gen}
}

// OnSuccess records that the request admitted with t got a response (any
// status: the server is reachable).
func (h *Health) OnSuccess(now int64, t Ticket) {
	if t.health != h.gen {
		return
	}
	switch h.status {
	case Up:
		h.passFails = 0
	case Probing:
		if h.probeOut {
			h.coolDown = int64(h.cfg.CoolDown)
			h.set(now, Up)
		}
	}
}

// OnFailure records a transport failure of the request admitted with t:
// connect failure, connection reset, or a timeout with no response.
func (h *Health) OnFailure(now int64, t Ticket) {
	if t.health != h.gen {
		return
	}
	switch h.status {
	case Up:
		h.passFails++
		if h.passFails >= h.cfg.Fall {
			h.down(now)
		}
	case Probing:
		if h.probeOut {
			h.coolDown = min(2*h.coolDown, int64(h.cfg.MaxCoolDown))
			h.down(now)
		}
	}
}

// Cancel gives back the admission of t when the request was not sent or
// its outcome says nothing about the server (the client went away). A
// cancelled probe lets the next Allow probe again.
func (h *Health) Cancel(t Ticket) {
	if t.health == h.gen && h.status == Probing {
		h.probeOut = false
	}
}

// CheckOK records a good active check.
func (h *Health) CheckOK(now int64) {
	if h.status == Up {
		h.checkFails = 0
		return
	}
	h.checkOKs++
	if h.checkOKs >= h.cfg.Rise {
		h.coolDown = int64(h.cfg.CoolDown)
		h.set(now, Up)
	}
}

// CheckFailed records a failed active check.
func (h *Health) CheckFailed(now int64) {
	if h.status != Up {
		h.checkOKs = 0
		return
	}
	h.checkFails++
	if h.checkFails >= h.cfg.Fall {
		h.down(now)
	}
}

// down takes the server down; without active checks it will be probed
// coolDown from now. A deadline past the end of time saturates.
func (h *Health) down(now int64) {
	h.probeAt = now + h.coolDown
	if h.probeAt < now {
		h.probeAt = 1<<63 - 1
	}
	h.set(now, Down)
}

// set moves to s, starting a new generation. The failure counts belong to
// Up and start afresh; good checks keep counting from Down into Probing,
// as both wait for the same Rise.
func (h *Health) set(now int64, s Status) {
	from := h.status
	h.status, h.since = s, now
	h.gen++
	if h.gen == 0 { // keep the zero Ticket unmatched across wrap-around
		h.gen = 1
	}
	h.checkFails, h.passFails = 0, 0
	if s != Probing {
		h.checkOKs = 0
	}
	h.probeOut = false
	if h.OnChange != nil {
		h.OnChange(from, s)
	}
}
