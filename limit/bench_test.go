package limit

import "testing"

// BenchmarkAcquireRelease is the limiter's whole share of one request at
// steady state, 100 requests in flight, windows closing as they do in
// service (about one per 100 requests).
func BenchmarkAcquireRelease(b *testing.B) {
	l := New(Config{InitialLimit: 200})
	const inflight = 100
	for range inflight {
		l.Acquire()
	}
	var now int64
	b.ReportAllocs()
	for b.Loop() {
		now += 10_000 // 100 requests per 1 ms RTT
		l.Release(now, 1_000_000, true)
		if !l.Acquire() {
			b.Fatal("refused")
		}
	}
}

// BenchmarkRefused is the cost of a refusal at the limit.
func BenchmarkRefused(b *testing.B) {
	l := New(Config{InitialLimit: 4})
	for l.Acquire() {
	}
	b.ReportAllocs()
	for b.Loop() {
		if l.Acquire() {
			b.Fatal("granted at the limit")
		}
	}
}

// BenchmarkWindowClose is Release when every call closes a window (the
// update path), the worst case.
func BenchmarkWindowClose(b *testing.B) {
	l := New(Config{InitialLimit: 200})
	var now int64
	for range minWindow - 1 {
		now += 1_000_000
		l.Release(now, 1_000_000, true)
	}
	b.ReportAllocs()
	for b.Loop() {
		now += 1_000_000
		l.winN = minWindow - 1 // the next Release closes the window
		l.Release(now, 1_000_000, true)
	}
}
