//go:build !race

package accesslog

import (
	"io"
	"testing"
	"time"
)

// A steady stream of lines allocates nothing: formatting appends into
// reused buffers, and the buffers go round between loop and writer.
func TestLoggingAllocatesNothing(t *testing.T) {
	l := NewWriter(io.Discard, JSON)
	defer l.Close(time.Second)
	h := sampleHead()
	rec := make([]byte, 0, 512)
	n := testing.AllocsPerRun(1000, func() {
		var split int
		rec, split = JSON.AppendHead(rec[:0], h)
		if b := l.Get(); b != nil {
			l.Put(JSON.AppendLine(b, rec, split, &End{Status: 200, Bytes: 10, Duration: 1e6, Upstream: 5e5}))
		}
	})
	if n != 0 {
		t.Fatalf("%v allocations per line", n)
	}
}
