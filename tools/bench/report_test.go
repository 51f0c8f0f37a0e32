package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMedianMinMax(t *testing.T) {
	cases := []struct {
		in            []float64
		med, lo, hi   float64
		leaveUnsorted bool
	}{
		{[]float64{3}, 3, 3, 3, false},
		{[]float64{5, 1, 3}, 3, 1, 5, true},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4, true},
		{[]float64{7, 7, 7}, 7, 7, 7, false},
	}
	for _, c := range cases {
		orig := append([]float64(nil), c.in...)
		if got := median(c.in); got != c.med {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.med)
		}
		lo, hi := minMax(c.in)
		if lo != c.lo || hi != c.hi {
			t.Errorf("minMax(%v) = %v,%v want %v,%v", c.in, lo, hi, c.lo, c.hi)
		}
		for i := range orig {
			if orig[i] != c.in[i] {
				t.Errorf("median modified its input: %v -> %v", orig, c.in)
			}
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median(nil) is not NaN")
	}
	if lo, hi := minMax(nil); !math.IsNaN(lo) || !math.IsNaN(hi) {
		t.Error("minMax(nil) is not NaN")
	}
}

func run1(rep int, rps, cpu float64, rss int64, errs int64) runResult {
	r := runResult{Rep: rep, Quiet: true}
	r.RPS, r.Requests, r.P50Ms, r.P99Ms = rps, int64(rps*10), 0.5*float64(rep), 2*float64(rep)
	r.Non2xx = errs
	r.Errors = errs
	if cpu > 0 {
		r.CPUUsPerReq = fptr(cpu)
		r.ProxyCPUPct = fptr(cpu * rps / 1e4)
		r.RSSKiB = &rss
	}
	r.BackendCPUUsPerReq = fptr(4)
	r.LoadCPUPct = fptr(90)
	return r
}

var smallPt = point{Body: "small", Path: "/", BodyBytes: 14, Conns: 64}

func TestAggregate(t *testing.T) {
	pr := aggregate("apex", "pinned", "", smallPt, []runResult{
		run1(1, 1000, 12, 9000, 0), run1(2, 1200, 10, 9500, 0), run1(3, 900, 11, 9100, 0),
	})
	if pr.RPS != 1000 || pr.RPSMin != 900 || pr.RPSMax != 1200 {
		t.Fatalf("rps %v [%v, %v]", pr.RPS, pr.RPSMin, pr.RPSMax)
	}
	if *pr.CPUUsPerReq != 11 || *pr.CPUUsPerReqMin != 10 || *pr.CPUUsPerReqMax != 12 {
		t.Fatalf("cpu %v", *pr.CPUUsPerReq)
	}
	if *pr.ProxyCPUPct != 1.2 || *pr.LoadCPUPct != 90 { // median of 1.2, 1.2, 0.99
		t.Fatalf("proxy %% %v load %% %v", *pr.ProxyCPUPct, *pr.LoadCPUPct)
	}
	if *pr.RSSKiB != 9500 || pr.P50Ms != 1 || pr.P99Ms != 4 || pr.P99MsMax != 6 {
		t.Fatalf("rss %d p50 %v p99 %v p99max %v", *pr.RSSKiB, pr.P50Ms, pr.P99Ms, pr.P99MsMax)
	}
	if pr.Flagged || pr.Errors != 0 || pr.Repeats != 3 || len(pr.Runs) != 3 {
		t.Fatalf("unexpected flags: %+v", pr)
	}
}

// A run with errors is flagged and its errors are summed, never hidden.
func TestAggregateFlagsErrors(t *testing.T) {
	bad := run1(2, 5000, 3, 9000, 7)
	failed := runResult{Rep: 3, Failed: "wrk failed (exit status 1): unable to connect"}
	pr := aggregate("nginx", "pinned", "", smallPt, []runResult{run1(1, 1000, 12, 9000, 0), bad, failed})
	if !pr.Flagged || pr.Errors != 7 || pr.Non2xx != 7 {
		t.Fatalf("flagged %v errors %d non2xx %d", pr.Flagged, pr.Errors, pr.Non2xx)
	}
	if len(pr.Flags) != 2 || !strings.Contains(pr.Flags[0], "rep 2: 7 errors") || !strings.Contains(pr.Flags[1], "rep 3 failed") {
		t.Fatalf("flags %q", pr.Flags)
	}
	// the failed run has no numbers; the errored one is visible in min–max
	if pr.RPSMax != 5000 || pr.Repeats != 3 {
		t.Fatalf("rps max %v repeats %d", pr.RPSMax, pr.Repeats)
	}
	if md := markdown(&report{Results: []pointResult{pr}}); !strings.Contains(md, "nginx ⚠") || !strings.Contains(md, "**7**") {
		t.Fatalf("markdown does not flag the errors:\n%s", md)
	}
}

