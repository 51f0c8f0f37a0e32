package balance

import (
	"testing"

	"github.com/apex-epoll/apex/cacheline"
)

var clonesKept []*Balancer

// Every loop gets its own Clone, and each of them is written on every
// request (outstanding counts, latency, the random state): two loops'
// clones, made one after the other, must share no cache line. This guards
// the Balancer's pads (Inner panics without them) and that its servers
// array is made by cacheline.Slice.
func TestClonesShareNoCacheLine(t *testing.T) {
	proto := New(P2C, []Server{{Name: "a", Weight: 1}, {Name: "b", Weight: 2}, {Name: "c", Weight: 1}}, 1)
	const loops = 4
	spans := make([][]cacheline.Span, loops)
	for i := range spans {
		c := proto.Clone(uint64(i) + 1)
		clonesKept = append(clonesKept, c) // on the heap, as in a LoopBackend
		spans[i] = []cacheline.Span{cacheline.Inner(c), cacheline.Array(c.servers)}
	}
	for i := range spans {
		for j := i + 1; j < loops; j++ {
			if cacheline.Shared(spans[i], spans[j]) {
				t.Errorf("clones %d and %d write into a common cache line", i, j)
			}
		}
	}
}
