// Package health keeps the judgement of one upstream server: whether it is
// up (Health, fed by active checks and by what real requests saw) and
// whether requests may be sent to it now (Breaker, a circuit breaker on its
// recent failures). Server puts the two together. It is pure logic: no I/O,
// no goroutines, no clock.
//
// # Ownership
//
// Every type here belongs to one goroutine, in Apex the event loop that owns
// the per-backend pool; none is safe for concurrent use, and none needs a
// lock. Time is passed in by the caller as int64 nanoseconds (the loop's
// Now), so the logic is deterministic under test; a clock that steps back
// only delays transitions, it never breaks an invariant. The methods the
// request path calls (Allow, OnSuccess, OnFailure, Cancel, Observe)
// allocate nothing.
//
// # Tickets
//
// Allow hands out a Ticket with each admission, and every result is
// reported with the ticket of the request it answers. A result whose ticket
// was issued before the last transition is ignored, so a request sent while
// the breaker was closed and timing out thirty seconds later, during
// half-open, cannot be taken for a trial, and a late success cannot bring
// back a server that was marked down after the request left. Every
// admission must be answered exactly once: by a result, or by Cancel when
// the request was never sent or its client went away (a result that says
// nothing about the server).
//
// # Transitions
//
// Health.OnChange and Breaker.OnChange, when set, are called synchronously
// on each transition, after the new state is in place; a nil callback costs
// one comparison.
package health