func sampleReport() *report {
	direct := aggregate(tDirect, "pinned", "", smallPt, []runResult{run1(1, 2000, 0, 0, 0)})
	direct.Runs[0].CPUUsPerReq, direct.Runs[0].RSSKiB, direct.Runs[0].ProxyCPUPct = nil, nil, nil
	direct = aggregate(tDirect, "pinned", "", smallPt, direct.Runs)
	return &report{
		Schema:  schemaVersion,
		Machine: machineInfo{CPUModel: "Test CPU", CPUs: 2, Tools: map[string]string{"wrk": "wrk 4.1.0"}},
		Config:  runConfig{Layout: "pinned", ProxyCPUs: "1", LoadCPUs: "0", Repeats: 1, DurationS: 10, WrkThreads: 1},
		Notes:   []string{"haproxy is not installed"},
		Results: []pointResult{
			direct,
			aggregate(tApex, "pinned", "", smallPt, []runResult{run1(1, 1500, 10, 8000, 0)}),
			aggregate(tNginx, "pinned", "", smallPt, []runResult{run1(1, 1000, 20, 4000, 0)}),
		},
	}
}

// results.json: one object per point with the documented keys and types;
// proxy-only fields are null for direct.
func TestJSONSchema(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "results.json")
	if err := writeJSON(path, sampleReport()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"schema", "machine", "config", "notes", "results", "interrupted"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("top-level key %q missing", k)
		}
	}
	if doc["schema"].(float64) != schemaVersion {
		t.Errorf("schema = %v", doc["schema"])
	}
	results := doc["results"].([]any)
	if len(results) != 3 {
		t.Fatalf("%d results", len(results))
	}
	numeric := []string{"conns", "rps", "rps_min", "rps_max", "p50_ms", "p99_ms", "errors", "non2xx", "body_bytes", "repeats"}
	nullableNum := []string{"cpu_us_per_req", "rss_kib", "proxy_cpu_pct"}
	for _, r := range results {
		obj := r.(map[string]any)
		for _, k := range []string{"target", "body", "layout", "path"} {
			if _, ok := obj[k].(string); !ok {
				t.Errorf("%v: %q is not a string", obj["target"], k)
			}
		}
		for _, k := range numeric {
			if _, ok := obj[k].(float64); !ok {
				t.Errorf("%v: %q is not a number (%T)", obj["target"], k, obj[k])
			}
		}
		for _, k := range nullableNum {
			v, present := obj[k]
			if !present {
				t.Errorf("%v: %q missing", obj["target"], k)
				continue
			}
			_, isNum := v.(float64)
			if obj["target"] == tDirect {
				if v != nil {
					t.Errorf("direct: %q = %v, want null", k, v)
				}
			} else if !isNum {
				t.Errorf("%v: %q is not a number (%T)", obj["target"], k, v)
			}
		}
		if _, ok := obj["flagged"].(bool); !ok {
			t.Errorf("%v: flagged is not a bool", obj["target"])
		}
		runs, ok := obj["runs"].([]any)
		if !ok || len(runs) != 1 {
			t.Fatalf("%v: runs = %v", obj["target"], obj["runs"])
		}
		run := runs[0].(map[string]any)
		for _, k := range []string{"rep", "requests", "rps", "p50_ms", "p99_ms", "errors", "err_connect", "err_read", "err_write", "err_timeout", "non2xx", "load1_before"} {
			if _, ok := run[k].(float64); !ok {
				t.Errorf("%v run: %q is not a number (%T)", obj["target"], k, run[k])
			}
		}
	}
}

func TestMarkdownRatios(t *testing.T) {
	md := markdown(sampleReport())
	for _, want := range []string{
		"## 14 B body (`/`)",
		"| apex | 64 | 1,500 |",                      // median req/s
		"| 10.00 | 0.50× nginx | 2 | 90 | 7.8 | 0 |", // CPU µs, CPU ×peer, proxy CPU %, load CPU %, RSS MiB, errors
		"0.75× |",     // apex vs direct: 1500/2000
		"1.50× nginx", // apex vs best peer on req/s
		"0.50× nginx", // apex CPU vs nginx: 10/20
		"0.67× apex",  // nginx req/s vs apex
		"2.00× apex",  // nginx CPU vs apex
		"- haproxy is not installed",
		"proxy alone on CPU 1",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	// direct has no ratios, CPU or RSS
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(l, "| direct |") && !strings.Contains(l, "| – | – | ") {
			t.Errorf("direct row has ratios: %s", l)
		}
	}
}

