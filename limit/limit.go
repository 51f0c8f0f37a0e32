// Package limit is an adaptive concurrency limit for one upstream server:
// how many requests may be in flight to it at once. It is pure logic: no
// I/O, no clock, no goroutines, no locks; time comes in as int64
// nanoseconds of a monotonic clock.
//
// A Limiter is owned by one goroutine (in Apex, the event loop whose pool
// holds the server) and is not safe for concurrent use. Acquire, Release
// and Cancel do not allocate.
//
// # Algorithm
//
// The limit follows latency, in the spirit of Netflix's Gradient2 and
// Envoy's adaptive concurrency filter. Completions are gathered in windows
// of at least minWindow completions spanning at least one of their own
// mean RTTs, so that a window sees the effect of the limit before it. At
// the end of a window:
//
//	short    = the window's mean RTT over successful requests, each sample
//	           clipped at clip × the previous window's short
//	long     = EWMA of short, longAlpha per window
//	ref      = the no-load RTT: see "Baseline drift" below
//	baseline = min(ref, long)
//	gradient = clamp(tolerance × baseline / short, minGradient, 1)
//	target   = limit × gradient + sqrt(limit)
//	limit   += (target − limit) × smoothing
//
// While latency holds at the baseline the limit grows by about
// smoothing × sqrt(limit) a window; once it rises past tolerance × the
// baseline the limit shrinks, at most by smoothing × (1 − minGradient) =
// 10% a window. In a server whose latency grows with queued requests the
// limit settles where the queue adds about tolerance × (1 + 1/sqrt(limit))
// to the latency: about 1.2 × the concurrency the server runs without
// queueing for capacities of 100 and more, 1.4 × at 20
// (TestConvergesNearCapacity). A
// window with any failure (ok == false: a timeout, a reset, a 503) cuts
// the limit to limit × backoff instead, once per window however many
// failed.
//
// Clipping makes short a winsorized mean: a few very slow requests (a slow
// endpoint among fast ones) move it by little, so they do not read as
// queueing, while queueing, which slows every request, moves it in full.
// The clip follows the previous window, so it lets a real rise through at
// up to clip× per window.
//
// # Lessons applied
//
// Baseline drift. Gradient2's long-term RTT is an EWMA of every sample, so
// under sustained load it climbs toward the loaded latency, the gradient
// returns to 1 and the limit creeps up with the queue. Here ref, the
// no-load RTT, is learnt only where queueing cannot be the cause: from
// windows whose peak concurrency was at most MinLimit (EWMA, idleAlpha per
// window), or, until the first such window, from the mean of the first
// warmup samples after the first settle windows. Until ref is known the
// limit does not grow. Under load ref is frozen, and the baseline can only fall
// below it (with long, when the server gets faster), so a loaded server
// never raises its own baseline (TestBaselineDoesNotDrift: a million
// samples). Nor does the baseline ratchet down on noise: long dipping for
// a while lowers it only for that while.
//
// No probe to the floor. Envoy measures its minimum RTT by cutting
// concurrency to min_concurrency (3 by default) at every interval, a
// self-inflicted outage on a busy server. There is no probe here: the
// limit never goes below MinLimit, and the only ways down are a sustained
// latency rise or failures. When a server's no-load latency really does
// rise, the limit first falls (the rise looks like queueing); at MinLimit
// the windows are low-concurrency windows, ref follows the new latency and
// the limit grows back (TestNewNoLoadLatencyIsLearnt).
//
// Idle inflation. A limit that nobody uses says nothing about the server:
// a window whose peak in-flight count stayed below half the limit leaves
// the limit as it is (failures still cut it). So the limit of an idle
// server neither inflates nor decays on noise.
//
// Known limits. A server that already queues at InitialLimit (capacity
// below it) makes the warm-up measure a queued latency, and the limit
// settles near InitialLimit rather than the capacity (26 for capacity 10
// and InitialLimit 20), until latency drives it to MinLimit once. Several Limiters for one server (one per
// loop) each see the latency the others cause: each keeps its own share
// smaller, which is the intended effect, but a Limiter whose own traffic
// stays at MinLimit or below takes the latency the others cause for the
// server's no-load latency.
package limit

import (
	"math"

	"github.com/apex-epoll/apex/cacheline"
)

