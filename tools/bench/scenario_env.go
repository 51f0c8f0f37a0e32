package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// This file is the harness of the reliability scenarios (scenario.Run):
// what a scenario gets to start apex and its backends, and how it reads
// the figures of a running process from /proc.

// scenarioEnv is what a reliability scenario runs in. It is used by one
// goroutine (the scenario's), except where a method says otherwise.
type scenarioEnv struct {
	o   *options
	lay layoutPlan
	dir string // <out>/<scenario>: the report, generated configs, process logs
	tmp string // scratch space, removed afterwards
	rep *scenarioReport

	// mu guards started: every process the scenario started and has not
	// stopped; stopAll stops them when the scenario returns.
	mu      sync.Mutex
	started []*proc
	apexes  []*apexProc // every apex started, for checkApexes
}

// runReliability runs the reliability scenario s and writes its report to
// <out>/<name>/report.json and report.md. The exit code is 0 when every
// pass criterion held, 1 when one failed or the scenario could not run,
// 2 on bad flags and 130 when interrupted.
func runReliability(ctx context.Context, o *options, s scenario) int {
	lay, err := planLayout(o, allowedCPUs())
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	if lay.name == "pinned" {
		if _, err := exec.LookPath("taskset"); err != nil {
			fmt.Fprintln(os.Stderr, "bench: the pinned layout needs taskset (util-linux); use -layout free")
			return 1
		}
	}
	dir, err := filepath.Abs(filepath.Join(o.out, s.Name))
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "apex-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	defer func() {
		if o.keepTmp {
			logf("temp dir kept: %s", tmp)
		} else {
			os.RemoveAll(tmp)
		}
	}()
	// Thousands of client sockets live in this process (10,000 idle
	// connections, 2,000 slowloris ones).
	if n, err := raiseNoFile(); err != nil {
		logf("warning: RLIMIT_NOFILE: %v", err)
	} else {
		logf("bench: open file limit %d", n)
	}
	env := newScenarioEnv(o, lay, dir, tmp, s)
	b := &bench{o: o, tmp: tmp}
	if err := b.prepareApex(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "bench: apex:", err)
		return 1
	}
	// In the pinned layout the bench's own clients and in-process
	// backends run beside the evio backend and wrk, off the proxy's CPU.
	if lay.loadCPUs != "" {
		if err := pinSelf(lay.loadCPUs); err != nil {
			logf("warning: could not pin the bench to CPU %s: %v", lay.loadCPUs, err)
		}
	}
	q, quiet := b.waitQuiet(ctx, s.Name)
	env.rep.Quiet, env.rep.Load1Before, env.rep.BusyPctBefore = quiet, q.load1, q.busyPct
	if !quiet {
		env.rep.note("the machine was not quiet before the run (%s)", q)
	}
	logf("scenario %s: %s", s.Name, s.Description)
	t0 := time.Now()
	runErr := s.Run(ctx, env)
	env.checkApexes()
	env.stopAll()
	env.rep.Finished = time.Now().Format(time.RFC3339)
	env.rep.DurationS = time.Since(t0).Seconds()
	if runErr != nil {
		env.rep.Error = runErr.Error()
		logf("scenario %s: %v", s.Name, runErr)
	}
	md, err := env.rep.write(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: writing the report:", err)
		return 1
	}
	fmt.Print(md)
	logf("wrote %s/report.json, report.md and the logs of every process", dir)
	switch {
	case ctx.Err() != nil:
		return 130
	case !env.rep.passed():
		logf("scenario %s: FAIL", s.Name)
		return 1
	}
	logf("scenario %s: PASS", s.Name)
	return 0
}

func newScenarioEnv(o *options, lay layoutPlan, dir, tmp string, s scenario) *scenarioEnv {
	return &scenarioEnv{o: o, lay: lay, dir: dir, tmp: tmp, rep: newScenarioReport(s, o, lay)}
}

// track registers a started process for stopAll.
func (e *scenarioEnv) track(p *proc) {
	e.mu.Lock()
	e.started = append(e.started, p)
	e.mu.Unlock()
}

// stopAll stops every process the scenario started (proc.stop is
// idempotent, so a scenario may already have stopped some).
func (e *scenarioEnv) stopAll() {
	e.mu.Lock()
	list := e.started
	e.started = nil
	e.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i].stop(5 * time.Second)
	}
}