// A tuned apex configuration beside apex does not become apex's peer: both
// are ranked against nginx, and nginx against the best of them. An A/B
// build (apex-base) is still apex's peer.
func TestPeerBestSkipsOtherApexTargets(t *testing.T) {
	r := sampleReport()
	r.Results = append(r.Results, aggregate("apex-pipe8", "pinned", "", smallPt, []runResult{run1(1, 1800, 8, 8000, 0)}))
	find := func(name string) pointResult {
		for _, p := range r.Results {
			if p.Target == name {
				return p
			}
		}
		t.Fatalf("no %s in the sample", name)
		return pointResult{}
	}
	for _, tc := range []struct{ self, rps, cpu string }{
		{tApex, tNginx, tNginx},
		{"apex-pipe8", tNginx, tNginx},
		{tNginx, "apex-pipe8", "apex-pipe8"},
	} {
		rps, cpu := peerBest(r.Results, find(tc.self))
		if rps == nil || cpu == nil || rps.Target != tc.rps || cpu.Target != tc.cpu {
			t.Errorf("peerBest(%s) = %v, %v; want %s, %s", tc.self, rps, cpu, tc.rps, tc.cpu)
		}
	}
	r.Results = append(r.Results, aggregate("apex-base", "pinned", "", smallPt, []runResult{run1(1, 1200, 12, 8000, 0)}))
	if rps, _ := peerBest(r.Results, find("apex-base")); rps == nil || rps.Target != tApex {
		t.Errorf("peerBest(apex-base) = %v, want apex (an A/B keeps its ratio)", rps)
	}
}

// A proxy that makes the backend work much harder than direct does gets a note.
func TestMarkdownBackendCostNote(t *testing.T) {
	r := sampleReport()
	r.Results[2].BackendCPUUsPerReq = fptr(9) // nginx: 9 vs direct's 4
	md := markdown(r)
	if !strings.Contains(md, "nginx small c=64: the backend spent 2.2× more CPU per request than with direct") {
		t.Fatalf("no backend note:\n%s", md)
	}
	if strings.Contains(md, "apex small c=64: the backend") {
		t.Fatal("note for a proxy that treats the backend like direct")
	}
}

func TestWriteOutputsAndCharts(t *testing.T) {
	r := sampleReport()
	pt64 := point{Body: "64k", Path: "/64k", BodyBytes: 65536, Conns: 64}
	r.Results = append(r.Results, aggregate(tApex, "pinned", "", pt64, []runResult{run1(1, 300, 40, 9000, 0)}))
	dir := t.TempDir()
	if _, err := writeOutputs(dir, r); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"results.json", "results.md", "rps-small.svg", "rps-small.png", "rps-64k.svg", "cpu.svg", "cpu.png"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Size() == 0 {
			t.Errorf("%s not written (%v)", f, err)
		}
	}
}

func TestBodyLabel(t *testing.T) {
	for n, want := range map[int]string{14: "14 B", 1024: "1 KiB", 65536: "64 KiB", 1 << 20: "1 MiB", 1500: "1500 B"} {
		if got := bodyLabel(n); got != want {
			t.Errorf("bodyLabel(%d) = %q want %q", n, got, want)
		}
	}
	if got := groupThousands(1234567); got != "1,234,567" {
		t.Errorf("groupThousands = %q", got)
	}
}

// The origin's requests never reach the backend: its row has no req/s
// ratios, only its CPU against the proxies.
func TestMarkdownOriginHasNoRatios(t *testing.T) {
	r := sampleReport()
	r.Results = append(r.Results, aggregate(tOrigin, "pinned", "", smallPt, []runResult{run1(1, 5000, 5, 8000, 0)}))
	md := markdown(r)
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(l, "| origin |") {
			if !strings.Contains(l, "| – | – | ") || !strings.Contains(l, "0.50× apex") {
				t.Fatalf("origin row: %s", l)
			}
			return
		}
	}
	t.Fatalf("no origin row:\n%s", md)
}
