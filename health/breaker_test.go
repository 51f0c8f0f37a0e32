package health

import (
	"math"
	"slices"
	"testing"
	"time"
)

// breakerLog records a Breaker's transitions as "from>to".
type breakerLog []string

func (l *breakerLog) hook(b *Breaker) {
	b.OnChange = func(from, to State) { *l = append(*l, from.String()+">"+to.String()) }
}

func (l *breakerLog) expect(t *testing.T, want ...string) {
	t.Helper()
	if !slices.Equal(*l, want) {
		t.Fatalf("transitions %q, want %q", *l, want)
	}
}

func wantState(t *testing.T, b *Breaker, want State) {
	t.Helper()
	if got := b.State(); got != want {
		t.Fatalf("state %v, want %v", got, want)
	}
}

// result sends one request through b and reports its outcome.
func result(t *testing.T, b *Breaker, now int64, ok bool) {
	t.Helper()
	tk, allowed := b.Allow(now)
	if !allowed {
		t.Fatalf("Allow(%d) = false in %v", now, b.State())
	}
	if ok {
		b.OnSuccess(now, tk)
	} else {
		b.OnFailure(now, tk)
	}
}

// ratioOnly is a breaker that opens on the ratio alone.
var ratioOnly = BreakerConfig{ConsecutiveFailures: -1}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{Closed: "closed", Open: "open", HalfOpen: "half_open", 7: "unknown"} {
		if s.String() != want {
			t.Errorf("%d: %q, want %q", s, s.String(), want)
		}
	}
}

func TestBreakerDefaults(t *testing.T) {
	b := NewBreaker(BreakerConfig{})
	want := BreakerConfig{ConsecutiveFailures: 5, FailureRatio: 0.5, Window: 10 * time.Second,
		MinRequests: 20, CoolDown: 5 * time.Second, HalfOpenTrials: 3}
	if b.cfg != want {
		t.Fatalf("defaults %+v, want %+v", b.cfg, want)
	}
	if b.ratio != 500000 || b.width != sec {
		t.Fatalf("ratio %d width %d", b.ratio, b.width)
	}
	wantState(t, &b, Closed)
	if b := NewBreaker(BreakerConfig{Window: 5}); b.width != 1 {
		t.Errorf("5ns window: bucket width %d, want 1", b.width)
	}
	for _, r := range []float64{-1, 1, 1.5} {
		if b := NewBreaker(BreakerConfig{FailureRatio: r}); b.ratio != 0 {
			t.Errorf("FailureRatio %v: rule on (%d)", r, b.ratio)
		}
	}
}

func TestBreakerOpensOnConsecutiveFailures(t *testing.T) {
	var log breakerLog
	b := NewBreaker(BreakerConfig{})
	log.hook(&b)
	for i := 0; i < 4; i++ {
		result(t, &b, 0, false)
	}
	wantState(t, &b, Closed)
	result(t, &b, sec, false)
	wantState(t, &b, Open)
	if b.Since() != sec {
		t.Fatalf("open since %d", b.Since())
	}
	if _, ok := b.Allow(sec); ok {
		t.Fatal("open breaker allowed a request")
	}
	log.expect(t, "closed>open")
}

func TestBreakerSuccessResetsConsecutive(t *testing.T) {
	b := NewBreaker(BreakerConfig{})
	for i := 0; i < 4; i++ {
		result(t, &b, 0, false)
	}
	result(t, &b, 0, true)
	for i := 0; i < 4; i++ {
		result(t, &b, 0, false)
	}
	wantState(t, &b, Closed) // 8 of 9 failed, but the window holds fewer than 20
	result(t, &b, 0, false)
	wantState(t, &b, Open)
}

func TestBreakerConsecutiveDisabled(t *testing.T) {
	b := NewBreaker(ratioOnly)
	for i := 0; i < 19; i++ {
		result(t, &b, 0, false)
	}
	wantState(t, &b, Closed)
}

// The ratio opens the breaker only once the window holds MinRequests
// results, and only when failures exceed the ratio.
func TestBreakerRatioNeedsMinRequests(t *testing.T) {
	b := NewBreaker(ratioOnly)
	// 19 results, 10 failed (53%): above the ratio, below MinRequests.
	for i := 0; i < 19; i++ {
		result(t, &b, 0, i%2 == 1)
	}
	wantState(t, &b, Closed)
	result(t, &b, 0, false) // 20 results, 11 failed: 55% > 50%
	wantState(t, &b, Open)
}

