package limit_test

import (
	"fmt"

	"github.com/apex-epoll/apex/limit"
)

// A loop's use of one server's limiter: acquire before sending, release
// with the outcome when the response ends.
func Example() {
	l := limit.New(limit.Config{MinLimit: 4, MaxLimit: 1000, InitialLimit: 20})
	now := int64(0) // the loop's monotonic clock, in ns

	sent := 0
	for l.Acquire() {
		sent++ // write the request upstream
	}
	fmt.Println("sent", sent, "in flight", l.Inflight())

	// The responses come back, 1 ms each.
	now += 1e6
	for range sent {
		l.Release(now, 1e6, true)
	}
	fmt.Println("in flight", l.Inflight(), "limit", l.Limit())
	// Output:
	// sent 20 in flight 20
	// in flight 0 limit 20
}
