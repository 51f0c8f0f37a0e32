package balance

import (
	"math"
	"math/bits"
)

// Latency EWMA.
//
// A sample's weight is the larger of a time-based and a count-based one:
//
//	alpha = max(1 - 2^(-dt/halfLife), minAlpha)
//
// where dt is the time since the previous sample. Below about one sample
// a second the time term wins: a sample after a minute's silence replaces
// the old value almost entirely, where a count-based EWMA would give it
// 1/16. Above it, minAlpha wins and the EWMA spans about the last 16
// samples, which follows a server that slows down within a few requests.
// The floor also matters because an event loop stamps every response of
// one turn with the same time: with a pure time-based weight all but the
// first of them would count for nothing (dt = 0).
//
// A server's EWMA also goes stale: p2c reads it as
//
//	pool + (ewma - pool) × 2^(-(now-last)/halfLife)
//
// so, without new samples, it drifts back to the backend-wide EWMA (pool,
// fed by every server's samples). A server avoided for being slow gets no
// samples, so without this it would be avoided for ever; with it, it is
// tried again after a few half-lives, and its first sample then says
// whether it has recovered. Servers without any sample are priced at pool
// too, so a new server takes an average server's share at once. Before
// any sample at all every server costs defaultLatency, which only has to
// be positive: scores are compared, never used as times.
//
// Both exponentials are skipped when they cannot matter, which is nearly
// always on a busy server (math.Exp2 costs more than the rest of a pick):
// below minAlphaAge the time weight is under minAlpha, and below freshAge
// staleness would change the price by less than 0.07%.
const (
	halfLife       = 10e9 // ns
	minAlpha       = 1.0 / 16
	defaultLatency = 1e6             // ns, 1 ms
	freshAge       = halfLife / 1024 // ns, about 10 ms
)

// minAlphaAge is the age at which the time weight reaches minAlpha: 0.93 s.
var minAlphaAge = int64(-halfLife * math.Log2(1-minAlpha))

// ewma is a latency EWMA in nanoseconds with the weights described above.
//
// Invariant: v == 0 until the first add, then v >= 1; last is the latest
// time passed to add.
type ewma struct {
	v    float64
	last int64
}

func (e *ewma) add(now, rtt int64) {
	if rtt < 1 {
		rtt = 1
	}
	if e.v == 0 {
		e.v, e.last = float64(rtt), now
		return
	}
	alpha := minAlpha
	if dt := now - e.last; dt > 0 {
		if dt > minAlphaAge {
			alpha = 1 - math.Exp2(-float64(dt)/halfLife)
		}
		e.last = now
	}
	e.v += (float64(rtt) - e.v) * alpha
}

// Observe feeds a response's latency on server i, in nanoseconds, taken at
// time now. Feed responses only: a failure that comes back fast (refused,
// reset) would make a broken server look fast. Such a server should be
// marked unavailable instead, or observed with a penalty latency (for
// example the timeout).
func (b *Balancer) Observe(i int, now, rtt int64) {
	b.servers[i].lat.add(now, rtt)
	b.pool.add(now, rtt)
}

// Latency is the latency p2c prices server i at, at time now: its EWMA
// decayed toward the backend-wide EWMA by staleness, in nanoseconds.
func (b *Balancer) Latency(i int, now int64) int64 {
	return int64(b.cost(&b.servers[i], now))
}

func (b *Balancer) cost(s *server, now int64) float64 {
	pool := b.pool.v
	if pool == 0 {
		pool = defaultLatency
	}
	if s.lat.v == 0 {
		return pool
	}
	dt := now - s.lat.last
	if dt < freshAge {
		return s.lat.v
	}
	return pool + (s.lat.v-pool)*math.Exp2(-float64(dt)/halfLife)
}

// pickP2C draws two distinct available servers and returns the one with
// the lower (outstanding+1) × latency / weight. The +1 prices the request
// being placed, so idle servers still differ by latency. Dividing by
// weight lets a server of weight w carry w times the load of a weight-1
// server at the same score; under light load, when both candidates are
// idle, the heavier one simply wins.
func (b *Balancer) pickP2C(now int64) int {
	n := uint64(len(b.avail))
	switch n {
	case 0:
		return -1
	case 1:
		return b.avail[0]
	}
	r := b.rand()
	// Two bounded draws from one 64-bit value (Lemire's multiply-shift,
	// bias below n/2^32): x in [0,n), y in [0,n-1) shifted past x.
	x := (r & 0xffffffff) * n >> 32
	y := (r >> 32) * (n - 1) >> 32
	if y >= x {
		y++
	}
	i, j := b.avail[x], b.avail[y]
	si, sj := &b.servers[i], &b.servers[j]
	ci := float64(si.outstanding+1) * b.cost(si, now) * float64(sj.weight)
	cj := float64(sj.outstanding+1) * b.cost(sj, now) * float64(si.weight)
	if cj < ci {
		return j
	}
	return i
}

// rand is wyrand: one add and one 64×64→128 multiply, no lock, owned by
// the Balancer like everything else in it.
func (b *Balancer) rand() uint64 {
	b.rng += 0xa0761d6478bd642f
	hi, lo := bits.Mul64(b.rng, b.rng^0xe7037ed1a0b428db)
	return hi ^ lo
}
