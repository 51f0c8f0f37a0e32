package balance

import (
	"container/heap"
	"math"
	"testing"
)

const ms = int64(1e6)

func TestP2CSingleAvailable(t *testing.T) {
	b := New(P2C, servers(5), 1)
	for _, i := range []int{0, 1, 3, 4} {
		b.SetAvailable(i, false)
	}
	b.Start(2)
	b.Start(2)
	b.Observe(2, 0, 500*ms)
	for k := range 100 {
		if got := b.Pick(int64(k), 0); got != 2 {
			t.Fatalf("Pick = %d, want the only available server 2", got)
		}
	}
}

// With two servers the two candidates are always both of them, so the
// less loaded one always wins; with equal scores the draw decides, evenly.
func TestP2CTwoDistinctCandidates(t *testing.T) {
	b := New(P2C, servers(2), 7)
	b.Start(1)
	for range 1000 {
		if got := b.Pick(0, 0); got != 0 {
			t.Fatalf("Pick = %d: compared a server with itself", got)
		}
	}
	b.Done(1)
	var got [2]int
	for range 10000 {
		got[b.Pick(0, 0)]++
	}
	if got[0] < 4700 || got[1] < 4700 {
		t.Fatalf("equal servers picked %v times, want about 5000 each", got)
	}
}

// The draws are uniform over the available servers, whichever those are.
func TestP2CDrawsUniformly(t *testing.T) {
	b := New(P2C, servers(10), 3)
	for _, i := range []int{1, 4, 5} {
		b.SetAvailable(i, false)
	}
	var got [10]int
	const picks = 70000
	for range picks {
		got[b.Pick(0, 0)]++ // all scores equal: the first draw wins
	}
	for i, n := range got {
		want := picks / 7
		if !b.Available(i) {
			want = 0
		}
		if math.Abs(float64(n-want)) > 0.05*picks/7 {
			t.Errorf("server %d picked %d times, want about %d (all: %v)", i, n, want, got)
		}
	}
}

// A server with requests in flight loses against an idle one of the same
// latency, and a server with a higher latency loses against an equally
// loaded faster one: the most loaded (or slowest) server is never chosen,
// because it loses whichever server it is drawn with.
func TestP2CPrefersLessLoadedAndFaster(t *testing.T) {
	b := New(P2C, servers(5), 11)
	for range 3 {
		b.Start(0)
	}
	b.Start(1)
	for k := range 10000 {
		if got := b.Pick(int64(k), 0); got == 0 {
			t.Fatal("picked the server with 3 requests in flight")
		}
	}
	b = New(P2C, servers(5), 11)
	for i := range 5 {
		b.Observe(i, 0, ms)
	}
	b.Observe(3, 0, 100*ms)
	for range 10000 {
		if got := b.Pick(0, 0); got == 3 {
			t.Fatal("picked the slow server at equal load")
		}
	}
}

// completion is a request finishing on server at time at.
type completion struct {
	at     int64
	server int
}

type completions []completion

func (c completions) Len() int           { return len(c) }
func (c completions) Less(i, j int) bool { return c[i].at < c[j].at }
func (c completions) Swap(i, j int)      { c[i], c[j] = c[j], c[i] }
func (c *completions) Push(x any)        { *c = append(*c, x.(completion)) }
func (c *completions) Pop() any {
	old := *c
	x := old[len(old)-1]
	*c = old[:len(old)-1]
	return x
}

// simulate sends requests to b at a fixed interval for n requests, each
// taking latency(server, outstanding) with ±25% deterministic jitter, and
// returns how many each server got and the mean latency.
func simulate(b *Balancer, n int, interval int64, latency func(server, outstanding int) int64) (got []int, mean float64) {
	got = make([]int, b.Len())
	var q completions
	rng := uint64(0x9e3779b97f4a7c15)
	var sum float64
	for k := range n {
		now := int64(k) * interval
		for len(q) > 0 && q[0].at <= now {
			c := heap.Pop(&q).(completion)
			b.Done(c.server)
		}
		i := b.Pick(now, 0)
		if i < 0 {
			continue
		}
		rng ^= rng << 13
		rng ^= rng >> 7
		rng ^= rng << 17
		lat := latency(i, b.Outstanding(i))
		lat += lat * int64(rng%51-25) / 100
		b.Start(i)
		got[i]++
		sum += float64(lat)
		// The latency is known when the response arrives; observing it
		// now, stamped with its arrival time, is the same to the EWMA
		// except for its order among other samples.
		heap.Push(&q, completion{now + lat, i})
		b.Observe(i, now+lat, lat)
	}
	return got, sum / float64(n)
}

// One server of five ten times slower gets a small share, far below the
// 20% that random or round robin would send it, and the mean latency is
// close to the fast servers'.
func TestP2CAvoidsSlowServer(t *testing.T) {
	b := New(P2C, servers(5), 5)
	got, mean := simulate(b, 200000, 50_000, func(i, _ int) int64 {
		if i == 0 {
			return 10 * ms
		}
		return ms
	})
	share := float64(got[0]) / 200000
	t.Logf("picks %v, slow share %.4f, mean latency %.2f ms", got, share, mean/1e6)
	if share > 0.03 {
		t.Errorf("slow server got %.1f%% of requests, want under 3%%", 100*share)
	}
	if mean > 1.3e6 {
		t.Errorf("mean latency %.2f ms, want near 1 ms", mean/1e6)
	}
}