func TestBreakerRatioNotBelow(t *testing.T) {
	b := NewBreaker(ratioOnly)
	// Exactly 50% does not exceed 50%, however many results.
	for i := 0; i < 1000; i++ {
		result(t, &b, int64(i)*ms, i%2 == 0)
	}
	wantState(t, &b, Closed)
	// 40% with MinRequests long reached.
	b = NewBreaker(ratioOnly)
	for i := 0; i < 1000; i++ {
		result(t, &b, int64(i)*ms, i%5 >= 2)
	}
	wantState(t, &b, Closed)
}

// The ratio is exact to the millionth: 29 failures of 100 do not exceed
// 0.29, which float64 arithmetic would get wrong (0.29*100 < 29).
func TestBreakerRatioExact(t *testing.T) {
	b := NewBreaker(BreakerConfig{ConsecutiveFailures: -1, FailureRatio: 0.29, MinRequests: 100})
	for i := 0; i < 100; i++ {
		result(t, &b, 0, i < 71) // the 29 failures last: 29 of 100 at the check
	}
	wantState(t, &b, Closed)
	result(t, &b, 0, false) // 30 of 101
	wantState(t, &b, Open)
}

// Old results leave the window one slice (Window/10) at a time.
func TestBreakerWindowSlides(t *testing.T) {
	run := func(last int64) State {
		b := NewBreaker(ratioOnly)
		for i := 0; i < 10; i++ {
			result(t, &b, 0, false) // slice 0
		}
		for i := 0; i < 9; i++ {
			result(t, &b, 5*sec, true) // slice 5
		}
		result(t, &b, last, false)
		return b.State()
	}
	// At 9.999 s slice 0 is still in: 11 failures of 20.
	if s := run(10*sec - 1); s != Open {
		t.Fatalf("within the window: %v, want open", s)
	}
	// At 10 s slice 0 has aged out: 1 failure of 10, below MinRequests.
	if s := run(10 * sec); s != Closed {
		t.Fatalf("after the window: %v, want closed", s)
	}
	// A slot reused a whole turn later starts from zero.
	b := NewBreaker(ratioOnly)
	for i := 0; i < 19; i++ {
		result(t, &b, 0, false)
	}
	for i := 0; i < 19; i++ {
		result(t, &b, 20*sec, true) // same slot as slice 0, two turns on
	}
	result(t, &b, 20*sec, false)
	wantState(t, &b, Closed) // 1 of 20 failed
}

// Slices are one width wide on both sides of zero, and a clock that steps
// back neither panics nor counts results from its "future".
func TestBreakerWindowOddClocks(t *testing.T) {
	b := NewBreaker(ratioOnly)
	for i := 0; i < 10; i++ {
		result(t, &b, -sec/2, false) // slice -1
	}
	for i := 0; i < 9; i++ {
		result(t, &b, sec/2, true) // slice 0
	}
	result(t, &b, 9*sec-1, false) // slice 8: -1 still in
	wantState(t, &b, Open)

	b = NewBreaker(ratioOnly)
	for i := 0; i < 19; i++ {
		result(t, &b, 101*sec, false)
	}
	for i := 0; i < 19; i++ {
		result(t, &b, 50*sec, true) // stepped back
	}
	// 101 s is ahead of 50 s and left out: 1 of 20, not 20 of 39.
	result(t, &b, 50*sec, false)
	wantState(t, &b, Closed)
	result(t, &b, math.MinInt64, false)
	result(t, &b, math.MaxInt64, false)
}

func openBreaker(t *testing.T, b *Breaker, now int64) {
	t.Helper()
	for b.State() == Closed {
		result(t, b, now, false)
	}
	wantState(t, b, Open)
}

// Half-open comes CoolDown after opening and admits exactly
// HalfOpenTrials requests.
func TestBreakerHalfOpenAdmitsTrials(t *testing.T) {
	for _, trials := range []int{1, 3, 7} {
		b := NewBreaker(BreakerConfig{HalfOpenTrials: trials})
		openBreaker(t, &b, 0)
		if _, ok := b.Allow(5*sec - 1); ok {
			t.Fatal("allowed before the cool-down")
		}
		wantState(t, &b, Open)
		admitted := 0
		for i := 0; i < 20; i++ {
			if _, ok := b.Allow(5*sec + int64(i)*ms); ok {
				admitted++
			}
		}
		wantState(t, &b, HalfOpen)
		if admitted != trials {
			t.Fatalf("half-open admitted %d, want %d", admitted, trials)
		}
	}
}

