package main

import (
	"reflect"
	"testing"
)

func TestParseCPUList(t *testing.T) {
	got, err := parseCPUList("3,0-1, 5")
	if err != nil || !reflect.DeepEqual(got, []int{0, 1, 3, 5}) {
		t.Fatalf("got %v %v", got, err)
	}
	if formatCPUList(got) != "0,1,3,5" {
		t.Fatalf("format %q", formatCPUList(got))
	}
	for _, bad := range []string{"", "a", "2-1", "-1"} {
		if _, err := parseCPUList(bad); err == nil {
			t.Errorf("parseCPUList(%q) accepted", bad)
		}
	}
}

func TestPlanLayout(t *testing.T) {
	o := &options{layout: "pinned"}
	lp, err := planLayout(o, []int{0, 1})
	if err != nil || lp.proxyCPUs != "1" || lp.loadCPUs != "0" || lp.backendLoops != 1 {
		t.Fatalf("2 CPUs: %+v %v", lp, err)
	}
	lp, err = planLayout(o, []int{0, 1, 2, 3})
	if err != nil || lp.proxyCPUs != "3" || lp.loadCPUs != "0,1,2" || lp.backendLoops != 3 {
		t.Fatalf("4 CPUs: %+v %v", lp, err)
	}
	if _, err := planLayout(o, []int{0}); err == nil {
		t.Fatal("pinned on one CPU accepted")
	}
	o = &options{layout: "pinned", proxyCPUs: "0"}
	lp, err = planLayout(o, []int{0, 1, 2})
	if err != nil || lp.proxyCPUs != "0" || lp.loadCPUs != "1,2" {
		t.Fatalf("-proxy-cpus 0: %+v %v", lp, err)
	}
	o = &options{layout: "pinned", proxyCPUs: "1", loadCPUs: "0-1"}
	if _, err := planLayout(o, []int{0, 1}); err == nil {
		t.Fatal("overlapping CPU sets accepted")
	}
	lp, err = planLayout(&options{layout: "free"}, []int{0, 1})
	if err != nil || lp.proxyCPUs != "" || lp.loadCPUs != "" || lp.backendLoops != 2 {
		t.Fatalf("free: %+v %v", lp, err)
	}
}
