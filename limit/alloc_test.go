package limit

import "testing"

// Acquire, Release (including the window closes it triggers) and Cancel
// allocate nothing.
func TestHotPathAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race; run without it (.ci/run does)")
	}
	l := New(Config{})
	var now int64
	cases := []struct {
		name string
		f    func()
	}{
		{"Acquire/Release", func() {
			now += 100_000
			if l.Acquire() {
				l.Release(now, 1_000_000, true)
			}
		}},
		{"Acquire/Release failed", func() {
			now += 100_000
			if l.Acquire() {
				l.Release(now, 1_000_000, false)
			}
		}},
		{"Acquire/Cancel", func() {
			if l.Acquire() {
				l.Cancel()
			}
		}},
		{"Limit/Inflight/Baseline", func() { _, _, _ = l.Limit(), l.Inflight(), l.Baseline() }},
	}
	for _, c := range cases {
		if n := testing.AllocsPerRun(10000, c.f); n != 0 {
			t.Errorf("%s allocates %.1f times per call, want 0", c.name, n)
		}
	}
}
