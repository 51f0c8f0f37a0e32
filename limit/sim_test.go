package limit

import (
	"container/heap"
	"math"
)

const ms = int64(1e6)

// sim drives a Limiter with a closed-loop client: whenever a slot is
// free it sends (up to demand requests in flight; 0 means unbounded
// demand, "full use"), and each request completes rtt(inflight) after it
// was sent, inflight counted when it was sent. Time jumps from one
// completion to the next. Everything is deterministic.
type sim struct {
	l      *Limiter
	now    int64
	q      events
	rng    uint64
	demand int
	// rtt is the server: the round-trip time of a request sent with n
	// requests in flight (itself included).
	rtt func(n int) int64
	// jitter spreads each rtt uniformly by ±jitter (0.2 = ±20%).
	jitter float64
	// fail, if set, says whether the request fails.
	fail func() bool

	samples int
}

type event struct {
	at  int64
	rtt int64
	ok  bool
}

type events []event

func (e events) Len() int           { return len(e) }
func (e events) Less(i, j int) bool { return e[i].at < e[j].at }
func (e events) Swap(i, j int)      { e[i], e[j] = e[j], e[i] }
func (e *events) Push(x any)        { *e = append(*e, x.(event)) }
func (e *events) Pop() any {
	old := *e
	x := old[len(old)-1]
	*e = old[:len(old)-1]
	return x
}

func newSim(cfg Config, rtt func(n int) int64) *sim {
	return &sim{l: New(cfg), rng: 0x9e3779b97f4a7c15, rtt: rtt}
}

func (s *sim) rand() float64 {
	s.rng ^= s.rng << 13
	s.rng ^= s.rng >> 7
	s.rng ^= s.rng << 17
	return float64(s.rng>>11) / (1 << 53)
}

// fill sends until the limiter or the demand says no.
func (s *sim) fill() {
	for (s.demand == 0 || s.l.Inflight() < s.demand) && s.l.Acquire() {
		rtt := s.rtt(s.l.Inflight())
		if s.jitter > 0 {
			rtt = int64(float64(rtt) * (1 + s.jitter*(2*s.rand()-1)))
		}
		ok := s.fail == nil || !s.fail()
		heap.Push(&s.q, event{s.now + rtt, rtt, ok})
	}
}

// run processes n completions, calling each (if set) after every one.
func (s *sim) run(n int, each func()) {
	for range n {
		s.fill()
		if len(s.q) == 0 {
			return
		}
		e := heap.Pop(&s.q).(event)
		s.now = e.at
		s.l.Release(s.now, e.rtt, e.ok)
		s.samples++
		if each != nil {
			each()
		}
	}
	s.fill()
}

// queueing is a server that runs capacity requests at once in base time
// and queues the rest: rtt = base × max(1, n/capacity).
func queueing(base int64, capacity int) func(int) int64 {
	return func(n int) int64 {
		return int64(float64(base) * math.Max(1, float64(n)/float64(capacity)))
	}
}

func constant(rtt int64) func(int) int64 { return func(int) int64 { return rtt } }

// lognormal is a server whose latency is base × e^(σZ), Z standard
// normal: a heavy right tail, as of a mix of endpoints.
func (s *sim) lognormal(base int64, sigma float64) func(int) int64 {
	return func(int) int64 {
		u1, u2 := s.rand(), s.rand()
		z := math.Sqrt(-2*math.Log(u1+1e-300)) * math.Cos(2*math.Pi*u2)
		return int64(float64(base) * math.Exp(sigma*z))
	}
}

// bimodal is a server where one request in twenty takes 50 × base.
func (s *sim) bimodal(base int64) func(int) int64 {
	return func(int) int64 {
		if s.rand() < 0.05 {
			return 50 * base
		}
		return base
	}
}