func TestBreakerClosesAfterTrials(t *testing.T) {
	var log breakerLog
	b := NewBreaker(BreakerConfig{})
	log.hook(&b)
	openBreaker(t, &b, 0)
	var tks []Ticket
	for i := 0; i < 3; i++ {
		tk, ok := b.Allow(5 * sec)
		if !ok {
			t.Fatal("trial refused")
		}
		tks = append(tks, tk)
	}
	b.OnSuccess(5*sec+1, tks[0])
	b.OnSuccess(5*sec+2, tks[1])
	wantState(t, &b, HalfOpen)
	b.OnSuccess(5*sec+3, tks[2])
	wantState(t, &b, Closed)
	log.expect(t, "closed>open", "open>half_open", "half_open>closed")
	// Closed afresh: the failures that opened it are forgotten.
	for i := 0; i < 4; i++ {
		result(t, &b, 6*sec, false)
	}
	wantState(t, &b, Closed)
}

func TestBreakerReopensOnTrialFailure(t *testing.T) {
	var log breakerLog
	b := NewBreaker(BreakerConfig{})
	log.hook(&b)
	openBreaker(t, &b, 0)
	first, _ := b.Allow(5 * sec)
	second, _ := b.Allow(5 * sec)
	b.OnSuccess(5*sec+ms, first)
	b.OnFailure(6*sec, second)
	wantState(t, &b, Open)
	if b.Since() != 6*sec {
		t.Fatalf("reopened at %d", b.Since())
	}
	// The cool-down restarts from the trial failure.
	if _, ok := b.Allow(11*sec - 1); ok {
		t.Fatal("allowed before the restarted cool-down ended")
	}
	if _, ok := b.Allow(11 * sec); !ok {
		t.Fatal("refused after the restarted cool-down")
	}
	log.expect(t, "closed>open", "open>half_open", "half_open>open", "open>half_open")
}

// The whole cycle, every transition in order.
func TestBreakerTransitionsInOrder(t *testing.T) {
	var log breakerLog
	b := NewBreaker(BreakerConfig{HalfOpenTrials: 2})
	log.hook(&b)
	openBreaker(t, &b, 0) // consecutive
	result(t, &b, 5*sec, false)
	result(t, &b, 10*sec, true)
	result(t, &b, 10*sec, true)
	// Now by ratio, in the fresh window: 10 of 20 is not above 50%, the
	// 21st result (a failure, the second in a row) makes it 11 of 21.
	for i := 0; i < 20; i++ {
		result(t, &b, 11*sec, i%2 == 0)
	}
	wantState(t, &b, Closed)
	result(t, &b, 11*sec, false)
	wantState(t, &b, Open)
	result(t, &b, 16*sec, true)
	result(t, &b, 16*sec, true)
	log.expect(t,
		"closed>open", "open>half_open", "half_open>open",
		"open>half_open", "half_open>closed",
		"closed>open", "open>half_open", "half_open>closed")
}

// A result from a request admitted before the last transition is not a
// trial's: a timeout that started while closed does not reopen a half-open
// breaker, nor does a late success help close it.
func TestBreakerStaleResultsIgnored(t *testing.T) {
	b := NewBreaker(BreakerConfig{HalfOpenTrials: 1})
	old1, _ := b.Allow(0)
	old2, _ := b.Allow(0)
	openBreaker(t, &b, 0)
	b.OnFailure(sec, old1) // ignored while open
	trial, ok := b.Allow(5 * sec)
	if !ok {
		t.Fatal("trial refused")
	}
	b.OnFailure(30*sec, old1)
	b.OnSuccess(30*sec, old2)
	b.OnFailure(30*sec, Ticket{})
	wantState(t, &b, HalfOpen)
	if _, ok := b.Allow(30 * sec); ok {
		t.Fatal("stale result freed a trial slot")
	}
	b.OnSuccess(30*sec, trial)
	wantState(t, &b, Closed)
}

func TestBreakerGenerationSkipsZero(t *testing.T) {
	b := NewBreaker(BreakerConfig{})
	b.gen = math.MaxUint32
	openBreaker(t, &b, 0)
	if b.gen != 1 {
		t.Fatalf("gen %d after wrap, want 1", b.gen)
	}
}

func TestBreakerCancelTrial(t *testing.T) {
	b := NewBreaker(BreakerConfig{HalfOpenTrials: 1})
	openBreaker(t, &b, 0)
	tk, _ := b.Allow(5 * sec)
	if _, ok := b.Allow(5 * sec); ok {
		t.Fatal("second trial admitted")
	}
	b.Cancel(tk)
	wantState(t, &b, HalfOpen)
	tk, ok := b.Allow(5 * sec)
	if !ok {
		t.Fatal("cancelled trial's slot not given back")
	}
	b.Cancel(Ticket{}) // not this generation's: no slot given back
	if _, ok := b.Allow(5 * sec); ok {
		t.Fatal("zero ticket freed a slot")
	}
	b.OnSuccess(5*sec, tk)
	wantState(t, &b, Closed)
	tk, _ = b.Allow(6 * sec)
	b.Cancel(tk) // closed: nothing to give back
	wantState(t, &b, Closed)
}
