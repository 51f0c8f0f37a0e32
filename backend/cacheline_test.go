package backend

import (
	"log/slog"
	"testing"

	"github.com/apex-epoll/apex/cacheline"
	"github.com/apex-epoll/apex/config"
	"github.com/apex-epoll/apex/h1parse"
	"github.com/apex-epoll/apex/loop"
)

type idleHandler struct{}

func (idleHandler) Opened(*loop.Conn)           {}
func (idleHandler) Data(*loop.Conn, []byte) int { return 0 }
func (idleHandler) ReadClosed(c *loop.Conn)     { c.Close() }
func (idleHandler) Drained(*loop.Conn)          {}
func (idleHandler) Timeout(c *loop.Conn)        { c.Close() }
func (idleHandler) Closed(*loop.Conn, error)    {}

// The state each loop writes per request (its backend view, its pools, its
// limiters and its health and breaker records) is made for every loop in a
// row at start and on reload; none of it may share a cache line with
// another loop's, or two loops would bounce that line between their CPUs
// on every request. What this guards is the layout (cacheline.Inner panics
// on a type without its pads), that arrays are made by cacheline.Slice,
// and that no object is shared between loops: padded objects and arrays
// can then share no line.
func TestLoopsShareNoCacheLine(t *testing.T) {
	cfg, err := config.Parse("test.toml", []byte(`
[server]
listen = "127.0.0.1:0"
[[backend]]
name = "b"
servers = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]
owner = "loop"
[[route]]
backend = "b"
`))
	if err != nil {
		t.Fatal(err)
	}
	const loops = 4
	g, err := loop.NewGroup(loop.Config{Loops: loops, Logger: slog.New(slog.DiscardHandler)},
		[]string{"127.0.0.1:0"}, func(*loop.Loop) loop.Handler { return idleHandler{} })
	if err != nil {
		t.Fatal(err)
	}
	g.Start()
	defer func() {
		for _, l := range g.Loops {
			l.Post(&loop.Task{Run: l.Stop})
		}
		g.Wait()
	}()
	b := New(&cfg.Backends[0], h1parse.Limits{}, slog.New(slog.DiscardHandler))
	if err := b.InitLoops(g.Loops); err != nil {
		t.Fatal(err)
	}
	spans := make([][]cacheline.Span, loops)
	for i, lb := range b.loops {
		s := []cacheline.Span{cacheline.Inner(lb)}
		for _, p := range lb.pools {
			s = append(s, cacheline.Inner(p))
		}
		for _, l := range lb.lims {
			s = append(s, cacheline.Inner(l))
		}
		s = append(s, cacheline.Array(lb.hs))
		spans[i] = s
	}
	for i := range spans {
		for j := i + 1; j < len(spans); j++ {
			if cacheline.Shared(spans[i], spans[j]) {
				t.Errorf("loops %d and %d write into a common cache line", i, j)
			}
		}
	}
}
