package retry

import (
	"math"
	"time"
)

// Default values of Config: those of Finagle's RetryBudget. A fifth of the
// load caps what retries can add to a failing server at 20%, while ten a
// second let a quiet service ride out the odd reset.
const (
	DefaultRatio        = 0.2
	DefaultMinPerSecond = 10
	DefaultWindow       = 10 * time.Second
)

// Config tunes a Budget.
type Config struct {
	// Ratio is the number of retries each original request earns: 0.2
	// lets 1000 requests in the window pay for 200 retries. Zero means
	// DefaultRatio; negative means none (the reserve alone). Above 1 is
	// taken as 1: a budget is there to keep retries a fraction of the
	// load. It is kept to six decimal places.
	Ratio float64
	// MinPerSecond is a reserve, on top of what requests earn, of
	// MinPerSecond retries for each second of Window, so that a service
	// with little traffic can still retry. Zero means DefaultMinPerSecond;
	// negative means no reserve. It is per Budget: with one Budget per
	// loop, a process has loops × MinPerSecond.
	MinPerSecond int
	// Window is how long a request's earnings and a retry's cost count,
	// in budgetBuckets slices. Zero or negative means DefaultWindow.
	Window time.Duration
}

// budgetBuckets is the number of slices the window is cut into; it slides
// one slice at a time, so a request or retry counts for between
// Window×(1-1/budgetBuckets) and Window.
const budgetBuckets = 10

// bucket holds the counts of one slice of the window.
type bucket struct {
	slice    int64 // which slice (now / width) the counts belong to
	requests int64
	retries  int64
}

// Budget limits retries to a share of the requests over a sliding window,
// in the spirit of Finagle's RetryBudget: each original request deposits
// Ratio of a retry, each retry withdraws one, and a reserve of
// MinPerSecond×Window retries is always there on top. Deposits and
// withdrawals expire together when they leave the window, so a burst of
// retries is paid for by the requests around it, never by old credit.
//
// Use NewBudget; the zero Budget is not ready for use.
//
// Invariant: owned by one goroutine (not safe for concurrent use).
// 0 <= ratio <= 1e6 (millionths); 0 <= reserve <= maxReserve; width >= 1.
// Counting only the buckets whose slice is in the window (now's slice and
// the budgetBuckets-1 before it), 1e6×retries <= ratio×requests + 1e6×reserve
// when each retry was taken, which TryRetry checks.
type Budget struct {
	ratio   int64 // Ratio in millionths
	reserve int64 // retries the window holds whatever the traffic
	width   int64 // nanoseconds per bucket
	ring    [budgetBuckets]bucket
}

// maxReserve bounds the reserve so 1e6×reserve cannot overflow.
const maxReserve = 1 << 40

// NewBudget returns a budget with no requests counted yet: only the
// reserve is available.
func NewBudget(c Config) Budget {
	if c.Ratio == 0 {
		c.Ratio = DefaultRatio
	}
	if c.MinPerSecond == 0 {
		c.MinPerSecond = DefaultMinPerSecond
	}
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	b := Budget{width: max(int64(c.Window)/budgetBuckets, 1)}
	if c.Ratio > 0 {
		b.ratio = int64(math.Round(min(c.Ratio, 1) * 1e6))
	}
	if c.MinPerSecond > 0 {
		b.reserve = int64(min(float64(c.MinPerSecond)*c.Window.Seconds(), maxReserve))
	}
	return b
}

// Request counts one original request (not a retry), which earns Ratio of
// a retry.
func (b *Budget) Request(now int64) {
	b.current(now).requests++
}

// TryRetry takes one retry from the budget and reports true, or reports
// false, taking nothing, if the window cannot pay for it.
func (b *Budget) TryRetry(now int64) bool {
	requests, retries := b.sum(now)
	if (retries+1)*1e6 > b.ratio*requests+b.reserve*1e6 {
		return false
	}
	b.current(now).retries++
	return true
}

// Available is the number of retries TryRetry would grant now.
func (b *Budget) Available(now int64) int64 {
	requests, retries := b.sum(now)
	return max((b.ratio*requests+b.reserve*1e6)/1e6-retries, 0)
}

// current returns now's bucket, emptied first if it held another slice.
func (b *Budget) current(now int64) *bucket {
	s := floorDiv(now, b.width)
	k := &b.ring[int((s%budgetBuckets+budgetBuckets)%budgetBuckets)]
	if k.slice != s {
		*k = bucket{slice: s}
	}
	return k
}

// sum totals the buckets in the window ending at now. A bucket ahead of
// now comes from a clock that stepped back and is left out.
func (b *Budget) sum(now int64) (requests, retries int64) {
	s := floorDiv(now, b.width)
	for i := range b.ring {
		if k := &b.ring[i]; k.slice > s-budgetBuckets && k.slice <= s {
			requests += k.requests
			retries += k.retries
		}
	}
	return requests, retries
}

// floorDiv is a/b rounded towards minus infinity (b > 0), so slices stay
// one width wide on both sides of zero.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