// Defaults, applied by New to zero fields of Config.
const (
	DefaultMinLimit     = 4
	DefaultMaxLimit     = 1000
	DefaultInitialLimit = 20
)

// Internal constants; the package doc shows where each one acts. They
// were chosen with the closed-loop simulations of sim_test.go, over
// servers with constant, queueing, ±50% uniform, log-normal (σ = 1) and
// bimodal (5% of requests 50× slower) latencies.
const (
	// minWindow is the fewest completions in a window: fewer make the
	// mean RTT too noisy to steer by.
	minWindow = 8
	// clip bounds one sample at clip × the previous window's mean, so a
	// rare slow request weighs at most that.
	clip = 3.0
	// longAlpha weighs each window in long: about the last 16 windows.
	longAlpha = 1.0 / 16
	// idleAlpha weighs each low-concurrency window in ref.
	idleAlpha = 1.0 / 2
	// settle windows are skipped by the warm-up: the first completions
	// of a burst are its fastest requests, and the clip needs a few
	// windows to find its level.
	settle = 4
	// warmup is the number of successful samples whose mean is ref until
	// a low-concurrency window is seen.
	warmup = 256
	// tolerance is the rise over the baseline taken for noise rather
	// than queueing. 1.1 held the limit at MaxLimit on every noisy
	// non-queueing server simulated; Gradient2 uses 1.5 against a
	// baseline that is a mean of loaded samples.
	tolerance = 1.1
	// minGradient bounds one window's cut from latency.
	minGradient = 0.5
	// smoothing is the part of the step taken each window (Gradient2's
	// default): it damps the reaction to an unrepresentative window.
	smoothing = 0.2
	// backoff is the cut for a window with failures, as in AIMD limiters.
	backoff = 0.9
)

// Config bounds a Limiter. A Config with MinLimit == MaxLimit gives a
// fixed limit.
type Config struct {
	// MinLimit is the floor: the limit never goes below it. It is not a
	// probe level (there is none; see the package doc). Default 4; zero or
	// negative means the default.
	MinLimit int
	// MaxLimit is the ceiling. Default 1000; zero or negative means the
	// default, and a value below MinLimit is raised to MinLimit.
	MaxLimit int
	// InitialLimit is the limit before any sample, clamped to
	// [MinLimit, MaxLimit]. It should not exceed what the server takes
	// without queueing (see "Known limits"). Default 20; zero or negative
	// means the default.
	InitialLimit int
}

// Limiter is one server's adaptive concurrency limit. It is owned by one
// goroutine and is not safe for concurrent use.
//
// Invariant: minLimit <= limit <= maxLimit; inflight >= 0, and exceeds
// int(limit) only after the limit fell below it (Acquire then refuses
// until it is under again). The current window holds winN >= winOK
// completions since winStart; winSum is the sum of the winOK clipped RTTs
// and winDrops == winN - winOK; winPeak is the highest inflight since the
// window began. short, long and ref are 0 until the first window with a
// successful sample closes, and positive after it; then baseline ==
// min(ref, long).
type Limiter struct {
	_                  cacheline.Pad // one per loop and server, written per request
	minLimit, maxLimit float64
	limit              float64
	inflight           int

	winStart int64
	winN     int
	winOK    int
	winSum   float64
	winPeak  int
	winDrops int

	windows  int     // windows closed with a successful sample
	short    float64 // last window's clipped mean RTT, ns
	long     float64 // EWMA of short, ns
	ref      float64 // no-load RTT, ns
	lowSeen  bool    // ref comes from low-concurrency windows
	warmSum  float64 // warm-up samples' sum, ns, and count
	warmN    int
	baseline float64
	_        cacheline.Pad
}

// New returns a Limiter at cfg's initial limit with nothing in flight.
func New(cfg Config) *Limiter {
	if cfg.MinLimit <= 0 {
		cfg.MinLimit = DefaultMinLimit
	}
	if cfg.MaxLimit <= 0 {
		cfg.MaxLimit = DefaultMaxLimit
	}
	cfg.MaxLimit = max(cfg.MaxLimit, cfg.MinLimit)
	if cfg.InitialLimit <= 0 {
		cfg.InitialLimit = DefaultInitialLimit
	}
	cfg.InitialLimit = min(max(cfg.InitialLimit, cfg.MinLimit), cfg.MaxLimit)
	return &Limiter{
		minLimit: float64(cfg.MinLimit),
		maxLimit: float64(cfg.MaxLimit),
		limit:    float64(cfg.InitialLimit),
	}
}

