package balance

import "testing"

// The per-request calls allocate nothing, in every policy.
func TestHotPathAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race; run without it (.ci/run does)")
	}
	key := []byte("session=3f9a1c7e")
	for _, p := range policies {
		b := New(p, servers(8, 1, 2, 3, 1, 1, 2, 1, 1), 1)
		b.SetAvailable(5, false)
		var now int64
		cases := []struct {
			name string
			f    func()
		}{
			{"Pick", func() {
				now += 1e5
				if b.Pick(now, Sum64(key)) < 0 {
					panic("no server")
				}
			}},
			{"Start/Observe/Done", func() {
				now += 1e5
				b.Start(2)
				b.Observe(2, now, 1e6)
				b.Done(2)
			}},
			{"SetAvailable", func() {
				b.SetAvailable(3, false)
				b.SetAvailable(3, true)
			}},
			{"Latency", func() { _ = b.Latency(1, now) }},
			{"Sum64String", func() { _ = Sum64String("198.51.100.7") }},
		}
		for _, c := range cases {
			if n := testing.AllocsPerRun(1000, c.f); n != 0 {
				t.Errorf("%v: %s allocates %.1f times per call, want 0", p, c.name, n)
			}
		}
	}
}
