package retry

import (
	"fmt"
	"math"
	"testing"
	"time"
)

const sec = int64(time.Second)

// drain takes retries at now until refused and returns how many it got.
func drain(b *Budget, now int64) int {
	n := 0
	for b.TryRetry(now) {
		n++
		if n > 1e6 {
			panic("budget never ran out")
		}
	}
	return n
}

func requests(b *Budget, now int64, n int) {
	for i := 0; i < n; i++ {
		b.Request(now)
	}
}

func TestBudgetDefaults(t *testing.T) {
	b := NewBudget(Config{})
	if b.ratio != 200000 || b.reserve != 100 || b.width != sec {
		t.Fatalf("ratio %d reserve %d width %d", b.ratio, b.reserve, b.width)
	}
	if b := NewBudget(Config{Ratio: 3}); b.ratio != 1e6 {
		t.Fatalf("ratio above 1 kept: %d", b.ratio)
	}
	if b := NewBudget(Config{Window: 3}); b.width != 1 {
		t.Fatalf("tiny window: width %d", b.width)
	}
	if b := NewBudget(Config{MinPerSecond: math.MaxInt, Window: time.Hour}); b.reserve != maxReserve {
		t.Fatalf("reserve %d not capped", b.reserve)
	}
}

// 1000 requests at a ratio of 0.2 pay for 200 retries, plus the reserve of
// 10 a second over the 10 s window.
func TestBudgetRatio(t *testing.T) {
	cases := []struct {
		name string
		c    Config
		want int
	}{
		{"ratio and reserve", Config{Ratio: 0.2, MinPerSecond: 10}, 300},
		{"ratio only", Config{Ratio: 0.2, MinPerSecond: -1}, 200},
		{"reserve only", Config{Ratio: -1, MinPerSecond: 10}, 100},
		{"nothing", Config{Ratio: -1, MinPerSecond: -1}, 0},
		{"defaults", Config{}, 300},
		{"exact ratio", Config{Ratio: 0.29, MinPerSecond: -1}, 290},
		{"short window", Config{Ratio: 0.2, MinPerSecond: 10, Window: 2 * time.Second}, 220},
	}
	for _, c := range cases {
		b := NewBudget(c.c)
		for i := 0; i < 1000; i++ {
			b.Request(int64(i) * 1e6) // 1000 requests over 1 s
		}
		now := sec - 1
		if got := b.Available(now); got != int64(c.want) {
			t.Errorf("%s: Available %d, want %d", c.name, got, c.want)
		}
		if got := drain(&b, now); got != c.want {
			t.Errorf("%s: %d retries allowed, want %d", c.name, got, c.want)
		}
		if b.Available(now) != 0 {
			t.Errorf("%s: %d still available after draining", c.name, b.Available(now))
		}
	}
}

// Retries earn nothing: only original requests deposit.
func TestBudgetRetriesDoNotDeposit(t *testing.T) {
	b := NewBudget(Config{Ratio: 0.5, MinPerSecond: -1})
	requests(&b, 0, 10)
	if got := drain(&b, 0); got != 5 {
		t.Fatalf("%d retries, want 5", got)
	}
	// Low traffic: one request earns half a retry, two earn one.
	b.Request(0)
	if b.TryRetry(0) {
		t.Fatal("half a retry granted")
	}
	b.Request(0)
	if !b.TryRetry(0) {
		t.Fatal("a whole retry refused")
	}
}

// As the window slides, requests and retries leave it together, one slice
// (a second) at a time.
func TestBudgetWindowSlides(t *testing.T) {
	b := NewBudget(Config{Ratio: 0.2, MinPerSecond: 10}) // reserve 100
	requests(&b, 0, 500)
	if got := drain(&b, 0); got != 200 { // 100 earned + 100 reserve
		t.Fatalf("t=0: %d retries, want 200", got)
	}
	requests(&b, 5*sec, 500)
	if got := drain(&b, 5*sec); got != 100 { // the new requests' 100
		t.Fatalf("t=5s: %d retries, want 100", got)
	}
	if got := b.Available(10*sec - 1); got != 0 {
		t.Fatalf("t=10s-1: %d available, want 0 (all still in the window)", got)
	}
	// Slice 0 leaves: its 500 requests and 200 retries go; left are 500
	// requests (100) + reserve (100) - 100 retries.
	if got := b.Available(10 * sec); got != 100 {
		t.Fatalf("t=10s: %d available, want 100", got)
	}
	// Slice 5 leaves too: an empty window holds the reserve alone.
	if got := b.Available(15 * sec); got != 100 {
		t.Fatalf("t=15s: %d available, want 100", got)
	}
	if got := drain(&b, 15*sec); got != 100 {
		t.Fatalf("t=15s: %d retries, want 100", got)
	}
	// Long idle: a bucket reused a whole turn later starts from zero.
	if got := b.Available(1000 * sec); got != 100 {
		t.Fatalf("t=1000s: %d available, want 100", got)
	}
}

// A steady load earns a steady share: at 100 requests a second, every
// second can retry 20 on top of what the reserve has left.
func TestBudgetSteadyState(t *testing.T) {
	b := NewBudget(Config{Ratio: 0.2, MinPerSecond: -1})
	granted := 0
	for s := int64(0); s < 60; s++ {
		for i := int64(0); i < 100; i++ {
			now := s*sec + i*(sec/100)
			b.Request(now)
			if b.TryRetry(now) { // try to retry every request
				granted++
			}
		}
	}
	// 6000 requests over 60 s earn 1200.
	if granted != 1200 {
		t.Fatalf("%d retries granted, want 1200", granted)
	}
}

func TestBudgetOddClocks(t *testing.T) {
	b := NewBudget(Config{Ratio: 0.5, MinPerSecond: -1})
	requests(&b, -sec/2, 10) // slice -1
	requests(&b, sec/2, 10)  // slice 0
	if got := b.Available(9*sec - 1); got != 10 {
		t.Fatalf("across zero: %d available, want 10", got)
	}
	// A clock that steps back does not spend or count the "future".
	b = NewBudget(Config{Ratio: 0.5, MinPerSecond: -1})
	requests(&b, 101*sec, 100)
	if got := b.Available(50 * sec); got != 0 {
		t.Fatalf("stepped back: %d available, want 0", got)
	}
	requests(&b, math.MinInt64, 1)
	requests(&b, math.MaxInt64, 1)
	b.TryRetry(math.MinInt64)
	b.TryRetry(math.MaxInt64)
}

func ExampleBudget() {
	b := NewBudget(Config{Ratio: 0.2, MinPerSecond: 1, Window: 10 * time.Second})
	now := int64(0)
	for i := 0; i < 50; i++ {
		b.Request(now) // 50 requests earn 10 retries; the reserve adds 10
	}
	granted := 0
	for b.TryRetry(now) {
		granted++
	}
	fmt.Println("retries granted:", granted)
	now += int64(10 * time.Second) // the window has moved on
	fmt.Println("available later:", b.Available(now))
	// Output:
	// retries granted: 20
	// available later: 10
}
