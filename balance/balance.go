package balance

import (
	"fmt"

	"github.com/apex-epoll/apex/cacheline"
)

// Policy is how a Balancer picks a server.
type Policy uint8

const (
	// P2C is the power of two choices over outstanding requests and
	// latency: the config name "p2c".
	P2C Policy = iota
	// RoundRobin is smooth weighted round robin: "round_robin".
	RoundRobin
	// Hash is consistent hashing on a caller-supplied key: "hash".
	Hash
)

var policyNames = [...]string{P2C: "p2c", RoundRobin: "round_robin", Hash: "hash"}

// String is the config name of p.
func (p Policy) String() string {
	if int(p) < len(policyNames) {
		return policyNames[p]
	}
	return fmt.Sprintf("Policy(%d)", uint8(p))
}

// ParsePolicy maps a config name ("p2c", "round_robin", "hash") to its
// Policy; "" is P2C, the default.
func ParsePolicy(name string) (Policy, error) {
	if name == "" {
		return P2C, nil
	}
	for p, n := range policyNames {
		if n == name {
			return Policy(p), nil
		}
	}
	return 0, fmt.Errorf("balance: unknown policy %q (want p2c, round_robin or hash)", name)
}

// Server describes one server of a backend to New. Its index in the slice
// given to New is the index Pick returns and the other methods take.
type Server struct {
	// Name places the server's points on the hash ring, so it must be
	// stable across restarts and equal in every loop: the "host:port" of
	// the config. Only Hash uses it. Zero ("") is allowed but makes servers
	// with equal names share ring positions.
	Name string
	// Weight is the server's relative share of traffic, 1..1000 in the
	// config. Zero or negative means 1.
	Weight int
}

// server is the per-server state of a Balancer.
//
// Invariant: weight >= 1 and never changes after New; outstanding >= 0;
// availPos is the index of this server in Balancer.avail when it is
// available, else -1.
//
// A Balancer's servers array is written on every request by its loop;
// it is made with cacheline.Slice so that two loops' arrays never share a
// cache line.
type server struct {
	weight      int64
	outstanding int64
	current     int64 // smooth weighted round robin's running weight
	lat         ewma  // latency, see p2c.go
	availPos    int
}

// Balancer picks one of a fixed set of servers. It is owned by one
// goroutine and is not safe for concurrent use.
//
// Invariant: avail holds exactly the indexes of the available servers, in
// no particular order, and servers[avail[k]].availPos == k; len(servers)
// never changes after New; ring is nil unless policy == Hash and is never
// written after New, so clones may share it.
type Balancer struct {
	_       cacheline.Pad // one per loop, written per request
	policy  Policy
	servers []server
	avail   []int
	rng     uint64 // wyrand state
	pool    ewma   // every server's samples, the price of servers without any
	ring    *ring
	_       cacheline.Pad
}

// New returns a Balancer of policy p over servers, all of them available,
// with no requests outstanding and no latency samples. seed seeds p2c's
// random draws: give each loop a different one, so the loops' draws do not
// move in step. New allocates; nothing after it does.
func New(p Policy, servers []Server, seed uint64) *Balancer {
	b := &Balancer{
		policy:  p,
		servers: cacheline.Slice[server](len(servers)),
		avail:   make([]int, len(servers)),
		rng:     seed,
	}
	for i, s := range servers {
		w := int64(s.Weight)
		if w < 1 {
			w = 1
		}
		b.servers[i] = server{weight: w, availPos: i}
		b.avail[i] = i
	}
	if p == Hash {
		b.ring = newRing(servers)
	}
	return b
}

// Clone returns a Balancer with b's policy, weights and hash ring (shared:
// it is read-only) and fresh state, as New gives it. It is how each loop
// gets its own Balancer without rebuilding the ring. Clone reads only what
// New wrote and no method changes, so it may run on another goroutine
// while b's owner uses b.
func (b *Balancer) Clone(seed uint64) *Balancer {
	c := &Balancer{
		policy:  b.policy,
		servers: cacheline.Slice[server](len(b.servers)),
		avail:   make([]int, len(b.servers)),
		rng:     seed,
		ring:    b.ring,
	}
	for i := range c.servers {
		c.servers[i] = server{weight: b.servers[i].weight, availPos: i}
		c.avail[i] = i
	}
	return c
}

// Policy is b's policy.
func (b *Balancer) Policy() Policy { return b.policy }

// Len is the number of servers, available or not.
func (b *Balancer) Len() int { return len(b.servers) }

// NumAvailable is the number of available servers.
func (b *Balancer) NumAvailable() int { return len(b.avail) }

// Available reports whether server i may be picked.
func (b *Balancer) Available(i int) bool { return b.servers[i].availPos >= 0 }

// SetAvailable marks server i as available or not, in O(1). The caller
// decides: down, circuit open and at its concurrency limit are all "not
// available". A server's outstanding count and latency are kept while it
// is unavailable.
func (b *Balancer) SetAvailable(i int, ok bool) {
	s := &b.servers[i]
	switch {
	case ok && s.availPos < 0:
		s.availPos = len(b.avail)
		b.avail = append(b.avail, i) // within the capacity New gave
	case !ok && s.availPos >= 0:
		last := len(b.avail) - 1
		moved := b.avail[last]
		b.avail[s.availPos] = moved
		b.servers[moved].availPos = s.availPos
		b.avail = b.avail[:last]
		s.availPos = -1
	}
}

// Start records that a request was sent to server i.
func (b *Balancer) Start(i int) { b.servers[i].outstanding++ }

// Done records that a request on server i finished, however it ended.
// Extra calls are ignored rather than driving the count negative.
func (b *Balancer) Done(i int) {
	if s := &b.servers[i]; s.outstanding > 0 {
		s.outstanding--
	}
}

// Outstanding is the number of requests started and not done on server i.
func (b *Balancer) Outstanding(i int) int { return int(b.servers[i].outstanding) }

// Weight is server i's weight, at least 1.
func (b *Balancer) Weight(i int) int { return int(b.servers[i].weight) }

// Pick returns the index of the server for the next request, or -1 when
// no server is available. now is the monotonic time in nanoseconds, used
// by P2C only; key is the request's hash (Sum64 of a header, a cookie or
// the client address), used by Hash only.
//
// Pick does not count the request: the caller calls Start once it sends
// it (it may still refuse it, for example when the server's limiter says
// no, and then marks the server unavailable and picks again).
func (b *Balancer) Pick(now int64, key uint64) int {
	switch b.policy {
	case RoundRobin:
		return b.pickRoundRobin()
	case Hash:
		return b.pickHash(key)
	default:
		return b.pickP2C(now)
	}
}
