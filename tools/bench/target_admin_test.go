package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestScrapeMetrics(t *testing.T) {
	var hits, bad atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1)%3 == 0 {
			bad.Add(1)
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("# TYPE apex_requests_total counter\napex_requests_total{route=\"/\",backend=\"echo\",code=\"2xx\"} 7\n"))
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	st := scrapeMetrics(ctx, srv.URL+"/metrics", 10*time.Millisecond)
	if st.scrapes < 3 || int64(st.failures) != bad.Load() || st.failures == 0 || !strings.Contains(st.lastErr, "status 503") {
		t.Fatalf("scrapes %d failures %d (server refused %d of %d) last error %q", st.scrapes, st.failures, bad.Load(), hits.Load(), st.lastErr)
	}
	if st.maxMs <= 0 || st.maxMs > 5000 {
		t.Errorf("slowest scrape %v ms", st.maxMs)
	}

	// an answer that is not apex's metrics is a failure
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) }))
	defer other.Close()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if st := scrapeMetrics(ctx2, other.URL, 10*time.Millisecond); st.scrapes != 0 || st.failures == 0 {
		t.Errorf("non-metrics answers: %+v", st)
	}
}

// Scrape failures flag the point; two backends' CPU split is kept as a
// median per backend and noted in results.md.
func TestAggregateScrapesAndBackendShare(t *testing.T) {
	pt := point{Body: "small", Path: "/", BodyBytes: 14, Conns: 64}
	a, b, c := run1(1, 1000, 10, 1, 0), run1(2, 1100, 10, 1, 0), run1(3, 1200, 10, 1, 0)
	a.MetricsScrapes, b.MetricsScrapes, c.MetricsScrapes = 8, 8, 7
	c.MetricsScrapeErrors = 1
	a.BackendCPUShare, b.BackendCPUShare, c.BackendCPUShare = []float64{0.4, 0.6}, []float64{0.5, 0.5}, []float64{0.45, 0.55}
	pr := aggregate("apex-2s-c1", "pinned", "two-servers", pt, []runResult{a, b, c})
	if pr.MetricsScrapes != 23 || pr.MetricsScrapeErrors != 1 || !pr.Flagged || !strings.Contains(strings.Join(pr.Flags, ";"), "1 of 8 /metrics scrapes failed") {
		t.Errorf("scrapes %d errors %d flagged %v flags %v", pr.MetricsScrapes, pr.MetricsScrapeErrors, pr.Flagged, pr.Flags)
	}
	if !reflect.DeepEqual(pr.BackendCPUShare, []float64{0.45, 0.55}) {
		t.Errorf("backend share %v, want the medians [0.45 0.55]", pr.BackendCPUShare)
	}
	rep := &report{Config: runConfig{Layout: "pinned", BackendServers: 2, Interleaved: true,
		Targets:  []string{tDirect, "apex-2s-c1"},
		Variants: describeVariants([]string{tDirect, "apex-2s-c1"})}, Results: []pointResult{pr}}
	md := markdown(rep)
	for _, want := range []string{
		"apex-2s-c1 small c=64: the backends' CPU time split 45 % / 55 %",
		"- apex-2s-c1: two backend servers, balance p2c (apex's default), conns = 1 per server",
		"2 evio backend servers", "Interleaved:",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("results.md lacks %q:\n%s", want, md)
		}
	}
}

func TestParseFlagsVariantsAndInterleave(t *testing.T) {
	o, err := parseFlags([]string{"-targets", "direct,apex,apex-admin", "-interleave"})
	if err != nil {
		t.Fatal(err)
	}
	if !o.interleave || !o.targetsSet || !reflect.DeepEqual(o.targets, []string{tDirect, tApex, "apex-admin"}) {
		t.Fatalf("%+v", o)
	}
	if o, _ := parseFlags(nil); o.targetsSet || o.interleave {
		t.Fatalf("defaults: targetsSet %v interleave %v", o.targetsSet, o.interleave)
	}
	for _, name := range append([]string{tApex}, variantOrder...) {
		if !isApex(name) {
			t.Errorf("isApex(%q) = false", name)
		}
	}
	if isApex(tNginx) || isApex(tDirect) {
		t.Error("isApex is true for another target")
	}
}
