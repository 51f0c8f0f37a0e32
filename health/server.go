package health

// Outcome is how a request to a server ended, as far as the server's
// judgement is concerned.
type Outcome uint8

const (
	// Success: a response that is not a server error.
	Success Outcome = iota
	// ServerError: a response the caller counts against the server
	// (typically 5xx). The server is reachable, so Health takes it as a
	// success; the Breaker takes it as a failure.
	ServerError
	// TransportError: no response: connect refused or timed out,
	// connection reset, or a timeout before the response head. A failure
	// for both Health and the Breaker.
	TransportError
)

// Server is the whole judgement of one upstream server: a request may go
// to it when it is up and its breaker allows.
//
// Invariant: owned by one goroutine (not safe for concurrent use); Health
// and Breaker keep their own invariants, and a Ticket from Server.Allow
// holds an admission from both or from neither.
type Server struct {
	Health  Health
	Breaker Breaker
}

// NewServer returns a server that starts as NewHealth(h) and NewBreaker(b)
// do. Set Health.OnChange and Breaker.OnChange on the result to hear of
// transitions.
func NewServer(h Config, b BreakerConfig) Server {
	return Server{Health: NewHealth(h), Breaker: NewBreaker(b)}
}

// Allow reports whether a request may go to the server now, and admits it
// with both Health and Breaker. Health is asked first without taking its
// probe, so that a breaker refusal cannot strand the probe, nor a health
// refusal a half-open trial.
func (s *Server) Allow(now int64) (Ticket, bool) {
	if !s.Health.ready(now) {
		return Ticket{}, false
	}
	t, ok := s.Breaker.Allow(now)
	if !ok {
		return Ticket{}, false
	}
	t.health = s.Health.admit().health
	return t, true
}

// Observe records the outcome of the request admitted with t.
func (s *Server) Observe(now int64, t Ticket, o Outcome) {
	switch o {
	case Success:
		s.Health.OnSuccess(now, t)
		s.Breaker.OnSuccess(now, t)
	case ServerError:
		s.Health.OnSuccess(now, t)
		s.Breaker.OnFailure(now, t)
	default: // TransportError
		s.Health.OnFailure(now, t)
		s.Breaker.OnFailure(now, t)
	}
}

// Cancel gives back the admission of t (see Health.Cancel, Breaker.Cancel).
func (s *Server) Cancel(t Ticket) {
	s.Health.Cancel(t)
	s.Breaker.Cancel(t)
}