// apexSpec is the configuration of one apex for a scenario.
type apexSpec struct {
	name     string // file stem of its config and log; "apex" by default
	upstream string // the backend's host:port; "" answers every request with apex's own 200
	server   string // extra [server] lines
	backend  string // extra [[backend]] lines; -apex-owner and -apex-backend override them key by key
	tables   string // sub-tables of the backend, e.g. "[backend.limits]\nqueue = 8"
	loops    int    // [server] loops; 0: 1 in the pinned layout, apex's default in the free one
	nofile   int    // > 0: start apex with RLIMIT_NOFILE soft = hard = nofile
}

// apexProc is a running apex.
type apexProc struct {
	*proc
	addr    string // client listener
	admin   string // [admin] listener (/debug/pprof/)
	config  string // generated TOML
	stopped atomic.Bool
}

// stop stops apex on purpose (an exit afterwards is not a crash).
func (a *apexProc) stop(grace time.Duration) {
	a.stopped.Store(true)
	a.proc.stop(grace)
}

// checkApexes fails the scenario for every apex that exited without
// being stopped (a crash, with the panic from its log in the notes) and
// records that the others were still running.
func (e *scenarioEnv) checkApexes() {
	e.mu.Lock()
	list := e.apexes
	e.mu.Unlock()
	for _, a := range list {
		if a.stopped.Load() {
			continue
		}
		alive := !a.exited()
		e.rep.check(a.name, "still running at the end of the scenario", b2f(alive), "", "1 (yes)", alive)
		if !alive {
			e.rep.note("%s exited during the scenario (%v); the end of its log (%s):\n\n```\n%s\n```", a.name, a.waitErr, a.log, crashTail(a.log))
		}
	}
}

// crashTail returns the panic message and the first frames from a log,
// or its last lines when there is no panic.
func crashTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	s := string(b)
	if i := strings.Index(s, "panic:"); i >= 0 {
		lines := strings.Split(s[i:], "\n")
		return strings.Join(lines[:min(len(lines), 16)], "\n")
	}
	return tailLines(s, 10)
}

// apexScenarioConfig renders the TOML of spec with the listeners given.
// owner and extra are the -apex-owner and -apex-backend flags.
func apexScenarioConfig(spec apexSpec, listen, admin string, pinned bool, owner, extra string) string {
	var b strings.Builder
	b.WriteString("# generated by tools/bench for a reliability scenario\n[server]\n")
	fmt.Fprintf(&b, "listen = %q\n", listen)
	switch {
	case spec.loops > 0:
		fmt.Fprintf(&b, "loops = %d\n", spec.loops)
	case pinned:
		b.WriteString("loops = 1\n")
	}
	if spec.server != "" {
		b.WriteString(strings.TrimRight(spec.server, "\n") + "\n")
	}
	fmt.Fprintf(&b, "\n[admin]\nlisten = %q\n\n[log]\naccess = \"off\"\n\n", admin)
	if spec.upstream == "" {
		b.WriteString("[[route]]\nreturn = 200\nbody = \"Hello, world!\\n\"\n")
		return b.String()
	}
	user := ""
	if owner != "" {
		user = fmt.Sprintf("owner = %q\n", owner)
	}
	user += extra
	fmt.Fprintf(&b, "[[backend]]\nname = \"up\"\nservers = [%q]\n", spec.upstream)
	if lines := mergeTOMLLines(spec.backend, user); lines != "" {
		b.WriteString(lines + "\n")
	}
	if spec.tables != "" {
		b.WriteString("\n" + strings.TrimRight(spec.tables, "\n") + "\n")
	}
	b.WriteString("\n[[route]]\nbackend = \"up\"\n")
	return b.String()
}

