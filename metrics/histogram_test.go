package metrics

import "testing"

func TestHistogramBuckets(t *testing.T) {
	var h Histogram
	h.Observe(-5)    // clamped to 0: first bucket
	h.Observe(100e3) // on a bound: that bucket
	h.Observe(100e3 + 1)
	h.Observe(11e9) // above the last bound
	if h.Counts[0] != 2 || h.Counts[1] != 1 || h.Counts[len(Bounds)] != 1 {
		t.Fatalf("counts %v", h.Counts)
	}
	if h.Count() != 4 || h.Sum != 200e3+1+11e9 {
		t.Fatalf("count %d sum %d", h.Count(), h.Sum)
	}
	var sum Histogram
	sum.Add(&h)
	sum.Add(&h)
	if sum.Count() != 8 || sum.Sum != 2*h.Sum {
		t.Fatalf("after Add: count %d sum %d", sum.Count(), sum.Sum)
	}
}

func TestHistogramObserveAllocatesNothing(t *testing.T) {
	var h Histogram
	if n := testing.AllocsPerRun(100, func() { h.Observe(3e6) }); n != 0 {
		t.Fatalf("%v allocs", n)
	}
}
