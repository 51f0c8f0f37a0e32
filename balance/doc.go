// Package balance chooses one of the servers of a backend for a request.
// It is pure logic: no I/O, no clock, no goroutines, no locks. Time comes
// in as int64 nanoseconds of a monotonic clock, so callers (and tests)
// decide what "now" is.
//
// # Ownership
//
// A Balancer is owned by one goroutine: in Apex, the event loop whose
// per-backend pool it serves. It is not safe for concurrent use. Each loop
// builds or clones its own; Clone shares the read-only hash ring, which is
// never written after New.
//
// # Contract
//
// The caller tells the Balancer what it knows and the Balancer only picks:
//
//	SetAvailable(i, ok)  false while server i is down, its circuit is open
//	                     or it is at its concurrency limit
//	Start(i), Done(i)    a request went to i / finished on i
//	Observe(i, now, rtt) a response's latency, for p2c
//	Pick(now, key)       the server for the next request, or -1
//
// Pick never returns an unavailable server, and returns -1 only when no
// server is available. Pick, Start, Done, Observe and SetAvailable do not
// allocate.
//
// # Policies
//
// P2C (power of two choices, the default) draws two distinct available
// servers uniformly at random (a wyrand generator owned by the Balancer,
// seeded by the caller) and takes the one with the lower score
// (outstanding+1) × latency / weight: in-flight requests react at once to
// a server that slows down, the latency EWMA remembers it. The EWMA gives
// each sample the larger of a time weight (half-life 10 s) and 1/16, and
// an EWMA that is not fed decays toward the backend-wide one, so a server
// once avoided for being slow is tried again; servers without samples are
// priced at the backend-wide EWMA (details at the constants in p2c.go).
//
// RoundRobin is nginx's smooth weighted round robin: each server receives
// its weight's share of picks, interleaved (weights 5,1,1 give a a b a c a
// a, not a a a a a b c), and unavailable servers are skipped without
// disturbing the others' order.
//
// Hash maps a caller-supplied key hash onto a consistent-hash ring with
// points in proportion to weight. The ring depends only on server names
// and weights, so every loop and every process builds the same one. When a
// key's server is unavailable the key walks clockwise to the next
// available server's point, so only that server's keys move. Sum64 and
// Sum64String hash header, cookie or address bytes for it.
package balance