// mergeTOMLLines joins two blocks of "key = value" lines; a key set in
// override replaces the same key of base (so that -apex-backend can change
// what a scenario chose without making a duplicate key).
func mergeTOMLLines(base, override string) string {
	key := func(line string) string {
		k, _, ok := strings.Cut(line, "=")
		if !ok {
			return ""
		}
		return strings.TrimSpace(k)
	}
	over := map[string]string{}
	var overOrder []string
	for _, l := range strings.Split(override, "\n") {
		if l = strings.TrimSpace(l); l == "" {
			continue
		}
		k := key(l)
		if _, dup := over[k]; !dup {
			overOrder = append(overOrder, k)
		}
		over[k] = l
	}
	var out []string
	used := map[string]bool{}
	for _, l := range strings.Split(base, "\n") {
		if l = strings.TrimSpace(l); l == "" {
			continue
		}
		if o, ok := over[key(l)]; ok && key(l) != "" {
			l = o
			used[key(l)] = true
		}
		out = append(out, l)
	}
	for _, k := range overOrder {
		if !used[k] {
			out = append(out, over[k])
		}
	}
	return strings.Join(out, "\n")
}

// startApex writes spec's config into the scenario's directory, starts
// apex (pinned to the proxy CPUs in the pinned layout) and waits until it
// accepts connections.
func (e *scenarioEnv) startApex(spec apexSpec) (*apexProc, error) {
	if spec.name == "" {
		spec.name = "apex"
	}
	if e.o.apexBin == "" {
		return nil, errors.New("no apex binary (prepareApex was not called)")
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	aport, err := freePort()
	if err != nil {
		return nil, err
	}
	a := &apexProc{addr: fmt.Sprintf("127.0.0.1:%d", port), admin: fmt.Sprintf("127.0.0.1:%d", aport)}
	cfg := apexScenarioConfig(spec, a.addr, a.admin, e.lay.name == "pinned", e.o.apexOwner, strings.ReplaceAll(e.o.apexExtra, `\n`, "\n"))
	a.config = filepath.Join(e.dir, spec.name+".toml")
	if err := os.WriteFile(a.config, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	e.rep.configs[spec.name] = cfg
	argv := []string{e.o.apexBin, "-config", a.config}
	if spec.nofile > 0 {
		// sh applies the limit (soft and hard) and execs apex, so the
		// PID is apex's; apex's own raise to the hard limit is then a
		// no-op.
		argv = append([]string{"sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, spec.nofile)}, argv...)
	}
	p, err := startProc(spec.name, e.lay.proxyCPUs, filepath.Join(e.dir, spec.name+".log"), e.dir, nil, argv...)
	if err != nil {
		return nil, err
	}
	e.track(p)
	a.proc = p
	e.mu.Lock()
	e.apexes = append(e.apexes, a)
	e.mu.Unlock()
	if err := waitListening(a.addr, p, 15*time.Second); err != nil {
		p.stop(2 * time.Second)
		return nil, err
	}
	logf("%s: listening on %s, admin %s (pid %d)", spec.name, a.addr, a.admin, p.pid())
	return a, nil
}

// startEvio starts the evio backend (the bench re-executed with
// -serve-backend) on addr, or on a free port when addr is "", pinned to
// the load CPUs, and waits until it listens. Its output is appended to
// <dir>/backend.log, so a restarted backend keeps one log.
func (e *scenarioEnv) startEvio(addr string) (*proc, string, error) {
	if addr == "" {
		port, err := freePort()
		if err != nil {
			return nil, "", err
		}
		addr = fmt.Sprintf("127.0.0.1:%d", port)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	p, err := startProc("backend", e.lay.loadCPUs, filepath.Join(e.dir, "backend.log"), "", nil,
		exe, "-serve-backend", addr, "-backend-loops", strconv.Itoa(max(e.lay.backendLoops, 1)))
	if err != nil {
		return nil, "", err
	}
	e.track(p)
	if err := waitListening(addr, p, 10*time.Second); err != nil {
		p.stop(2 * time.Second)
		return nil, "", err
	}
	return p, addr, nil
}

// startNginx starts nginx as the bench configures it (targets.go) in front
// of backend, pinned like apex.
func (e *scenarioEnv) startNginx(backend string) (*target, error) {
	t, err := startTarget(tNginx, targetEnv{
		tmp: e.tmp, backendAddr: backend, pinned: e.lay.name == "pinned", proxyCPUs: e.lay.proxyCPUs,
		upstreamKA: 64, startWait: 15 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	e.track(t.proc)
	if b, err := os.ReadFile(t.config); err == nil {
		e.rep.configs["nginx"] = string(b)
	}
	return t, nil
}

// ---- process figures from /proc ----

// statusKiB reads one size line ("VmRSS:", "VmHWM:") of /proc/PID/status.
func statusKiB(pid int, key string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	k, ok := parseStatusKiB(b, key)
	if !ok {
		return 0, fmt.Errorf("pid %d: no %s line", pid, key)
	}
	return k, nil
}

// rssKiB is the resident set size of pid (VmRSS), KiB.
func rssKiB(pid int) (int64, error) { return statusKiB(pid, "VmRSS:") }

// openFDs counts the open descriptors of pid (entries of /proc/PID/fd).
func openFDs(pid int) (int, error) {
	ents, err := os.ReadDir(filepath.Join(procRoot, strconv.Itoa(pid), "fd"))
	if err != nil {
		return 0, err
	}
	return len(ents), nil
}

// cpuTicksOf is utime+stime of pid, in clock ticks (1/userHZ s).
func cpuTicksOf(pid int) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	s, err := parseStat(b)
	if err != nil {
		return 0, err
	}
	return s.utime + s.stime, nil
}

// fileLimit is the soft RLIMIT_NOFILE of pid, from /proc/PID/limits.
func fileLimit(pid int) (int, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "limits"))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "Max open files"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				return strconv.Atoi(f[0])
			}
		}
	}
	return 0, fmt.Errorf("pid %d: no Max open files line", pid)
}

// goroutines reads "goroutine profile: total N" from apex's admin
// listener (/debug/pprof/goroutine?debug=1).
func goroutines(ctx context.Context, admin string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/debug/pprof/goroutine?debug=1", nil)
	if err != nil {
		return 0, err
	}
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(io.LimitReader(resp.Body, 4096)).ReadString('\n')
	if err != nil && line == "" {
		return 0, err
	}
	return parseGoroutineTotal(line)
}

func parseGoroutineTotal(line string) (int, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "goroutine profile: total ")
	if !ok {
		return 0, fmt.Errorf("not a goroutine profile: %q", truncate(line, 80))
	}
	return strconv.Atoi(rest)
}

