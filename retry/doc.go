// Package retry holds the rules for sending a failed request again: Safe
// says whether the protocol allows it, Budget whether the server can afford
// it. It is pure logic: no I/O, no goroutines, no clock.
//
// A retry needs both. Safe alone would let every failing request double
// its load on servers that are already failing (a retry storm); Budget
// alone would replay requests that may already have taken effect.
//
// A Budget belongs to one goroutine, in Apex the event loop that owns the
// per-backend pool, and is not safe for concurrent use. Time is passed in
// by the caller as int64 nanoseconds (the loop's Now), so the logic is
// deterministic under test. Safe and every Budget method allocate nothing.
package retry
