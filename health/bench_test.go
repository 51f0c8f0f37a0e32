package health

import "testing"

// BenchmarkServerAllowObserve is the per-request cost in steady state: one
// admission and one good result.
func BenchmarkServerAllowObserve(b *testing.B) {
	s := NewServer(Config{}, BreakerConfig{})
	b.ReportAllocs()
	now := int64(0)
	for b.Loop() {
		now += 1000
		tk, ok := s.Allow(now)
		if !ok {
			b.Fatal("refused")
		}
		s.Observe(now, tk, Success)
	}
}

// BenchmarkBreakerFailure is the dearest result: a failure while closed
// sums the whole window. Failures stay below the ratio and never five in a
// row.
func BenchmarkBreakerFailure(b *testing.B) {
	br := NewBreaker(BreakerConfig{})
	b.ReportAllocs()
	now, i := int64(0), 0
	for b.Loop() {
		now += 1000
		i++
		tk, _ := br.Allow(now)
		if i%3 == 0 {
			br.OnFailure(now, tk)
		} else {
			br.OnSuccess(now, tk)
		}
	}
	if br.State() != Closed {
		b.Fatal("breaker opened")
	}
}

// BenchmarkHealthAllowDown is the cost of refusing a down server, the path
// a dead upstream puts every request on.
func BenchmarkHealthAllowDown(b *testing.B) {
	h := NewHealth(Config{Active: true, StartDown: true})
	b.ReportAllocs()
	now := int64(0)
	for b.Loop() {
		now += 1000
		if _, ok := h.Allow(now); ok {
			b.Fatal("allowed")
		}
	}
}
