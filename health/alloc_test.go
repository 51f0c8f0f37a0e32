package health

import "testing"

// The request path (Allow, Observe, Cancel and the checks), including every
// transition and a set OnChange, allocates nothing.
func TestHotPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race; run without it (.ci/run does)")
	}
	var changes int
	bc := BreakerConfig{ConsecutiveFailures: 3, HalfOpenTrials: 1}
	cases := []struct {
		name string
		s    Server
		hook bool
		want int // transitions per cycle
	}{
		{"nil callbacks", NewServer(Config{}, bc), false, 0},
		// up>down>probing>up; closed>open>half_open>closed
		{"callbacks", NewServer(Config{}, bc), true, 6},
		// up>down>up; closed>open>half_open>closed
		{"active checks", NewServer(Config{Active: true}, bc), true, 5},
	}
	for i := range cases {
		c := &cases[i]
		s := &c.s
		if c.hook {
			s.Health.OnChange = func(from, to Status) { changes++ }
			s.Breaker.OnChange = func(from, to State) { changes++ }
		}
		now := int64(0)
		// One cycle: traffic, a server failing (down, breaker open), the
		// way back (probe or checks, half-open trial), a cancel.
		cycle := func() {
			for i := 0; i < 30; i++ {
				now += 10 * ms
				o := Success
				if i%3 == 0 {
					o = ServerError // a third: below the ratio
				}
				if tk, ok := s.Allow(now); ok {
					s.Observe(now, tk, o)
				}
			}
			for i := 0; i < 3; i++ {
				if tk, ok := s.Allow(now); ok {
					s.Observe(now, tk, TransportError)
				}
			}
			s.Health.CheckFailed(now)
			now += 6 * sec
			if s.Health.cfg.Active {
				s.Health.CheckOK(now)
				s.Health.CheckOK(now)
			}
			if tk, ok := s.Allow(now); ok {
				s.Cancel(tk)
			}
			if tk, ok := s.Allow(now); ok {
				s.Observe(now, tk, Success)
			}
		}
		before := changes
		cycle()
		if changes-before != c.want {
			t.Fatalf("%s: %d transitions in a cycle, want %d", c.name, changes-before, c.want)
		}
		if s.Health.Status() != Up || s.Breaker.State() != Closed {
			t.Fatalf("%s: cycle ends %v, %v; want up, closed", c.name, s.Health.Status(), s.Breaker.State())
		}
		if a := testing.AllocsPerRun(1000, cycle); a != 0 {
			t.Errorf("%s: %v allocations per cycle", c.name, a)
		}
	}
}
