package balance

import (
	"fmt"
	"math"
	"testing"
)

const hashKeys = 100000

// key returns the k-th test key the way a caller makes one: Sum64 of a
// client address.
func key(k int) uint64 {
	var b [16]byte
	s := fmt.Appendf(b[:0], "198.51.%d.%d", k>>8&0xff, k&0xff)
	return Sum64(fmt.Appendf(s, ":%d", k>>16))
}

func owners(b *Balancer) []int {
	o := make([]int, hashKeys)
	for k := range o {
		o[k] = b.Pick(0, key(k))
	}
	return o
}

func counts(o []int, n int) []int {
	c := make([]int, n)
	for _, i := range o {
		c[i]++
	}
	return c
}

// Five equal servers each own 20% of 100k keys, to within 10% of that.
func TestHashDistribution(t *testing.T) {
	b := New(Hash, servers(5), 0)
	c := counts(owners(b), 5)
	t.Logf("keys per server: %v (ring of %d points)", c, len(b.ring.hashes))
	for i, n := range c {
		if math.Abs(float64(n)-hashKeys/5) > 0.10*hashKeys/5 {
			t.Errorf("server %d owns %d keys, want %d ± 10%%", i, n, hashKeys/5)
		}
	}
}

// Weights 1,2,3,4 give shares 10/20/30/40%, each to within 20%: a server
// with p points strays by about 1/sqrt(p), 6% for weight 1, so 20% is
// three standard deviations.
func TestHashWeights(t *testing.T) {
	w := []int{1, 2, 3, 4}
	b := New(Hash, servers(4, w...), 0)
	c := counts(owners(b), 4)
	t.Logf("keys per server: %v", c)
	for i, n := range c {
		want := float64(hashKeys*w[i]) / 10
		if math.Abs(float64(n)-want) > 0.20*want {
			t.Errorf("server %d (weight %d) owns %d keys, want %.0f ± 20%%", i, w[i], n, want)
		}
	}
}

// Marking one server of five unavailable moves its keys and no other, and
// spreads them over all four others; marking it available again moves
// them back.
func TestHashUnavailableMovesOnlyItsKeys(t *testing.T) {
	b := New(Hash, servers(5), 0)
	before := owners(b)
	for gone := range 5 {
		b.SetAvailable(gone, false)
		after := owners(b)
		moved := 0
		to := make([]int, 5)
		for k := range before {
			if after[k] == before[k] {
				continue
			}
			if before[k] != gone {
				t.Fatalf("server %d unavailable: key %d moved from server %d to %d", gone, k, before[k], after[k])
			}
			moved++
			to[after[k]]++
		}
		if frac := float64(moved) / hashKeys; frac > 0.25 {
			t.Errorf("server %d unavailable: %.1f%% of keys moved, want at most 25%%", gone, 100*frac)
		}
		for i, n := range to {
			if i != gone && n < moved/10 {
				t.Errorf("server %d unavailable: its %d keys went %v, want spread over all four", gone, moved, to)
				break
			}
		}
		b.SetAvailable(gone, true)
		for k, i := range owners(b) {
			if i != before[k] {
				t.Fatalf("server %d available again: key %d on %d, was on %d", gone, k, i, before[k])
			}
		}
	}
}

// Removing a server from the config (a new Balancer without it, the
// others keeping their names) moves only the removed server's keys; adding
// one takes keys only for itself.
func TestHashRemoveAndAddServer(t *testing.T) {
	all := servers(5)
	before := owners(New(Hash, all, 0))
	rest := append(append([]Server(nil), all[:2]...), all[3:]...) // drop server 2
	after := owners(New(Hash, rest, 0))
	index := []int{0, 1, -1, 2, 3} // old index → new index
	moved := 0
	for k := range before {
		if before[k] == 2 {
			moved++
			continue
		}
		if after[k] != index[before[k]] {
			t.Fatalf("removing server 2 moved key %d from %d", k, before[k])
		}
	}
	if frac := float64(moved) / hashKeys; frac > 0.25 {
		t.Errorf("removing one of five moved %.1f%% of keys, want at most 25%%", 100*frac)
	}

	grown := owners(New(Hash, servers(6), 0))
	taken := 0
	for k := range before {
		if grown[k] != before[k] {
			if grown[k] != 5 {
				t.Fatalf("adding server 5 moved key %d from %d to %d", k, before[k], grown[k])
			}
			taken++
		}
	}
	if frac := float64(taken) / hashKeys; frac < 0.10 || frac > 0.23 {
		t.Errorf("a sixth server took %.1f%% of keys, want about 16.7%%", 100*frac)
	}
}

