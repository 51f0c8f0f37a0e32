package health

import (
	"fmt"
	"testing"
)

func observe(t *testing.T, s *Server, now int64, o Outcome) {
	t.Helper()
	tk, ok := s.Allow(now)
	if !ok {
		t.Fatalf("Allow(%d) = false (%v, %v)", now, s.Health.Status(), s.Breaker.State())
	}
	s.Observe(now, tk, o)
}

// A 5xx is an answer: it counts against the breaker, not against health.
func TestServerErrorOpensBreakerOnly(t *testing.T) {
	s := NewServer(Config{}, BreakerConfig{})
	for i := 0; i < 5; i++ {
		observe(t, &s, 0, ServerError)
	}
	if s.Health.Status() != Up || s.Breaker.State() != Open {
		t.Fatalf("%v, %v; want up, open", s.Health.Status(), s.Breaker.State())
	}
	if _, ok := s.Allow(0); ok {
		t.Fatal("allowed through an open breaker")
	}
}

// Transport failures count for both; health's Fall (3) is reached before
// the breaker's 5.
func TestServerTransportError(t *testing.T) {
	s := NewServer(Config{}, BreakerConfig{})
	for i := 0; i < 3; i++ {
		observe(t, &s, 0, TransportError)
	}
	if s.Health.Status() != Down || s.Breaker.State() != Closed {
		t.Fatalf("%v, %v; want down, closed", s.Health.Status(), s.Breaker.State())
	}
	if _, ok := s.Allow(0); ok {
		t.Fatal("allowed to a down server")
	}
	observe(t, &s, sec, Success) // the probe
	if s.Health.Status() != Up {
		t.Fatalf("%v after a good probe", s.Health.Status())
	}
}

// When health is probing and the breaker open, Allow takes neither the
// probe nor a trial slot; once both agree, one ticket answers both.
func TestServerProbeAndBreaker(t *testing.T) {
	var hl healthLog
	var bl breakerLog
	s := NewServer(Config{}, BreakerConfig{ConsecutiveFailures: 3, HalfOpenTrials: 1})
	hl.hook(&s.Health)
	bl.hook(&s.Breaker)
	for i := 0; i < 3; i++ {
		observe(t, &s, 0, TransportError)
	}
	// Health would probe at 1 s; the breaker stays open until 5 s.
	for now := sec; now < 5*sec; now += sec {
		if _, ok := s.Allow(now); ok {
			t.Fatalf("allowed at %d with the breaker open", now)
		}
	}
	if s.Health.probeOut {
		t.Fatal("breaker refusal stranded the probe")
	}
	tk, ok := s.Allow(5 * sec)
	if !ok {
		t.Fatal("refused once both agree")
	}
	if _, ok := s.Allow(5 * sec); ok {
		t.Fatal("second request while probing")
	}
	s.Observe(5*sec+ms, tk, Success)
	hl.expect(t, "up>down", "down>probing", "probing>up")
	bl.expect(t, "closed>open", "open>half_open", "half_open>closed")
}

// A health refusal does not spend a half-open trial.
func TestServerHealthRefusalKeepsTrial(t *testing.T) {
	s := NewServer(Config{Active: true}, BreakerConfig{ConsecutiveFailures: 1, HalfOpenTrials: 1})
	observe(t, &s, 0, ServerError) // opens the breaker
	s.Health.CheckFailed(sec)
	s.Health.CheckFailed(sec)
	s.Health.CheckFailed(sec)
	if _, ok := s.Allow(6 * sec); ok {
		t.Fatal("allowed to a down server")
	}
	if s.Breaker.trials != 0 {
		t.Fatal("health refusal took a trial slot")
	}
	s.Health.CheckOK(7 * sec)
	s.Health.CheckOK(7 * sec)
	observe(t, &s, 8*sec, Success)
	if s.Breaker.State() != Closed {
		t.Fatalf("breaker %v, want closed", s.Breaker.State())
	}
}

func TestServerCancel(t *testing.T) {
	s := NewServer(Config{StartDown: true}, BreakerConfig{})
	tk, ok := s.Allow(0)
	if !ok {
		t.Fatal("probe refused")
	}
	s.Cancel(tk)
	if _, ok := s.Allow(0); !ok {
		t.Fatal("cancel did not give back the probe")
	}
}

func ExampleServer() {
	s := NewServer(Config{}, BreakerConfig{ConsecutiveFailures: 2, HalfOpenTrials: 1})
	s.Breaker.OnChange = func(from, to State) { fmt.Println("breaker:", from, "->", to) }
	now := int64(0)
	for i := 0; i < 2; i++ {
		t, _ := s.Allow(now)
		s.Observe(now, t, ServerError) // a 502 from the upstream
	}
	_, ok := s.Allow(now)
	fmt.Println("allowed while open:", ok, "health:", s.Health.Status())
	now += int64(DefaultBreakerCoolDown)
	t, ok := s.Allow(now)
	fmt.Println("trial allowed:", ok)
	s.Observe(now, t, Success)
	// Output:
	// breaker: closed -> open
	// allowed while open: false health: up
	// breaker: open -> half_open
	// trial allowed: true
	// breaker: half_open -> closed
}