// rssWatch follows the resident memory of some processes during a phase:
// base is their summed VmRSS at the start, peak the highest sum seen by a
// sampler every 50 ms, raised to the summed VmHWM when VmHWM could be reset
// at the start (clear_refs; for one process that is the exact peak).
type rssWatch struct {
	pids  []int
	base  int64
	hwmOK bool
	peak  atomic.Int64
	stop  chan struct{}
	done  chan struct{}
}

func watchRSS(pids ...int) *rssWatch {
	w := &rssWatch{pids: pids, stop: make(chan struct{}), done: make(chan struct{}), hwmOK: true}
	for _, pid := range pids {
		if os.WriteFile(filepath.Join(procRoot, strconv.Itoa(pid), "clear_refs"), []byte("5"), 0) != nil {
			w.hwmOK = false
		}
	}
	w.base = w.sum("VmRSS:")
	w.peak.Store(w.base)
	go func() {
		defer close(w.done)
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tk.C:
				if v := w.sum("VmRSS:"); v > w.peak.Load() {
					w.peak.Store(v)
				}
			}
		}
	}()
	return w
}

func (w *rssWatch) sum(key string) int64 {
	var s int64
	for _, pid := range w.pids {
		if k, err := statusKiB(pid, key); err == nil {
			s += k
		}
	}
	return s
}

// finish stops the sampler and returns the base, the peak and the current
// RSS, KiB.
func (w *rssWatch) finish() (base, peak, last int64) {
	close(w.stop)
	<-w.done
	peak = w.peak.Load()
	if w.hwmOK {
		peak = max(peak, w.sum("VmHWM:"))
	}
	return w.base, peak, w.sum("VmRSS:")
}

// raiseNoFile lifts this process's soft RLIMIT_NOFILE to its hard limit
// (Go does so at start-up since 1.19; this makes it explicit and logs the
// figure) and returns the soft limit in force.
func raiseNoFile() (uint64, error) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
			return 0, err
		}
	}
	return rl.Cur, nil
}

// pinSelf restricts every thread of this process to cpus (a taskset
// list). Threads the Go runtime creates later inherit the mask of the
// thread that creates them, so the whole process stays there.
func pinSelf(cpus string) error {
	list, err := parseCPUList(cpus)
	if err != nil {
		return err
	}
	var set unix.CPUSet
	for _, c := range list {
		set.Set(c)
	}
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, syscall.ESRCH) {
			return err
		}
	}
	return nil
}