// With only one of five available every key goes to it, and the walk is
// deterministic: the same key always lands on the same server.
func TestHashWalkDeterministic(t *testing.T) {
	b := New(Hash, servers(5), 0)
	b.SetAvailable(0, false)
	b.SetAvailable(2, false)
	first := owners(b)
	again := owners(New(Hash, servers(5), 0).withUnavailable(0, 2))
	for k := range first {
		if first[k] != again[k] {
			t.Fatalf("key %d: %d then %d", k, first[k], again[k])
		}
	}
	for _, i := range []int{0, 1, 2, 3} {
		b.SetAvailable(i, false)
	}
	for k := range 1000 {
		if got := b.Pick(0, key(k)); got != 4 {
			t.Fatalf("key %d on %d, want the only available server 4", k, got)
		}
	}
}

func (b *Balancer) withUnavailable(idx ...int) *Balancer {
	for _, i := range idx {
		b.SetAvailable(i, false)
	}
	return b
}

// Keys that differ in one bit (consecutive addresses) still spread: Pick
// mixes the key.
func TestHashWeakKeys(t *testing.T) {
	b := New(Hash, servers(5), 0)
	c := make([]int, 5)
	for k := range uint64(hashKeys) {
		c[b.Pick(0, 0xc0a80000+k)]++ // 192.168.x.y as a raw number
	}
	for i, n := range c {
		if math.Abs(float64(n)-hashKeys/5) > 0.10*hashKeys/5 {
			t.Errorf("server %d owns %d of the raw-address keys, want %d ± 10%%", i, n, hashKeys/5)
		}
	}
}

func TestRingShape(t *testing.T) {
	for _, tc := range []struct {
		w          []int
		n          int
		minPoints  int
		maxPoints  int
		wantPoints []int // per server, when given
	}{
		{n: 1, wantPoints: []int{pointsPerWeight}},
		{n: 3, w: []int{1, 2, 3}, wantPoints: []int{pointsPerWeight, 2 * pointsPerWeight, 3 * pointsPerWeight}},
		{n: 256, minPoints: maxRingPoints, maxPoints: maxRingPoints},
		{n: 1000, minPoints: maxRingPoints - 1000, maxPoints: maxRingPoints},
		{n: 2, w: []int{1, 1000}, wantPoints: []int{65, 65470}},
		{n: 100000, minPoints: 100000, maxPoints: 100000}, // more servers than points: one each
	} {
		r := newRing(servers(tc.n, tc.w...))
		if len(r.hashes) != len(r.owners) {
			t.Fatalf("%d servers: %d hashes, %d owners", tc.n, len(r.hashes), len(r.owners))
		}
		if tc.minPoints > 0 && (len(r.hashes) < tc.minPoints || len(r.hashes) > tc.maxPoints) {
			t.Errorf("%d servers: %d points, want %d..%d", tc.n, len(r.hashes), tc.minPoints, tc.maxPoints)
		}
		per := make([]int, tc.n)
		for k, o := range r.owners {
			per[o]++
			if k > 0 && r.hashes[k] < r.hashes[k-1] {
				t.Fatalf("%d servers: ring not sorted at %d", tc.n, k)
			}
		}
		for i, p := range per {
			if p < 1 {
				t.Fatalf("%d servers: server %d has no point", tc.n, i)
			}
			if tc.wantPoints != nil && p != tc.wantPoints[i] {
				t.Errorf("weights %v: server %d has %d points, want %d", tc.w, i, p, tc.wantPoints[i])
			}
		}
		// search agrees with a plain linear scan.
		for k := range uint64(2000) {
			h := mix64(k)
			want := 0
			for want < len(r.hashes) && r.hashes[want] < h {
				want++
			}
			if want == len(r.hashes) {
				want = 0
			}
			if got := r.search(h); got != want {
				t.Fatalf("%d servers: search(%#x) = %d, want %d", tc.n, h, got, want)
			}
		}
		for _, h := range []uint64{0, math.MaxUint64, r.hashes[0], r.hashes[len(r.hashes)-1], r.hashes[len(r.hashes)-1] + 1} {
			got := r.search(h)
			if r.hashes[got] < h && got != 0 {
				t.Fatalf("%d servers: search(%#x) = %d", tc.n, h, got)
			}
		}
	}
}

// FNV-1a test vectors from the reference implementation.
func TestSum64(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want uint64
	}{
		{"", 0xcbf29ce484222325},
		{"a", 0xaf63dc4c8601ec8c},
		{"foobar", 0x85944171f73967e8},
	} {
		if got := Sum64([]byte(tc.s)); got != tc.want {
			t.Errorf("Sum64(%q) = %#x, want %#x", tc.s, got, tc.want)
		}
		if got := Sum64String(tc.s); got != tc.want {
			t.Errorf("Sum64String(%q) = %#x, want %#x", tc.s, got, tc.want)
		}
	}
}
