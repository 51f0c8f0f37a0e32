package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
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

// checkSyscallCounting fails when perf cannot count the tracepoints of a
// process it attaches to (not installed, no tracefs, perf_event_paranoid
// or ptrace rules too strict), before any run is spent: it counts a
// sleeping child through the same path as a run.
func checkSyscallCounting(ctx context.Context, dir string) error {
	if _, err := exec.LookPath("perf"); err != nil {
		return fmt.Errorf("-syscalls needs perf (tools/bench/setup.sh installs linux-perf)")
	}
	sleeper, err := startProc("sleep", "", "", "", nil, "sleep", "60")
	if err != nil {
		return err
	}
	defer sleeper.stop(time.Second)
	c, err := startSyscallCounter([]int{sleeper.pid()}, "", filepath.Join(dir, "syscall-check.csv"))
	if err != nil {
		return fmt.Errorf("-syscalls: %v", err)
	}
	defer c.close()
	if err := c.enable(); err != nil {
		return fmt.Errorf("-syscalls: %v", err)
	}
	if _, err := c.finish(); err != nil {
		return fmt.Errorf("-syscalls: %v", err)
	}
	return nil
}

// syscallCounter is one perf stat attached to a target's processes. It
// starts with its counters disabled and counts between enable and finish,
// which it asks for through perf's control FIFOs (--control): perf acks
// each command once it is done, so the window is exactly the caller's.
//
// Invariant: one goroutine (a run's measure) uses a counter. The perf
// process is registered in procs from start until close (or killAll)
// stops it, so it never outlives the bench; ctl and ack are open exactly
// as long, and what is read from ack is bounded by command.
type syscallCounter struct {
	p        *proc
	out      string   // perf's -o file
	ctl, ack *os.File // the control FIFOs, opened read-write (never block)
	closed   bool
}

// syscallAckWait bounds the wait for perf's ack: the first one comes only
// after perf has opened a counter per event and thread, which took up to
// a second beside a busy loop.
const syscallAckWait = 10 * time.Second

// startSyscallCounter attaches perf stat, counters disabled, to the
// processes pids (every thread of each, and threads they start later:
// perf's counters are inherited). perf runs on cpus (the load CPUs), not
// beside the proxy.
func startSyscallCounter(pids []int, cpus, out string) (*syscallCounter, error) {
	if len(pids) == 0 {
		return nil, fmt.Errorf("no process to count")
	}
	ps := make([]string, len(pids))
	for i, p := range pids {
		ps[i] = strconv.Itoa(p)
	}
	c := &syscallCounter{out: out}
	for _, f := range []struct {
		path string
		dst  **os.File
	}{{out + ".ctl", &c.ctl}, {out + ".ack", &c.ack}} {
		_ = os.Remove(f.path)
		if err := unix.Mkfifo(f.path, 0o600); err != nil {
			c.close()
			return nil, fmt.Errorf("mkfifo %s: %v", f.path, err)
		}
		// Read-write: opening a FIFO so never waits for the other end.
		file, err := os.OpenFile(f.path, os.O_RDWR, 0)
		if err != nil {
			c.close()
			return nil, err
		}
		*f.dst = file
	}
	_ = os.Remove(out)
	p, err := startProc("perf-stat", cpus, out+".log", "", nil,
		"perf", "stat", "-x,", "-o", out, "-D", "-1", "--control", "fifo:"+c.ctl.Name()+","+c.ack.Name(),
		"-e", strings.Join(syscallEvents(), ","), "-p", strings.Join(ps, ","))
	if err != nil {
		c.close()
		return nil, err
	}
	c.p = p
	return c, nil
}

// command sends one control command to perf and waits for its ack.
func (c *syscallCounter) command(cmd string) error {
	if _, err := c.ctl.WriteString(cmd + "\n"); err != nil {
		return fmt.Errorf("perf stat control: %v", err)
	}
	if err := c.ack.SetReadDeadline(time.Now().Add(syscallAckWait)); err != nil {
		return err
	}
	// perf answers "ack\n" and a NUL; a reply may come in pieces, so the
	// last few bytes read are kept, never more.
	var got []byte
	buf := make([]byte, 16)
	for !strings.Contains(string(got), "ack\n") {
		n, err := c.ack.Read(buf)
		if err != nil {
			if c.p.exited() {
				return fmt.Errorf("perf stat exited%s", c.p.logTail())
			}
			return fmt.Errorf("perf stat did not ack %q: %v%s", cmd, err, c.p.logTail())
		}
		got = append(got[max(0, len(got)-3):], buf[:n]...)
	}
	return nil
}

// enable starts the count.
func (c *syscallCounter) enable() error { return c.command("enable") }

// finish ends the count and returns the count of each tracepoint, by
// name without its "syscalls:sys_enter_" prefix, with the total under
// "all". perf prints its counts when SIGINT ends it.
func (c *syscallCounter) finish() (map[string]uint64, error) {
	if err := c.command("disable"); err != nil {
		c.close()
		return nil, err
	}
	_ = c.p.cmd.Process.Signal(os.Interrupt) // by pidfd: never another process
	select {
	case <-c.p.done:
	case <-time.After(syscallAckWait):
	}
	c.close()
	b, err := os.ReadFile(c.out)
	if err != nil {
		return nil, fmt.Errorf("perf stat wrote nothing: %v%s", err, c.p.logTail())
	}
	return parsePerfStat(string(b))
}

// close stops perf if it still runs and closes and removes the FIFOs.
// Safe to call more than once.
func (c *syscallCounter) close() {
	if c.closed {
		return
	}
	c.closed = true
	if c.p != nil {
		if c.p.exited() {
			c.p.forget()
		} else {
			c.p.stop(time.Second)
		}
	}
	for _, f := range []*os.File{c.ctl, c.ack} {
		if f != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}
}

// parsePerfStat reads perf stat's CSV output (-x,): one line per event,
// count first and event name third; '#' lines are comments.
func parsePerfStat(out string) (map[string]uint64, error) {
	counts := map[string]uint64{}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		// Besides comments, perf writes "Events enabled" and "Events
		// disabled" into the file for each control command.
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "Events ") {
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
	per["other"] = float64(all-min(all, grouped)) / rq
	return per
}

// countSyscalls attaches a counter, not yet enabled, for a measured run
// of t. It returns nil and no error when the run counts nothing (no
// -syscalls, or t has no process), and nil and the reason when it could
// not attach.
func (b *bench) countSyscalls(t *target, pt point, rep int) (*syscallCounter, error) {
	if !b.o.syscalls || t.proc == nil {
		return nil, nil
	}
	out := filepath.Join(b.logs, "syscalls", fmt.Sprintf("%s-%s-c%d-r%d.csv", t.name, slug(pt.Body), pt.Conns, rep))
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return nil, err
	}
	pids, err := groupPIDs(t.proc.pgid)
	if err != nil {
		return nil, err
	}
	return startSyscallCounter(pids, b.lay.loadCPUs, out)
}
