package proxy

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// fixedBackend answers every request with one fixed response, reading and
// writing through preallocated buffers, so it allocates nothing itself and
// the process's allocation count is the proxy's.
func fixedBackend(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 14\r\nContent-Type: text/plain\r\n\r\nhello, world!\n")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				buf := make([]byte, 64<<10)
				have := 0
				for {
					n, err := c.Read(buf[have:])
					if err != nil {
						return
					}
					have += n
					// one response per complete request head
					for {
						i := bytes.Index(buf[:have], []byte("\r\n\r\n"))
						if i < 0 {
							break
						}
						if _, err := c.Write(resp); err != nil {
							return
						}
						copy(buf, buf[i+4:have])
						have -= i + 4
					}
				}
			}(c)
		}
	}()
	if tt, ok := t.(*testing.T); ok {
		tt.Cleanup(func() { ln.Close() })
	} else {
		t.(*testing.B).Cleanup(func() { ln.Close() })
	}
	return ln.Addr().String()
}

var allocReq = []byte("GET /alloc?x=1 HTTP/1.1\r\nHost: bench.test\r\nUser-Agent: apex-test\r\nAccept: */*\r\nX-Forwarded-For: 10.1.2.3\r\n\r\n")

// roundTripper sends one keep-alive request and reads its known-length
// response, allocating nothing.
type roundTripper struct {
	c    net.Conn
	buf  []byte
	want int
}

func (rt *roundTripper) do() error {
	if _, err := rt.c.Write(allocReq); err != nil {
		return err
	}
	_, err := io.ReadFull(rt.c, rt.buf[:rt.want])
	return err
}

func newRoundTripper(t testing.TB, addr string) *roundTripper {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	rt := &roundTripper{c: c, buf: make([]byte, 4096)}
	// Learn the response length from a first exchange.
	c.Write(allocReq)
	n, err := c.Read(rt.buf)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(rt.buf[:n], []byte("HTTP/1.1 200 OK\r\n")) || !bytes.HasSuffix(rt.buf[:n], []byte("hello, world!\n")) {
		t.Fatalf("unexpected response %q", rt.buf[:n])
	}
	rt.want = n
	return rt
}

// A full keep-alive round trip through the proxy (client → loop → parser →
// route → owner → upstream → parser → loop → client) allocates nothing in
// steady state, in either owner mode.
func TestProxyRoundTripAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race; run without it (.ci/run does)")
	}
	addr := fixedBackend(t)
	_, paddr := startProxy(t, "loops = 1", backendTOML(addr, "conns = 2"))
	rt := newRoundTripper(t, paddr)
	defer rt.c.Close()
	for i := 0; i < 2000; i++ { // warm pools, buffers and free lists
		if err := rt.do(); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	allocs := testing.AllocsPerRun(2000, func() {
		if e := rt.do(); e != nil {
			err = e
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	// AllocsPerRun counts the whole process: the test's own client and
	// backend allocate nothing per request, so this is the proxy's count.
	// A stray runtime allocation (a timer, a GC) may land in the window.
	if allocs > 0.01 {
		t.Fatalf("owner %s: %.3f allocations per proxied request, want 0", ownerMode, allocs)
	}
}

// BenchmarkProxyRoundTrip measures one client's keep-alive round trip
// through the proxy; run with -benchmem to see allocs/op (0).
func BenchmarkProxyRoundTrip(b *testing.B) {
	addr := fixedBackend(b)
	for _, mode := range []string{"goroutine", "loop"} {
		b.Run(mode, func(b *testing.B) {
			saved := ownerMode
			ownerMode = mode
			defer func() { ownerMode = saved }()
			_, paddr := startProxyB(b, "loops = 1", backendTOML(addr, "conns = 2"))
			rt := newRoundTripper(b, paddr)
			defer rt.c.Close()
			for i := 0; i < 1000; i++ {
				rt.do()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := rt.do(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
