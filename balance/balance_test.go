package balance

import (
	"fmt"
	"testing"
)

var policies = []Policy{P2C, RoundRobin, Hash}

// servers returns n servers named like config addresses, with the given
// weights (1 when weights is shorter).
func servers(n int, weights ...int) []Server {
	s := make([]Server, n)
	for i := range s {
		s[i] = Server{Name: fmt.Sprintf("10.0.0.%d:8080", i+1), Weight: 1}
		if i < len(weights) {
			s[i].Weight = weights[i]
		}
	}
	return s
}

func TestParsePolicy(t *testing.T) {
	for _, p := range policies {
		got, err := ParsePolicy(p.String())
		if err != nil || got != p {
			t.Errorf("ParsePolicy(%q) = %v, %v; want %v", p.String(), got, err, p)
		}
	}
	if p, err := ParsePolicy(""); err != nil || p != P2C {
		t.Errorf(`ParsePolicy("") = %v, %v; want p2c (the default)`, p, err)
	}
	for _, bad := range []string{"P2C", "roundrobin", "least_conn", " hash"} {
		if _, err := ParsePolicy(bad); err == nil {
			t.Errorf("ParsePolicy(%q) accepted", bad)
		}
	}
	if s := Policy(9).String(); s != "Policy(9)" {
		t.Errorf("Policy(9).String() = %q", s)
	}
}

func TestNoServers(t *testing.T) {
	for _, p := range policies {
		b := New(p, nil, 1)
		if got := b.Pick(0, 42); got != -1 {
			t.Errorf("%v: Pick with no servers = %d, want -1", p, got)
		}
	}
}

func TestNoneAvailable(t *testing.T) {
	for _, p := range policies {
		b := New(p, servers(5), 1)
		for i := range 5 {
			b.SetAvailable(i, false)
		}
		for k := range uint64(100) {
			if got := b.Pick(int64(k), k); got != -1 {
				t.Fatalf("%v: Pick with every server unavailable = %d, want -1", p, got)
			}
		}
		b.SetAvailable(3, true)
		for k := range uint64(100) {
			if got := b.Pick(int64(k), k); got != 3 {
				t.Fatalf("%v: Pick with only server 3 available = %d", p, got)
			}
		}
	}
}

func TestWeightDefaults(t *testing.T) {
	b := New(P2C, []Server{{Weight: 0}, {Weight: -3}, {Weight: 7}}, 1)
	for i, want := range []int{1, 1, 7} {
		if got := b.Weight(i); got != want {
			t.Errorf("Weight(%d) = %d, want %d", i, got, want)
		}
	}
}

// Random availability changes keep avail and availPos consistent, and no
// policy ever picks an unavailable server while another is available.
func TestNeverPicksUnavailable(t *testing.T) {
	for _, p := range policies {
		t.Run(p.String(), func(t *testing.T) {
			const n = 7
			b := New(p, servers(n, 1, 2, 3, 1, 5, 1, 2), 99)
			model := [n]bool{true, true, true, true, true, true, true}
			rng := uint64(12345)
			next := func() uint64 { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng }
			for step := range 20000 {
				if step%3 == 0 {
					i, ok := int(next()%n), next()%3 != 0
					b.SetAvailable(i, ok)
					model[i] = ok
				}
				checkAvail(t, b, model[:])
				got := b.Pick(int64(step)*1e5, next())
				want := 0
				for _, ok := range model {
					if ok {
						want++
					}
				}
				switch {
				case want == 0 && got != -1:
					t.Fatalf("step %d: picked %d with none available", step, got)
				case want > 0 && (got < 0 || !model[got]):
					t.Fatalf("step %d: picked %d, available %v", step, got, model)
				}
				if got >= 0 {
					b.Start(got)
					b.Observe(got, int64(step)*1e5, int64(1e6+got*1e5))
					b.Done(got)
				}
			}
		})
	}
}

func checkAvail(t *testing.T, b *Balancer, model []bool) {
	t.Helper()
	n := 0
	for i, ok := range model {
		if b.Available(i) != ok {
			t.Fatalf("Available(%d) = %v, want %v", i, b.Available(i), ok)
		}
		if ok {
			n++
			if b.avail[b.servers[i].availPos] != i {
				t.Fatalf("avail[availPos(%d)] = %d", i, b.avail[b.servers[i].availPos])
			}
		}
	}
	if b.NumAvailable() != n || len(b.avail) != n {
		t.Fatalf("NumAvailable = %d, len(avail) = %d, want %d", b.NumAvailable(), len(b.avail), n)
	}
}

func TestSetAvailableIdempotent(t *testing.T) {
	b := New(RoundRobin, servers(3), 1)
	b.SetAvailable(1, false)
	b.SetAvailable(1, false)
	b.SetAvailable(0, true)
	checkAvail(t, b, []bool{true, false, true})
	b.SetAvailable(1, true)
	b.SetAvailable(1, true)
	checkAvail(t, b, []bool{true, true, true})
}

func TestOutstanding(t *testing.T) {
	b := New(P2C, servers(2), 1)
	b.Start(1)
	b.Start(1)
	b.Done(1)
	if got := b.Outstanding(1); got != 1 {
		t.Fatalf("Outstanding = %d, want 1", got)
	}
	b.Done(1)
	b.Done(1) // one too many: ignored
	if got := b.Outstanding(1); got != 0 {
		t.Fatalf("Outstanding after extra Done = %d, want 0", got)
	}
	b.Start(1)
	if got := b.Outstanding(1); got != 1 {
		t.Fatalf("Outstanding = %d, want 1", got)
	}
}

// A clone has the original's policy, weights and ring, and none of its
// state.
func TestClone(t *testing.T) {
	for _, p := range policies {
		a := New(p, servers(5, 3, 1, 1, 2, 1), 1)
		a.SetAvailable(2, false)
		a.Start(0)
		a.Observe(0, 0, 5e6)
		c := a.Clone(2)
		if c.Policy() != p || c.Len() != 5 || c.NumAvailable() != 5 || c.Outstanding(0) != 0 || c.servers[0].lat.v != 0 {
			t.Fatalf("%v: clone carries state: %+v", p, c.servers)
		}
		for i := range 5 {
			if c.Weight(i) != a.Weight(i) {
				t.Fatalf("%v: clone weight %d = %d, want %d", p, i, c.Weight(i), a.Weight(i))
			}
		}
		if p == Hash {
			fresh := New(p, servers(5, 3, 1, 1, 2, 1), 3)
			for k := range uint64(1000) {
				if c.Pick(0, k) != fresh.Pick(0, k) {
					t.Fatalf("clone and fresh Balancer disagree on key %d", k)
				}
			}
		}
	}
}

// Clone may run on another goroutine while the original's owner uses it
// (run with -race).
func TestCloneWhileInUse(t *testing.T) {
	for _, p := range policies {
		b := New(p, servers(5, 1, 2, 3, 4, 5), 1)
		done := make(chan *Balancer)
		go func() {
			var c *Balancer
			for range 100 {
				c = b.Clone(7)
			}
			done <- c
		}()
		for k := range uint64(2000) {
			if i := b.Pick(int64(k), k); i >= 0 {
				b.Start(i)
				b.Observe(i, int64(k), 1e6)
				b.Done(i)
			}
			b.SetAvailable(int(k%5), k%3 != 0)
		}
		if c := <-done; c.Len() != 5 || c.NumAvailable() != 5 {
			t.Fatalf("%v: clone has %d servers, %d available", p, c.Len(), c.NumAvailable())
		}
	}
}
