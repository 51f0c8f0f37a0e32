package main

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	o, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(o.targets, allTargets) || !reflect.DeepEqual(o.conns, []int{16, 64, 256}) ||
		!reflect.DeepEqual(o.conns64k, []int{64}) || o.repeats != 3 || o.layout != "pinned" || o.apexConns != 64 || o.out != "bench-out" {
		t.Fatalf("defaults: %+v", o)
	}
	pts := defaultPoints(o)
	if len(pts) != 4 || pts[3].Path != "/64k" || pts[3].BodyBytes != 65536 || pts[0].BodyBytes != 14 {
		t.Fatalf("default points: %+v", pts)
	}
	if n := defaultNginxKeepalive(pts); n != 256 {
		t.Fatalf("nginx keepalive for the default points = %d, want 256 (the largest conns)", n)
	}
	if n := defaultNginxKeepalive([]point{{Conns: 16}}); n != 64 {
		t.Fatalf("nginx keepalive floor = %d, want 64", n)
	}
	o, err = parseFlags([]string{"-quick", "-targets", "direct,nginx,haproxy", "-repeats", "2"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(o.conns, []int{64}) || len(o.conns64k) != 0 || o.duration != 5*time.Second || o.repeats != 2 ||
		!reflect.DeepEqual(o.targets, []string{"direct", "nginx", "haproxy"}) {
		t.Fatalf("quick: %+v", o)
	}
	if pts := defaultPoints(o); len(pts) != 1 {
		t.Fatalf("quick is one point per target, got %d", len(pts))
	}
	for _, bad := range [][]string{
		{"-targets", "direct,envoy"}, {"-layout", "weird"}, {"-conns", "0"}, {"-repeats", "0"},
		{"-duration", "100ms"}, {"stray"},
	} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%v) accepted", bad)
		}
	}
}

func TestScenarioRegistry(t *testing.T) {
	_, err := lookupScenario("pipeline-nope")
	if err == nil || !strings.Contains(err.Error(), `unknown scenario "pipeline-nope"`) {
		t.Fatalf("err = %v", err)
	}
	registerScenario(scenario{Name: "test-only", Description: "for this test", Points: func(*options) []point {
		return []point{{Body: "1k", Path: "/1k", BodyBytes: 1024, Conns: 8}}
	}})
	t.Cleanup(func() { delete(scenarios, "test-only") })
	s, err := lookupScenario("test-only")
	if err != nil || len(s.Points(nil)) != 1 {
		t.Fatalf("lookup: %v", err)
	}
	if _, err := lookupScenario("x"); err == nil || !strings.Contains(err.Error(), "known: ") || !strings.Contains(err.Error(), "test-only") {
		t.Fatalf("err = %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("duplicate registration did not panic")
		}
	}()
	registerScenario(s)
}
