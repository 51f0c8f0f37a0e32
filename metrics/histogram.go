// Package metrics turns the proxy's counters into Prometheus metrics.
//
// The data path never calls into Prometheus: each event loop bumps plain
// counters that only it writes (Histogram, and the proxy's own per-loop
// counters), and a scrape asks every loop for a copy through its task
// door. So a request pays a few increments, never a lock or an atomic
// shared with other loops, and the exposition is done by the client
// library on the admin listener's goroutines.
package metrics

// Bounds are the upper bounds of the latency buckets, in nanoseconds:
// 100 µs to 10 s, about three per decade. A proxy's own latency lives at
// the low end, upstreams' at the high end.
var Bounds = [...]int64{
	100e3, 250e3, 500e3,
	1e6, 2.5e6, 5e6,
	10e6, 25e6, 50e6,
	100e6, 250e6, 500e6,
	1e9, 2.5e9, 5e9, 10e9,
}

// Histogram counts latencies into Bounds. It is a plain value: one
// goroutine (a loop) writes it, and others get copies.
//
// Invariant: Counts[i] counts observations <= Bounds[i] and > Bounds[i-1];
// Counts[len(Bounds)] counts the ones above the last bound; Sum is their
// total in nanoseconds.
type Histogram struct {
	Counts [len(Bounds) + 1]uint64
	Sum    int64
}

// Observe adds one latency in nanoseconds.
func (h *Histogram) Observe(ns int64) {
	if ns < 0 {
		ns = 0
	}
	i := 0
	for i < len(Bounds) && ns > Bounds[i] {
		i++
	}
	h.Counts[i]++
	h.Sum += ns
}

// Add merges o into h.
func (h *Histogram) Add(o *Histogram) {
	for i := range h.Counts {
		h.Counts[i] += o.Counts[i]
	}
	h.Sum += o.Sum
}

// Count is the number of observations.
func (h *Histogram) Count() uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}
