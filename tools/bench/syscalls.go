package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// -syscalls counts the system calls of the proxy's processes during each
// measured run, with `perf stat` on the kernel's syscall tracepoints, and
// reports them per completed request: the "syscall count" half of a floor
// argument (the other half is the cost of each, which the floor targets
// measure). Counting puts a tracepoint hit on every system call, so the
// CPU per request of a run with -syscalls is a little higher than without
// it and is compared only with runs that counted too.

// syscallAll is the tracepoint every system call entry hits.
const syscallAll = "raw_syscalls:sys_enter"

// syscallGroups are the columns of the report, each the sum of the
// tracepoints (syscalls:sys_enter_<name>) it lists; "other" is whatever
// the total holds beyond them.
var syscallGroups = []struct {
	name  string
	calls []string
}{
	{"recv", []string{"read", "readv", "recvfrom", "recvmsg"}},
	{"send", []string{"write", "writev", "sendto", "sendmsg"}},
	{"epoll_wait", []string{"epoll_wait", "epoll_pwait", "epoll_pwait2"}},
	{"epoll_ctl", []string{"epoll_ctl"}},
	{"splice", []string{"splice"}},
	{"io_uring_enter", []string{"io_uring_enter"}},
	{"futex", []string{"futex"}},
}

// syscallColumns is the order of the report's columns.
var syscallColumns = func() []string {
	cols := []string{"all"}
	for _, g := range syscallGroups {
		cols = append(cols, g.name)
	}
	return append(cols, "other")
}()

// syscallEvents is the -e list given to perf stat.
func syscallEvents() []string {
	ev := []string{syscallAll}
	for _, g := range syscallGroups {
		for _, c := range g.calls {
			ev = append(ev, "syscalls:sys_enter_"+c)
		}
	}
	return ev
}

// checkSyscallCounting fails when perf cannot count the tracepoints here
// (not installed, no tracefs, perf_event_paranoid too strict), before any
// run is spent.
func checkSyscallCounting(ctx context.Context) error {
	if _, err := exec.LookPath("perf"); err != nil {
		return fmt.Errorf("-syscalls needs perf (tools/bench/setup.sh installs linux-perf)")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := groupCommand(ctx, "perf", "stat", "-x,", "-e", strings.Join(syscallEvents(), ","), "--", "true")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("-syscalls: perf stat cannot count syscall tracepoints: %v: %s", err, tailLines(string(out), 3))
	}
	return nil
}

// syscallCounter is one perf stat attached to a target's processes.
//
// Invariant: the perf process is registered in procs from start until
// finish (or killAll) reaps it, so it never outlives the bench.
type syscallCounter struct {
	p   *proc
	out string // perf's -o file
}

// startSyscallCounter attaches perf stat to the processes pids (every
// thread of each). perf runs on cpus (the load CPUs), not beside the
// proxy.
func startSyscallCounter(pids []int, cpus, out string) (*syscallCounter, error) {
	if len(pids) == 0 {
		return nil, fmt.Errorf("no process to count")
	}
	ps := make([]string, len(pids))
	for i, p := range pids {
		ps[i] = strconv.Itoa(p)
	}
	_ = os.Remove(out)
	p, err := startProc("perf-stat", cpus, out+".log", "", nil,
		"perf", "stat", "-x,", "-o", out, "-e", strings.Join(syscallEvents(), ","), "-p", strings.Join(ps, ","))
	if err != nil {
		return nil, err
	}
	// perf opens one counter per event and thread before it counts; a
	// request sent before that would be missed.
	time.Sleep(200 * time.Millisecond)
	if p.exited() {
		return nil, fmt.Errorf("perf stat exited at once%s", p.logTail())
	}
	return &syscallCounter{p: p, out: out}, nil
}

// finish stops perf (SIGINT: perf stat prints its counts on it) and
// returns the count of each tracepoint, by name without its
// "syscalls:sys_enter_" prefix, with the total under "all".
func (s *syscallCounter) finish() (map[string]uint64, error) {
	_ = syscall.Kill(s.p.pid(), syscall.SIGINT)
	select {
	case <-s.p.done:
	case <-time.After(10 * time.Second):
	}
	s.p.stop(time.Second) // reaps and unregisters; a no-op signal if it is gone
	b, err := os.ReadFile(s.out)
	if err != nil {
		return nil, fmt.Errorf("perf stat wrote nothing: %v%s", err, s.p.logTail())
	}
	return parsePerfStat(string(b))
}

// parsePerfStat reads perf stat's CSV output (-x,): one line per event,
// count first and event name third; '#' lines are comments.
func parsePerfStat(out string) (map[string]uint64, error) {
	counts := map[string]uint64{}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) < 3 {
			return nil, fmt.Errorf("perf stat: unexpected line %q", line)
		}
		ev := f[2]
		var n uint64
		if f[0] != "<not counted>" { // counted by no thread that ran: none
			var err error
			if n, err = strconv.ParseUint(f[0], 10, 64); err != nil {
				return nil, fmt.Errorf("perf stat: %s: %s", ev, f[0])
			}
		}
		name := strings.TrimPrefix(ev, "syscalls:sys_enter_")
		if ev == syscallAll {
			name = "all"
		}
		counts[name] += n
	}
	if _, ok := counts["all"]; !ok {
		return nil, fmt.Errorf("perf stat: no %s count in its output", syscallAll)
	}
	return counts, nil
}

// syscallsPerRequest folds the counts into the report's columns, each
// divided by the completed requests.
func syscallsPerRequest(counts map[string]uint64, requests int64) map[string]float64 {
	if requests <= 0 {
		return nil
	}
	per := map[string]float64{}
	rq := float64(requests)
	grouped := uint64(0)
	for _, g := range syscallGroups {
		var n uint64
		for _, c := range g.calls {
			n += counts[c]
		}
		grouped += n
		per[g.name] = float64(n) / rq
	}
	all := counts["all"]
	per["all"] = float64(all) / rq
	if all > grouped {
		per["other"] = float64(all-grouped) / rq
	} else {
		per["other"] = 0
	}
	return per
}

// countSyscalls starts a counter for a measured run of t, or returns nil
// (and logs why) when the run will go without one.
func (b *bench) countSyscalls(t *target, pt point, rep int, tag string) *syscallCounter {
	if !b.o.syscalls || t.proc == nil {
		return nil
	}
	out := filepath.Join(b.logs, "syscalls", fmt.Sprintf("%s-%s-c%d-r%d.csv", t.name, slug(pt.Body), pt.Conns, rep))
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		logf("%s  syscall count: %v", tag, err)
		return nil
	}
	pids, err := groupPIDs(t.proc.pgid)
	if err != nil {
		logf("%s  syscall count: %v", tag, err)
		return nil
	}
	c, err := startSyscallCounter(pids, b.lay.loadCPUs, out)
	if err != nil {
		logf("%s  syscall count: %v", tag, err)
		return nil
	}
	return c
}