// Servers that queue (latency grows with requests in flight) end up with
// even loads: p2c keeps the outstanding counts level.
func TestP2CBalancesQueueingServers(t *testing.T) {
	b := New(P2C, servers(4), 9)
	got, _ := simulate(b, 200000, 10_000, func(_, out int) int64 {
		return ms * int64(1+out/4)
	})
	for i, n := range got {
		if n < 45000 || n > 55000 {
			t.Errorf("server %d got %d of 200000, want about 50000 (all: %v)", i, n, got)
		}
	}
}

// Under load a server of weight 3 carries about three times the requests
// of a server of weight 1 when it has three times the capacity.
func TestP2CWeights(t *testing.T) {
	b := New(P2C, servers(2, 1, 3), 4)
	got, _ := simulate(b, 200000, 20_000, func(i, out int) int64 {
		return ms * int64(1+out/(8*b.Weight(i)))
	})
	ratio := float64(got[1]) / float64(got[0])
	t.Logf("picks %v, ratio %.2f", got, ratio)
	if ratio < 2.5 || ratio > 3.5 {
		t.Errorf("weight 3 vs 1: picks %v, ratio %.2f, want about 3", got, ratio)
	}
}

// A server without samples is priced at the backend-wide EWMA, so a new
// server takes traffic at once rather than waiting or being flooded.
func TestP2CNewServerGetsTraffic(t *testing.T) {
	b := New(P2C, servers(5), 8)
	b.SetAvailable(4, false)
	for i := range 4 {
		b.Observe(i, 0, 2*ms)
	}
	if got := b.Latency(4, 0); got != 2*ms {
		t.Fatalf("unsampled server priced at %d ns, want the pool's %d", got, 2*ms)
	}
	b.SetAvailable(4, true)
	got, _ := simulate(b, 50000, 100_000, func(int, int) int64 { return 2 * ms })
	if share := float64(got[4]) / 50000; share < 0.15 || share > 0.25 {
		t.Errorf("new server got %.1f%%, want about 20%% (all: %v)", 100*share, got)
	}
}

// A server avoided for being slow gets no samples; its price decays to
// the backend-wide EWMA with halfLife, so it is tried again as soon as the
// others are busy.
func TestP2CStaleLatencyDecays(t *testing.T) {
	b := New(P2C, servers(3), 2)
	for range 2 {
		b.Start(1)
		b.Start(2)
	}
	b.Observe(0, 0, 100*ms)
	b.Observe(1, 0, ms)
	b.Observe(2, 0, ms)
	if got := b.Latency(0, 0); got != 100*ms {
		t.Fatalf("fresh price %d, want %d", got, 100*ms)
	}
	// Keep the others fed; the pool settles near 1 ms.
	for now := int64(0); now <= 60e9; now += 10 * ms {
		b.Observe(1, now, ms)
		b.Observe(2, now, ms)
	}
	for range 1000 {
		if b.Pick(0, 0) == 0 {
			t.Fatal("picked the slow server while its sample is fresh")
		}
	}
	pool := b.pool.v
	if got := b.Latency(0, 10e9); math.Abs(float64(got)-(pool+(100e6-pool)/2)) > 0.01e6 {
		t.Errorf("after one half-life: %d, want halfway to the pool (%.0f)", got, pool)
	}
	if got := b.Latency(0, 60e9); got > 3*ms {
		t.Errorf("after six half-lives: %d ns, want under 3 ms", got)
	}
	picked := 0
	for range 3000 {
		if b.Pick(60e9, 0) == 0 {
			picked++
		}
	}
	// Drawn in 2 of 3 pairs, and now cheaper than a server with two
	// requests in flight.
	if picked < 1800 {
		t.Errorf("the once-slow server was picked %d times of 3000 after a minute, want about 2000", picked)
	}
}

// The EWMA weighs a sample by the larger of its time weight and minAlpha,
// so samples that share a timestamp still count.
func TestEWMA(t *testing.T) {
	var e ewma
	e.add(0, 0)
	if e.v != 1 {
		t.Fatalf("rtt 0 gives %v, want 1 (clamped, and marks the EWMA as sampled)", e.v)
	}
	e = ewma{}
	e.add(5, 1000)
	if e.v != 1000 || e.last != 5 {
		t.Fatalf("first sample: %+v", e)
	}
	for range 16 {
		e.add(5, 2000) // same timestamp: minAlpha each
	}
	if want := 2000 - 1000*math.Pow(1-minAlpha, 16); math.Abs(e.v-want) > 1e-6 {
		t.Errorf("16 same-time samples: %v, want %v", e.v, want)
	}
	e = ewma{v: 1000, last: 0}
	e.add(halfLife, 3000)
	if math.Abs(e.v-2000) > 1e-6 {
		t.Errorf("one half-life later: %v, want 2000", e.v)
	}
	e = ewma{v: 1000, last: 0}
	e.add(1000*halfLife, 3000)
	if math.Abs(e.v-3000) > 1e-6 {
		t.Errorf("long after: %v, want the sample", e.v)
	}
	e = ewma{v: 1000, last: 100}
	e.add(50, 3000) // time went backwards: minAlpha, last kept
	if e.last != 100 || math.Abs(e.v-(1000+2000*minAlpha)) > 1e-6 {
		t.Errorf("backwards clock: %+v", e)
	}
}

// The PRNG stream depends only on the seed.
func TestP2CDeterministic(t *testing.T) {
	a, b := New(P2C, servers(6), 42), New(P2C, servers(6), 42)
	c := New(P2C, servers(6), 43)
	same := true
	for k := range 1000 {
		x, y, z := a.Pick(int64(k), 0), b.Pick(int64(k), 0), c.Pick(int64(k), 0)
		if x != y {
			t.Fatalf("same seed, different picks at %d", k)
		}
		same = same && x == z
	}
	if same {
		t.Error("different seeds gave the same 1000 picks")
	}
}
