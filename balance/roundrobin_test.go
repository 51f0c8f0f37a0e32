package balance

import (
	"strings"
	"testing"
)

// Weights 1,2,3 over 6000 picks: exactly 1000, 2000, 3000, since smooth
// weighted round robin repeats itself every total-weight picks.
func TestRoundRobinWeights(t *testing.T) {
	b := New(RoundRobin, servers(3, 1, 2, 3), 1)
	var got [3]int
	for range 6000 {
		got[b.Pick(0, 0)]++
	}
	if got != [3]int{1000, 2000, 3000} {
		t.Fatalf("picks = %v, want [1000 2000 3000]", got)
	}
}

// The sequence is nginx's: weights a=5, b=1, c=1 give "a a b a c a a", not
// five a in a row.
func TestRoundRobinSmooth(t *testing.T) {
	b := New(RoundRobin, servers(3, 5, 1, 1), 1)
	var sb strings.Builder
	for range 14 {
		sb.WriteByte("abc"[b.Pick(0, 0)])
	}
	if got, want := sb.String(), "aabacaa"+"aabacaa"; got != want {
		t.Fatalf("sequence %q, want %q", got, want)
	}
}

// Heavy servers' turns are spread out: with weights 1..5 no server is
// picked more than twice in a row, and over any window of total-weight picks every server gets its
// exact weight.
func TestRoundRobinInterleaves(t *testing.T) {
	w := []int{1, 2, 3, 4, 5}
	b := New(RoundRobin, servers(5, w...), 1)
	const total = 15
	seq := make([]int, 10*total)
	for i := range seq {
		seq[i] = b.Pick(0, 0)
	}
	run, longest := 1, 1
	for i := 1; i < len(seq); i++ {
		if seq[i] == seq[i-1] {
			run++
			longest = max(longest, run)
		} else {
			run = 1
		}
	}
	if longest > 2 {
		t.Errorf("longest run %d in %v", longest, seq[:total])
	}
	for start := 0; start+total <= len(seq); start++ {
		var got [5]int
		for _, i := range seq[start : start+total] {
			got[i]++
		}
		for i := range w {
			if got[i] != w[i] {
				t.Fatalf("window at %d: counts %v, want %v", start, got, w)
			}
		}
	}
}

// Unavailable servers are skipped; the others keep their proportions, and
// a server that comes back takes its share again.
func TestRoundRobinSkipsUnavailable(t *testing.T) {
	b := New(RoundRobin, servers(4, 1, 2, 3, 4), 1)
	b.SetAvailable(3, false)
	var got [4]int
	for range 600 {
		got[b.Pick(0, 0)]++
	}
	if got != [4]int{100, 200, 300, 0} {
		t.Fatalf("with server 3 unavailable: %v, want [100 200 300 0]", got)
	}
	b.SetAvailable(3, true)
	b.SetAvailable(0, false)
	got = [4]int{}
	for range 900 {
		got[b.Pick(0, 0)]++
	}
	// Proportions 2:3:4 to within the one round it takes server 3's
	// current to settle.
	for i, want := range []int{0, 200, 300, 400} {
		if d := got[i] - want; d < -2 || d > 2 {
			t.Fatalf("after swap: %v, want about [0 200 300 400]", got)
		}
	}
}

// Equal weights are plain round robin.
func TestRoundRobinEqual(t *testing.T) {
	b := New(RoundRobin, servers(4), 1)
	for i := range 40 {
		if got := b.Pick(0, 0); got != i%4 {
			t.Fatalf("pick %d = %d, want %d", i, got, i%4)
		}
	}
}
