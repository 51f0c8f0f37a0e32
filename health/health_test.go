package health

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"
)

const (
	ms  = int64(time.Millisecond)
	sec = int64(time.Second)
)

// healthLog records a Health's transitions as "from>to".
type healthLog []string

func (l *healthLog) hook(h *Health) {
	h.OnChange = func(from, to Status) { *l = append(*l, from.String()+">"+to.String()) }
}

func (l *healthLog) expect(t *testing.T, want ...string) {
	t.Helper()
	if !slices.Equal(*l, want) {
		t.Fatalf("transitions %q, want %q", *l, want)
	}
}

func wantStatus(t *testing.T, h *Health, want Status) {
	t.Helper()
	if got := h.Status(); got != want {
		t.Fatalf("status %v, want %v", got, want)
	}
}

// fail sends one request through h and reports a transport failure.
func fail(t *testing.T, h *Health, now int64) {
	t.Helper()
	tk, ok := h.Allow(now)
	if !ok {
		t.Fatalf("Allow(%d) = false in %v", now, h.Status())
	}
	h.OnFailure(now, tk)
}

func succeed(t *testing.T, h *Health, now int64) {
	t.Helper()
	tk, ok := h.Allow(now)
	if !ok {
		t.Fatalf("Allow(%d) = false in %v", now, h.Status())
	}
	h.OnSuccess(now, tk)
}

