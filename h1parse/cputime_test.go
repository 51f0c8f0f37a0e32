package h1parse

import (
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
)

func threadCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var reqLineOnly = []byte("GET /api/v1/users/12345?fields=name,email HTTP/1.1\r\nHost: api.example.com\r\n\r\n")

func TestCPUTimeBench(t *testing.T) {
	if os.Getenv("H1_CPUBENCH") == "" {
		t.Skip()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var r Request
	var rs Response
	var d ChunkedDecoder
	run := func(name string, n int, f func()) {
		best := time.Duration(1 << 62)
		for rep := 0; rep < 7; rep++ {
			s := threadCPU()
			for i := 0; i < n; i++ {
				f()
			}
			if e := threadCPU() - s; e < best {
				best = e
			}
		}
		t.Logf("%-20s %7.1f ns/op", name, float64(best)/float64(n))
	}
	run("reset", 2000000, func() { r.Reset() })
	run("reqline-only", 2000000, func() { r.Reset(); _ = r.Parse(reqLineOnly, nil) })
	run("request", 2000000, func() { r.Reset(); _ = r.Parse(smallGET, nil) })
	run("browser", 1000000, func() { r.Reset(); _ = r.Parse(browserGET, nil) })
	run("response", 2000000, func() { rs.Reset(); _ = rs.Parse(smallResponse, nil) })
	run("chunked64k", 200000, func() {
		d.Reset()
		in := chunkedBody
		for len(in) > 0 && !d.Done() {
			n, _, _ := d.Decode(in)
			in = in[n:]
		}
	})
}
