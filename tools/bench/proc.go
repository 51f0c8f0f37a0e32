package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child process started by the bench in its own process group, so
// that it and everything it forks (nginx workers, ...) can be signalled at
// once with kill(-pgid) and so that a terminal ^C reaches only the bench,
// which then stops its children itself.
type proc struct {
	name string
	cmd  *exec.Cmd
	pgid int
	log  string // combined stdout+stderr file, "" if discarded

	done    chan struct{} // closed when the process has been reaped
	waitErr error
}

// procs is the registry of every process the bench has started and not yet
// stopped. killAll stops them all; main defers it and the signal handler
// calls it, so nothing outlives the bench.
var procs = struct {
	sync.Mutex
	m map[*proc]bool
}{m: map[*proc]bool{}}

// startProc starts argv in a new process group. When cpus is not empty the
// command runs under `taskset -c cpus` (taskset execs the command, so the PID
// is the command's own). Output goes to logPath when it is not empty.
func startProc(name, cpus, logPath, dir string, env []string, argv ...string) (*proc, error) {
	if len(argv) == 0 {
		return nil, errors.New("startProc: empty argv")
	}
	if cpus != "" {
		argv = append([]string{"taskset", "-c", cpus}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = env
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true,
		// Backstop if the bench itself is SIGKILLed: the direct child
		// gets SIGKILL. (Grandchildren are covered by killAll in every
		// other exit path.)
		Pdeathsig: syscall.SIGKILL,
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	var lf *os.File
	if logPath != "" {
		f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		lf = f
		cmd.Stdout, cmd.Stderr = f, f
	}
	procs.Lock()
	defer procs.Unlock()
	if err := cmd.Start(); err != nil {
		if lf != nil {
			lf.Close()
		}
		return nil, fmt.Errorf("start %s (%s): %w", name, strings.Join(argv, " "), err)
	}
	p.pgid = cmd.Process.Pid // Setpgid with Pgid 0: pgid == pid
	procs.m[p] = true
	watchdogTell("add", p.pgid)
	go func() {
		p.waitErr = cmd.Wait()
		if lf != nil {
			lf.Close()
		}
		close(p.done)
	}()
	return p, nil
}

// groupCommand is exec.CommandContext for short synchronous helpers (go
// build, go tool pprof, perf report): the command gets its own process
// group, and cancelling ctx kills the whole group, children included.
func groupCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// pid is the PID of the process (taskset has exec'd it, so it is the real one).
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the whole process group, waits up to grace for the
// leader to exit, then SIGKILLs the group. Safe to call more than once.
func (p *proc) stop(grace time.Duration) {
	if p == nil {
		return
	}
	_ = syscall.Kill(-p.pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
	}
	// Whatever is left in the group (the leader if it ignored SIGTERM,
	// workers that outlived their master) goes now.
	_ = syscall.Kill(-p.pgid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(2 * time.Second):
	}
	p.forget()
}

// forget unregisters p without signalling it: for a process without
// children that is known to have exited and been reaped, whose group ID
// may already be another's.
func (p *proc) forget() {
	procs.Lock()
	delete(procs.m, p)
	procs.Unlock()
	watchdogTell("del", p.pgid)
}

// killAll SIGKILLs every process group still registered. It does not wait
// long: it is for exit paths.
func killAll() {
	procs.Lock()
	list := make([]*proc, 0, len(procs.m))
	for p := range procs.m {
		list = append(list, p)
	}
	procs.Unlock()
	for _, p := range list {
		_ = syscall.Kill(-p.pgid, syscall.SIGKILL)
	}
	for _, p := range list {
		select {
		case <-p.done:
		case <-time.After(2 * time.Second):
		}
		procs.Lock()
		delete(procs.m, p)
		procs.Unlock()
		watchdogTell("del", p.pgid)
	}
}

// The watchdog covers the one exit path killAll cannot: the bench being
// SIGKILLed (or crashing). Pdeathsig then kills the bench's direct children,
// but not what they forked (nginx workers). The watchdog is the bench binary
// re-executed with -watchdog in its own process group, reading "add PGID" /
// "del PGID" lines on stdin; when stdin reaches EOF (the bench is gone,
// however it died) it SIGKILLs every group still registered and exits.
var watchdog struct {
	sync.Mutex
	w *os.File
}

// startWatchdog starts the watchdog process. Failure is not fatal: the
// normal exit paths still clean up.
func startWatchdog() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, "-watchdog")
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return err
	}
	r.Close()
	go func() { _ = cmd.Wait() }()
	watchdog.Lock()
	watchdog.w = w
	watchdog.Unlock()
	return nil
}

func watchdogTell(verb string, pgid int) {
	watchdog.Lock()
	defer watchdog.Unlock()
	if watchdog.w != nil {
		fmt.Fprintf(watchdog.w, "%s %d\n", verb, pgid)
	}
}

// stopWatchdog closes the pipe; the watchdog finds nothing left and exits.
func stopWatchdog() {
	watchdog.Lock()
	defer watchdog.Unlock()
	if watchdog.w != nil {
		watchdog.w.Close()
		watchdog.w = nil
	}
}

// runWatchdog is the watchdog process: track groups from in, kill the ones
// left when in closes.
func runWatchdog(in io.Reader) {
	live := map[int]bool{}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		var verb string
		var pgid int
		if _, err := fmt.Sscanf(sc.Text(), "%s %d", &verb, &pgid); err != nil || pgid <= 1 {
			continue
		}
		switch verb {
		case "add":
			live[pgid] = true
		case "del":
			delete(live, pgid)
		}
	}
	for pgid := range live {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
}

// waitListening polls a TCP connect to addr until it succeeds, the process
// exits, or timeout passes.
func waitListening(addr string, p *proc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited before listening on %s (%v)%s", p.name, addr, p.waitErr, p.logTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: nothing listening on %s after %v%s", p.nameOr("process"), addr, timeout, p.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *proc) nameOr(def string) string {
	if p == nil {
		return def
	}
	return p.name
}

// logTail returns the last lines of the process log, prefixed for an error
// message, or "".
func (p *proc) logTail() string {
	if p == nil || p.log == "" {
		return ""
	}
	b, err := os.ReadFile(p.log)
	if err != nil || len(b) == 0 {
		return ""
	}
	return "\n--- " + p.log + " (tail) ---\n" + tailLines(string(b), 15)
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
