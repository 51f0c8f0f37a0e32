package balance_test

import (
	"fmt"

	"github.com/apex-epoll/apex/balance"
)

// A loop's view of one backend: pick, send, observe, done.
func Example() {
	b := balance.New(balance.P2C, []balance.Server{
		{Name: "10.0.0.1:8080", Weight: 1},
		{Name: "10.0.0.2:8080", Weight: 1},
	}, 1)
	now := int64(0) // the loop's monotonic clock, in ns

	i := b.Pick(now, 0)
	b.Start(i)
	// ... the response arrives 2 ms later ...
	now += 2e6
	b.Observe(i, now, 2e6)
	b.Done(i)

	// Server 0 goes down: it is never picked while server 1 is up.
	b.SetAvailable(0, false)
	fmt.Println(b.Pick(now, 0))
	b.SetAvailable(1, false)
	fmt.Println(b.Pick(now, 0))
	// Output:
	// 1
	// -1
}

// Consistent hashing on a cookie: the same cookie value always reaches the
// same server while that server is available.
func Example_hash() {
	servers := []balance.Server{{Name: "a:80"}, {Name: "b:80"}, {Name: "c:80"}}
	b := balance.New(balance.Hash, servers, 0)
	key := balance.Sum64String("session-7f3c2a9e")
	first := b.Pick(0, key)
	fmt.Println(first == b.Pick(0, key))

	b.SetAvailable(first, false) // its keys walk on to the next server
	next := b.Pick(0, key)
	fmt.Println(next != first, next >= 0)
	// Output:
	// true
	// true true
}