// Limit is the current limit, between MinLimit and MaxLimit.
func (l *Limiter) Limit() int { return int(l.limit) }

// Inflight is the number of requests acquired and not yet released or
// cancelled.
func (l *Limiter) Inflight() int { return l.inflight }

// Baseline is the current estimate of the server's no-load round-trip
// time in nanoseconds, 0 before the first window closes.
func (l *Limiter) Baseline() int64 { return int64(l.baseline) }

// Acquire takes a slot for a request and reports true if fewer than Limit
// requests were in flight; otherwise it takes nothing and reports false
// (the caller queues the request, tries another server or sheds it).
func (l *Limiter) Acquire() bool {
	if l.inflight >= int(l.limit) {
		return false
	}
	l.inflight++
	l.winPeak = max(l.winPeak, l.inflight)
	return true
}

// Cancel returns a slot without a sample: the request was never sent, or
// its outcome says nothing about the server (the client went away first).
// A Cancel without a matching Acquire is ignored.
func (l *Limiter) Cancel() {
	if l.inflight > 0 {
		l.inflight--
	}
}

// Release returns a slot at time now and feeds the request's outcome.
// rtt is its round-trip time in nanoseconds, measured the same way every
// time (from the request's write to the response head, say). ok is false
// for a timeout, a connection failure or an overload answer (503, 429):
// those count as drops and cut the limit, and their rtt is not used.
// A Release without a matching Acquire still counts as a sample.
func (l *Limiter) Release(now, rtt int64, ok bool) {
	if l.inflight > 0 {
		l.inflight--
	}
	if l.winN == 0 {
		l.winStart = now
	}
	l.winN++
	if ok {
		x := float64(max(rtt, 1))
		if l.short > 0 {
			x = min(x, clip*l.short)
		}
		l.winOK++
		l.winSum += x
	} else {
		l.winDrops++
	}
	if l.winN < minWindow {
		return
	}
	if l.winOK > 0 && float64(now-l.winStart) < l.winSum/float64(l.winOK) {
		return // not yet one round trip long
	}
	l.update()
}

// update closes the window: it updates the RTT estimates and moves the
// limit.
func (l *Limiter) update() {
	var short float64
	if l.winOK > 0 {
		short = l.winSum / float64(l.winOK)
		l.estimate(short, float64(l.winPeak) <= l.minLimit, l.winSum, l.winOK)
	}
	switch {
	case l.winDrops > 0:
		l.limit *= backoff // at once: failures need no smoothing
	case 2*l.winPeak < int(l.limit):
		// Unused: the window says nothing about the limit.
	default:
		gradient := min(1, max(minGradient, tolerance*l.baseline/short))
		target := l.limit*gradient + math.Sqrt(l.limit)
		if !l.lowSeen && l.warmN < warmup {
			target = min(target, l.limit) // no growth before ref is known
		}
		l.limit += (target - l.limit) * smoothing
	}
	l.limit = min(max(l.limit, l.minLimit), l.maxLimit)
	l.winN, l.winOK, l.winSum, l.winDrops = 0, 0, 0, 0
	l.winPeak = l.inflight
}

// estimate feeds one window's clipped mean RTT, whether its peak
// concurrency was low, and its samples' sum and count.
func (l *Limiter) estimate(short float64, low bool, sum float64, n int) {
	l.windows++
	l.short = short
	if l.windows == 1 {
		l.long = short
	} else {
		l.long += (short - l.long) * longAlpha
	}
	switch {
	case low && !l.lowSeen:
		l.ref, l.lowSeen = short, true
	case low:
		l.ref += (short - l.ref) * idleAlpha
	case !l.lowSeen && l.warmN < warmup:
		// Warming up: steer by long (the limit only shrinks, on a rise
		// within the warm-up) until the warm-up mean is known.
		if l.windows > settle {
			l.warmSum += sum
			l.warmN += n
		}
		l.ref = l.long
		if l.warmN >= warmup {
			l.ref = l.warmSum / float64(l.warmN)
		}
	}
	l.baseline = min(l.ref, l.long)
}
