package main

import (
	"math"
	"reflect"
	"testing"
	"time"
)

// Real wrk 4.1.0 output (Debian), clean run.
const wrkClean = `Running 2s test @ http://127.0.0.1:18080/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   498.33us  485.56us  11.02ms   96.81%
    Req/Sec    99.16k     9.70k  119.84k    75.00%
  Latency Distribution
     50%  446.00us
     75%  571.00us
     90%  740.00us
     99%    1.34ms
  197114 requests in 2.00s, 19.55MB read
Requests/sec:  98415.18
Transfer/sec:      9.76MB
`

// A run with socket errors, non-2xx responses and second-scale latencies.
const wrkErrors = `Running 10s test @ http://127.0.0.1:8081/64k
  1 threads and 256 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   150.20ms   300.00ms   1.99s    90.00%
    Req/Sec     1.20k   300.00     2.00k    70.00%
  Latency Distribution
     50%   12.50ms
     75%   40.00ms
     90%  500.00ms
     99%    1.50s
  11873 requests in 1.00m, 737.11MB read
  Socket errors: connect 3, read 17, write 2, timeout 41
  Non-2xx or 3xx responses: 120
Requests/sec:    197.80
Transfer/sec:     12.28MB
`

func TestParseWrkClean(t *testing.T) {
	r, err := parseWrk(wrkClean)
	if err != nil {
		t.Fatal(err)
	}
	want := wrkResult{Requests: 197114, ElapsedS: 2.0, RPS: 98415.18, P50Ms: 0.446, P99Ms: 1.34, sawLatency: true}
	if !approxResult(r, want) {
		t.Fatalf("got %+v\nwant %+v", r, want)
	}
	if r.errors() != 0 {
		t.Fatalf("errors = %d, want 0", r.errors())
	}
}

func TestParseWrkErrors(t *testing.T) {
	r, err := parseWrk(wrkErrors)
	if err != nil {
		t.Fatal(err)
	}
	want := wrkResult{Requests: 11873, ElapsedS: 60, RPS: 197.80, P50Ms: 12.5, P99Ms: 1500,
		Connect: 3, Read: 17, Write: 2, Timeout: 41, Non2xx: 120, sawLatency: true}
	if !approxResult(r, want) {
		t.Fatalf("got %+v\nwant %+v", r, want)
	}
	if got := r.socketErrors(); got != 63 {
		t.Fatalf("socketErrors = %d, want 63", got)
	}
	if got := r.errors(); got != 183 {
		t.Fatalf("errors = %d, want 183", got)
	}
}

func TestParseWrkRejectsGarbage(t *testing.T) {
	for name, out := range map[string]string{
		"connect failure": "unable to connect to 127.0.0.1:1 Connection refused\n",
		"empty":           "",
		"no latency": `  100 requests in 1.00s, 1.00KB read
Requests/sec:    100.00
`,
	} {
		if _, err := parseWrk(out); err == nil {
			t.Errorf("%s: parseWrk accepted %q", name, out)
		}
	}
}

func TestParseWrkDuration(t *testing.T) {
	for in, want := range map[string]float64{
		"812.00us": 0.812,
		"1.34ms":   1.34,
		"2.00s":    2000,
		"1.50m":    90000,
		"1.00h":    3600000,
		"0.00us":   0,
	} {
		got, err := parseWrkDuration(in)
		if err != nil || math.Abs(got-want) > 1e-9 {
			t.Errorf("parseWrkDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "12", "ms", "1.0xs", "1.2.3ms"} {
		if _, err := parseWrkDuration(bad); err == nil {
			t.Errorf("parseWrkDuration(%q) accepted", bad)
		}
	}
}

func TestWrkArgs(t *testing.T) {
	got := wrkArgs(1, 64, 2500*time.Millisecond, "http://127.0.0.1:1/", "")
	want := []string{"wrk", "-t1", "-c64", "-d3s", "--latency", "http://127.0.0.1:1/"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v want %v", got, want)
	}
	// threads never exceed connections; a script is passed with -s
	got = wrkArgs(4, 2, time.Second, "http://x/", "/tmp/s.lua")
	want = []string{"wrk", "-t2", "-c2", "-d1s", "--latency", "-s", "/tmp/s.lua", "http://x/"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v want %v", got, want)
	}
}

func approxResult(a, b wrkResult) bool {
	eq := func(x, y float64) bool { return math.Abs(x-y) <= 1e-9*math.Max(1, math.Abs(y)) }
	return a.Requests == b.Requests && eq(a.ElapsedS, b.ElapsedS) && eq(a.RPS, b.RPS) &&
		eq(a.P50Ms, b.P50Ms) && eq(a.P99Ms, b.P99Ms) &&
		a.Connect == b.Connect && a.Read == b.Read && a.Write == b.Write && a.Timeout == b.Timeout &&
		a.Non2xx == b.Non2xx && a.sawLatency == b.sawLatency
}