func TestStatusString(t *testing.T) {
	for s, want := range map[Status]string{Up: "up", Down: "down", Probing: "probing", 9: "unknown"} {
		if s.String() != want {
			t.Errorf("%d: %q, want %q", s, s.String(), want)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	h := NewHealth(Config{})
	want := Config{Rise: 2, Fall: 3, CoolDown: time.Second, MaxCoolDown: 30 * time.Second}
	if h.cfg != want {
		t.Fatalf("defaults %+v, want %+v", h.cfg, want)
	}
	h = NewHealth(Config{CoolDown: time.Minute, MaxCoolDown: time.Second})
	if h.cfg.MaxCoolDown != time.Minute {
		t.Fatalf("MaxCoolDown below CoolDown kept: %v", h.cfg.MaxCoolDown)
	}
	if h.Status() != Up || h.Since() != 0 {
		t.Fatalf("new server %v since %d, want up since 0", h.Status(), h.Since())
	}
}

// Fall and Rise are exact: up stays up through Fall-1 failed checks, and
// down stays down through Rise-1 good ones.
func TestFallRiseExact(t *testing.T) {
	var log healthLog
	h := NewHealth(Config{Active: true})
	log.hook(&h)
	h.CheckFailed(1 * sec)
	h.CheckFailed(2 * sec)
	wantStatus(t, &h, Up)
	h.CheckFailed(3 * sec)
	wantStatus(t, &h, Down)
	if h.Since() != 3*sec {
		t.Fatalf("down since %d", h.Since())
	}
	if _, ok := h.Allow(3 * sec); ok {
		t.Fatal("down server allowed")
	}
	h.CheckOK(4 * sec)
	wantStatus(t, &h, Down)
	h.CheckOK(5 * sec)
	wantStatus(t, &h, Up)
	log.expect(t, "up>down", "down>up")
	if _, ok := h.Allow(5 * sec); !ok {
		t.Fatal("up server refused")
	}
}

func TestFallRiseCustom(t *testing.T) {
	h := NewHealth(Config{Active: true, Rise: 1, Fall: 5})
	for i := 0; i < 4; i++ {
		h.CheckFailed(0)
	}
	wantStatus(t, &h, Up)
	h.CheckFailed(0)
	wantStatus(t, &h, Down)
	h.CheckOK(0)
	wantStatus(t, &h, Up)
}

// A good check breaks a run of failed checks, and a failed check a run of
// good ones.
func TestChecksConsecutive(t *testing.T) {
	h := NewHealth(Config{Active: true})
	h.CheckFailed(0)
	h.CheckFailed(0)
	h.CheckOK(0)
	h.CheckFailed(0)
	h.CheckFailed(0)
	wantStatus(t, &h, Up)
	h.CheckFailed(0)
	wantStatus(t, &h, Down)
	h.CheckOK(0)
	h.CheckFailed(0)
	h.CheckOK(0)
	wantStatus(t, &h, Down)
	h.CheckOK(0)
	wantStatus(t, &h, Up)
}

func TestPassiveFailuresMarkDown(t *testing.T) {
	var log healthLog
	h := NewHealth(Config{Active: true})
	log.hook(&h)
	fail(t, &h, 0)
	fail(t, &h, 0)
	wantStatus(t, &h, Up)
	fail(t, &h, ms)
	wantStatus(t, &h, Down)
	log.expect(t, "up>down")
	// With active checks, only the checks bring it back: no probe, ever.
	if _, ok := h.Allow(time.Hour.Nanoseconds()); ok {
		t.Fatal("actively checked server probed with a real request")
	}
	wantStatus(t, &h, Down)
	h.CheckOK(2 * sec)
	h.CheckOK(3 * sec)
	wantStatus(t, &h, Up)
	log.expect(t, "up>down", "down>up")
}

func TestPassiveSuccessResets(t *testing.T) {
	h := NewHealth(Config{})
	fail(t, &h, 0)
	fail(t, &h, 0)
	succeed(t, &h, 0)
	fail(t, &h, 0)
	fail(t, &h, 0)
	wantStatus(t, &h, Up)
	fail(t, &h, 0)
	wantStatus(t, &h, Down)
}

// Checks and requests are counted apart: a good request does not excuse a
// failing check, nor a good check a failing request.
func TestSourcesCountedApart(t *testing.T) {
	h := NewHealth(Config{Active: true})
	h.CheckFailed(0)
	h.CheckFailed(0)
	fail(t, &h, 0)
	fail(t, &h, 0)
	wantStatus(t, &h, Up) // two of each, neither reached Fall
	succeed(t, &h, 0)     // resets the request count only
	h.CheckFailed(0)
	wantStatus(t, &h, Down)

	h = NewHealth(Config{Active: true})
	fail(t, &h, 0)
	fail(t, &h, 0)
	h.CheckOK(0) // resets the check count only
	fail(t, &h, 0)
	wantStatus(t, &h, Down)
}

// Without active checks a down server waits CoolDown, then lets one real
// request through; each failed probe doubles the wait up to MaxCoolDown,
// and a good probe brings it up and resets the wait.
func TestPassiveRecovery(t *testing.T) {
	var log healthLog
	h := NewHealth(Config{})
	log.hook(&h)
	for i := 0; i < 3; i++ {
		fail(t, &h, 0)
	}
	wantStatus(t, &h, Down)
	if _, ok := h.Allow(sec - 1); ok {
		t.Fatal("probe before the cool-down")
	}
	wantStatus(t, &h, Down)

	now := int64(0)
	for i, wait := range []int64{1, 2, 4, 8, 16, 30, 30} {
		probeAt := now + wait*sec
		if _, ok := h.Allow(probeAt - 1); ok {
			t.Fatalf("probe %d: allowed 1ns before %ds", i, wait)
		}
		tk, ok := h.Allow(probeAt)
		if !ok {
			t.Fatalf("probe %d: refused after %ds", i, wait)
		}
		wantStatus(t, &h, Probing)
		if _, ok := h.Allow(probeAt); ok {
			t.Fatalf("probe %d: a second request admitted while probing", i)
		}
		now = probeAt + 10*ms
		h.OnFailure(now, tk)
		wantStatus(t, &h, Down)
	}
	probeAt := now + 30*sec
	tk, ok := h.Allow(probeAt)
	if !ok {
		t.Fatal("last probe refused")
	}
	h.OnSuccess(probeAt+ms, tk)
	wantStatus(t, &h, Up)
	if h.Since() != probeAt+ms {
		t.Fatalf("up since %d, want %d", h.Since(), probeAt+ms)
	}

	// Down again: the cool-down starts over at one second.
	now = probeAt + sec
	for i := 0; i < 3; i++ {
		fail(t, &h, now)
	}
	if _, ok := h.Allow(now + sec); !ok {
		t.Fatal("cool-down not reset by recovery")
	}
	want := []string{"up>down"}
	for range 7 {
		want = append(want, "down>probing", "probing>down")
	}
	want = append(want, "down>probing", "probing>up", "up>down", "down>probing")
	log.expect(t, want...)
}

// Results of requests admitted before the last transition are ignored: a
// late success cannot bring back a server marked down after the request
// left, and only the probe's own result settles a probe.
func TestStaleResultsIgnored(t *testing.T) {
	h := NewHealth(Config{})
	early, _ := h.Allow(0)
	late, _ := h.Allow(0)
	for i := 0; i < 3; i++ {
		fail(t, &h, 0)
	}
	h.OnSuccess(ms, early)
	wantStatus(t, &h, Down)

	probe, ok := h.Allow(sec)
	if !ok {
		t.Fatal("probe refused")
	}
	h.OnFailure(sec+ms, late) // timed out long after it was sent
	wantStatus(t, &h, Probing)
	h.OnSuccess(sec+ms, Ticket{}) // the zero ticket matches nothing
	wantStatus(t, &h, Probing)
	h.OnSuccess(sec+2*ms, probe)
	wantStatus(t, &h, Up)
	// The probe's ticket is spent: a second result with it is ignored.
	h.OnFailure(sec+3*ms, probe)
	h.OnFailure(sec+3*ms, probe)
	h.OnFailure(sec+3*ms, probe)
	wantStatus(t, &h, Up)
}

func TestProbeCancel(t *testing.T) {
	h := NewHealth(Config{StartDown: true})
	tk, ok := h.Allow(0)
	if !ok {
		t.Fatal("first probe of a server that starts down refused")
	}
	if _, ok := h.Allow(0); ok {
		t.Fatal("two probes")
	}
	h.Cancel(tk)
	wantStatus(t, &h, Probing)
	if _, ok := h.Allow(0); !ok {
		t.Fatal("cancelled probe did not free the slot")
	}
	// Cancel while up is harmless.
	h = NewHealth(Config{})
	tk, _ = h.Allow(0)
	h.Cancel(tk)
	wantStatus(t, &h, Up)
}

func TestStartDown(t *testing.T) {
	h := NewHealth(Config{Active: true, StartDown: true})
	wantStatus(t, &h, Down)
	if _, ok := h.Allow(0); ok {
		t.Fatal("server starting down with active checks allowed")
	}
	h.CheckOK(0)
	h.CheckOK(0)
	wantStatus(t, &h, Up)

	h = NewHealth(Config{StartDown: true})
	succeed(t, &h, math.MinInt64+1)
	wantStatus(t, &h, Up)
}

// Checks fed to a server without Config.Active still count, including good
// checks made while it waits, down and then probing.
func TestChecksWithoutActive(t *testing.T) {
	h := NewHealth(Config{})
	for i := 0; i < 3; i++ {
		fail(t, &h, 0)
	}
	h.CheckOK(sec / 2)
	if _, ok := h.Allow(sec); !ok { // Down→Probing keeps the good check
		t.Fatal("probe refused")
	}
	h.CheckOK(sec + 1)
	wantStatus(t, &h, Up)
}

func TestProbeDeadlineSaturates(t *testing.T) {
	h := NewHealth(Config{})
	end := int64(math.MaxInt64 - 10)
	for i := 0; i < 3; i++ {
		fail(t, &h, end)
	}
	if h.probeAt != math.MaxInt64 {
		t.Fatalf("probeAt %d, want saturated", h.probeAt)
	}
}

func TestGenerationSkipsZero(t *testing.T) {
	h := NewHealth(Config{Active: true})
	h.gen = math.MaxUint32
	h.CheckFailed(0)
	h.CheckFailed(0)
	h.CheckFailed(0)
	if h.gen != 1 {
		t.Fatalf("gen %d after wrap, want 1", h.gen)
	}
	h.OnFailure(0, Ticket{})
	h.CheckOK(0)
	h.CheckOK(0)
	h.OnFailure(0, Ticket{})
	h.OnFailure(0, Ticket{})
	h.OnFailure(0, Ticket{})
	wantStatus(t, &h, Up)
}

func ExampleHealth() {
	h := NewHealth(Config{}) // no active checks: probe with real traffic
	h.OnChange = func(from, to Status) { fmt.Println(from, "->", to) }
	for i := 0; i < 3; i++ {
		t, _ := h.Allow(0)
		h.OnFailure(0, t) // connection refused
	}
	_, ok := h.Allow(int64(500 * time.Millisecond))
	fmt.Println("allowed during cool-down:", ok)
	probe, ok := h.Allow(int64(time.Second))
	fmt.Println("probe allowed:", ok)
	h.OnSuccess(int64(time.Second), probe)
	// Output:
	// up -> down
	// allowed during cool-down: false
	// down -> probing
	// probe allowed: true
	// probing -> up
}
