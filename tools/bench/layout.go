package main

import (
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// parseCPUList parses a taskset-style list ("0-2,5") into sorted CPU ids.
func parseCPUList(s string) ([]int, error) {
	seen := map[int]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(f, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("bad CPU list %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("bad CPU list %q", s)
			}
		}
		for c := a; c <= b; c++ {
			seen[c] = true
		}
	}
	if len(seen) == 0 {
		return nil, fmt.Errorf("empty CPU list %q", s)
	}
	out := make([]int, 0, len(seen))
	for c := range seen {
		out = append(out, c)
	}
	sort.Ints(out)
	return out, nil
}

func formatCPUList(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}

// allowedCPUs are the CPUs this process may run on.
func allowedCPUs() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err == nil {
		var out []int
		for c := 0; c < len(set)*64; c++ {
			if set.IsSet(c) {
				out = append(out, c)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	out := make([]int, runtime.NumCPU())
	for i := range out {
		out[i] = i
	}
	return out
}

// layoutPlan says where everything runs.
type layoutPlan struct {
	name         string
	proxyCPUs    string // taskset list; "" = not pinned
	loadCPUs     string // backend and wrk; "" = not pinned
	backendLoops int
}

// planLayout splits the allowed CPUs: pinned puts the proxy on the last CPU
// and backend+wrk on the rest; free pins nothing.
func planLayout(o *options, allowed []int) (layoutPlan, error) {
	lp := layoutPlan{name: o.layout}
	if o.layout == "free" {
		lp.backendLoops = len(allowed)
	} else {
		proxy, load := allowed[len(allowed)-1:], allowed[:len(allowed)-1]
		var err error
		if o.proxyCPUs != "" {
			if proxy, err = parseCPUList(o.proxyCPUs); err != nil {
				return lp, err
			}
		}
		if o.loadCPUs != "" {
			if load, err = parseCPUList(o.loadCPUs); err != nil {
				return lp, err
			}
		} else if o.proxyCPUs != "" {
			load = nil
			in := map[int]bool{}
			for _, c := range proxy {
				in[c] = true
			}
			for _, c := range allowed {
				if !in[c] {
					load = append(load, c)
				}
			}
		}
		if len(load) == 0 || len(proxy) == 0 {
			return lp, fmt.Errorf("pinned layout needs at least 2 CPUs (have %s); use -layout free", formatCPUList(allowed))
		}
		for _, a := range proxy {
			for _, b := range load {
				if a == b {
					return lp, fmt.Errorf("proxy CPUs %v and load CPUs %v overlap", proxy, load)
				}
			}
		}
		lp.proxyCPUs, lp.loadCPUs = formatCPUList(proxy), formatCPUList(load)
		lp.backendLoops = len(load)
	}
	if o.backendLoops > 0 {
		lp.backendLoops = o.backendLoops
	}
	return lp, nil
}
