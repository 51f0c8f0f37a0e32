// Command bench compares apex with a direct connection, nginx and haproxy
// in front of the same evio echo backend, driving load with wrk.
//
//	go run ./tools/bench                  # full matrix, ~20 min on 2 CPUs
//	go run ./tools/bench -quick           # one short point per target, < 2 min
//	go run ./tools/bench -profile         # CPU profile of apex under load
//
// See docs/BENCHMARKS.md and docs/PROFILING.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	out          string
	quick        bool
	syscalls     bool // count the proxy's system calls per request (perf stat)
	targets      []string
	targetsSet   bool // -targets was given (a scenario's Targets do not replace it)
	conns        []int
	conns64k     []int
	duration     time.Duration
	warmup       time.Duration
	repeats      int
	interleave   bool
	layout       string
	scenario     string
	apexConns    int
	apexOwner    string
	apexExtra    string
	apexBin      string
	apexBaseBin  string
	nginxKA      int
	wrkThreads   int
	proxyCPUs    string
	loadCPUs     string
	backendLoops int
	maxLoad      float64
	maxBusy      float64
	quietTimeout time.Duration
	keepTmp      bool

	profile       bool
	profileTarget string
	profileDur    time.Duration
	profileConns  int
	profilePath   string

	serveBackend string // hidden: run the evio backend on this address
	serveFloor   string // hidden: run the floor forwarder on this address
	floorUp      string // hidden: the floor forwarder's upstream
	serveOrigin  string // hidden: run the origin responder on this address
	serveFPipe   string // hidden: run the floor-pipe forwarder on this address
	serveFURing  string // hidden: run the floor-uring forwarder on this address
	watchdog     bool   // hidden: run as the cleanup watchdog (see proc.go)
}

// hiddenFlags are internal and left out of -h.
// serveHidden runs the server a hidden -serve-* flag asks for, as the bench
// re-executes itself to place it with taskset: the evio backend (returns
// nil when stopped), or the floor, floor-pipe, floor-uring and origin, which return only
// on failure. name is "" when no such flag was given.
func serveHidden(o *options) (name string, err error) {
	switch {
	case o.serveBackend != "":
		return "backend", serveBackend(o.serveBackend, o.backendLoops)
	case o.serveFloor != "":
		return tFloor, serveFloor(o.serveFloor, o.floorUp)
	case o.serveFPipe != "":
		return tFloorPipe, serveFloorPipe(o.serveFPipe, o.floorUp)
	case o.serveFURing != "":
		return tFloorURing, serveFloorURing(o.serveFURing, o.floorUp)
	case o.serveOrigin != "":
		return tOrigin, serveOrigin(o.serveOrigin)
	}
	return "", nil
}

var hiddenFlags = map[string]bool{"serve-backend": true, "serve-floor": true, "floor-upstream": true, "serve-origin": true, "serve-floor-pipe": true, "serve-floor-uring": true, "watchdog": true}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var targets, conns, conns64k string
	fs.StringVar(&o.out, "out", "bench-out", "output directory for results.json, results.md, charts, logs, profiles")
	fs.BoolVar(&o.quick, "quick", false, "one short point per target (small body, 64 conns, 5s, 1 repeat); explicit flags still win")
	fs.StringVar(&targets, "targets", strings.Join(allTargets, ","), "comma-separated targets: direct, apex, nginx, haproxy, floor (the blind forwarder that gives the floor of CPU per request), floor-pipe (the floor with Apex's upstream batching), floor-uring (floor-pipe on io_uring: one system call per loop turn), origin (a responder in the proxy's place: the client side's floor), or an apex variant ("+strings.Join(variantOrder, ", ")+"); a scenario may choose its own")
	fs.StringVar(&conns, "conns", "16,64,256", "connection counts for the 14-byte body (/)")
	fs.StringVar(&conns64k, "conns-64k", "64", "connection counts for the 64 KiB body (/64k); empty to skip")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each measured wrk run (whole seconds); with -scenario soak, the length of the soak")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured wrk run before each point (0 to skip)")
	fs.IntVar(&o.repeats, "repeats", 3, "measured runs per point (median and min–max reported)")
	fs.BoolVar(&o.interleave, "interleave", false, "start every target at once and take the repeats of each point target by target in turn (rep 1 of each, then rep 2, ...), so that slow drifts of a shared machine hit every target alike")
	fs.StringVar(&o.layout, "layout", "pinned", "pinned: proxy alone on its own CPU with one worker, backend+wrk on the others; free: nothing pinned, default workers")
	fs.StringVar(&o.scenario, "scenario", "", "run a registered scenario instead of the default matrix")
	fs.IntVar(&o.apexConns, "apex-conns", 64, "apex upstream connections per backend server ([[backend]] conns)")
	fs.StringVar(&o.apexOwner, "apex-owner", "", "apex [[backend]] owner: goroutine or loop (default: apex's own default)")
	fs.StringVar(&o.apexExtra, "apex-backend", "", "extra TOML lines for apex's [[backend]], e.g. 'pipeline = 8' (use \\n between lines)")
	fs.StringVar(&o.apexBin, "apex-bin", "", "use this apex-epoll binary instead of building ./cmd/apex-epoll")
	fs.StringVar(&o.apexBaseBin, "apex-base-bin", "", "the apex-epoll binary of the apex-base target (an older build, for an A/B in one run)")
	fs.IntVar(&o.nginxKA, "nginx-keepalive", 0, "nginx upstream keepalive, its idle upstream connection cache (default: the largest connection count of the run, so that nginx never closes upstream connections between requests)")
	fs.IntVar(&o.wrkThreads, "wrk-threads", 1, "wrk -t")
	fs.StringVar(&o.proxyCPUs, "proxy-cpus", "", "pinned layout: CPU list for the proxy (default: the last allowed CPU)")
	fs.StringVar(&o.loadCPUs, "load-cpus", "", "pinned layout: CPU list for backend and wrk (default: all other allowed CPUs)")
	fs.IntVar(&o.backendLoops, "backend-loops", 0, "evio loops of the backend (default: number of CPUs it is given)")
	fs.Float64Var(&o.maxLoad, "max-load", 0, "quiet check: wait until the 1-minute load average is at most this (default: the number of CPUs; it includes the bench's own previous runs)")
	fs.Float64Var(&o.maxBusy, "max-busy", 15, "quiet check: wait until at most this % of all CPU time is busy over 1 s")
	fs.DurationVar(&o.quietTimeout, "quiet-timeout", 60*time.Second, "longest wait for quiet before a run (the run is then marked not quiet)")
	fs.BoolVar(&o.syscalls, "syscalls", false, "count the proxy's system calls during each run (perf stat on syscall tracepoints) and report them per request; adds a little CPU to every system call")
	fs.BoolVar(&o.keepTmp, "keep-tmp", false, "keep the temp dir with generated configs")
	fs.BoolVar(&o.profile, "profile", false, "profile instead of benchmarking: pprof CPU profile of apex (+ perf record if installed) under load")
	fs.StringVar(&o.profileTarget, "profile-target", tApex, "target to profile with -profile (nginx/haproxy: perf only)")
	fs.DurationVar(&o.profileDur, "profile-duration", 20*time.Second, "length of each profile capture")
	fs.IntVar(&o.profileConns, "profile-conns", 64, "wrk connections while profiling")
	fs.StringVar(&o.profilePath, "profile-path", "/", "request path while profiling (/ or /64k)")
	fs.StringVar(&o.serveBackend, "serve-backend", "", "internal: serve the evio backend on ADDR")
	fs.StringVar(&o.serveFloor, "serve-floor", "", "internal: run the floor forwarder on ADDR")
	fs.StringVar(&o.floorUp, "floor-upstream", "", "internal: the floor forwarder's upstream ADDR")
	fs.StringVar(&o.serveOrigin, "serve-origin", "", "internal: run the origin responder on ADDR")
	fs.StringVar(&o.serveFPipe, "serve-floor-pipe", "", "internal: run the floor-pipe forwarder on ADDR (upstream: -floor-upstream)")
	fs.StringVar(&o.serveFURing, "serve-floor-uring", "", "internal: run the floor-uring forwarder on ADDR (upstream: -floor-upstream)")
	fs.BoolVar(&o.watchdog, "watchdog", false, "internal: kill the process groups named on stdin when it closes")
	fs.Usage = func() {
		w := os.Stderr
		fmt.Fprintf(w, "usage: go run ./tools/bench [flags]\n\n")
		fs.VisitAll(func(f *flag.Flag) {
			if hiddenFlags[f.Name] {
				return
			}
			name, usage := flag.UnquoteUsage(f)
			fmt.Fprintf(w, "  -%s %s\n    \t%s", f.Name, name, usage)
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
				if name == "string" {
					fmt.Fprintf(w, " (default %q)", f.DefValue)
				} else {
					fmt.Fprintf(w, " (default %s)", f.DefValue)
				}
			}
			fmt.Fprintln(w)
		})
		if names := scenarioNames(); len(names) > 0 {
			fmt.Fprintf(w, "\nscenarios: %s\n", strings.Join(names, ", "))
		}
	}
	if err := fs.Parse(args); err != nil {
		// -h has already printed the usage (fs.Usage)
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.quick {
		if !set["conns"] {
			conns = "64"
		}
		if !set["conns-64k"] {
			conns64k = ""
		}
		if !set["duration"] {
			o.duration = 5 * time.Second
		}
		if !set["warmup"] {
			o.warmup = time.Second
		}
		if !set["repeats"] {
			o.repeats = 1
		}
		if !set["quiet-timeout"] {
			o.quietTimeout = 10 * time.Second
		}
	}
	o.targetsSet = set["targets"]
	var err error
	if o.targets, err = parseTargets(targets); err != nil {
		return nil, err
	}
	if o.conns, err = parseInts(conns); err != nil {
		return nil, fmt.Errorf("-conns: %v", err)
	}
	if o.conns64k, err = parseInts(conns64k); err != nil {
		return nil, fmt.Errorf("-conns-64k: %v", err)
	}
	if o.layout != "pinned" && o.layout != "free" {
		return nil, fmt.Errorf("-layout must be pinned or free, not %q", o.layout)
	}
	if o.duration < time.Second {
		return nil, fmt.Errorf("-duration must be at least 1s")
	}
	if o.repeats < 1 {
		return nil, fmt.Errorf("-repeats must be at least 1")
	}
	if o.wrkThreads < 1 || o.apexConns < 1 || o.profileConns < 1 {
		return nil, fmt.Errorf("-wrk-threads, -apex-conns and -profile-conns must be positive")
	}
	if o.syscalls && o.profile {
		return nil, fmt.Errorf("-syscalls counts during benchmark runs, not with -profile")
	}
	if o.apexOwner != "" && o.apexOwner != "goroutine" && o.apexOwner != "loop" {
		return nil, fmt.Errorf("-apex-owner must be goroutine or loop, not %q", o.apexOwner)
	}
	if o.maxLoad <= 0 {
		o.maxLoad = float64(runtime.NumCPU())
	}
	if _, ok := bodyPaths[o.profilePath]; !ok {
		return nil, fmt.Errorf("-profile-path %q is not served by the backend", o.profilePath)
	}
	return o, nil
}

func parseTargets(s string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, t := range strings.Split(s, ",") {
		t = strings.TrimSpace(t)
		if t == "" || seen[t] {
			continue
		}
		ok := false
		for _, k := range knownTargets() {
			ok = ok || k == t
		}
		if !ok {
			return nil, fmt.Errorf("unknown target %q (known: %s)", t, strings.Join(knownTargets(), ", "))
		}
		seen[t] = true
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no targets")
	}
	return out, nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad count %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// defaultPoints is the standard matrix: the 14-byte body at each -conns,
// then the 64 KiB body at each -conns-64k.
func defaultPoints(o *options) []point {
	var pts []point
	for _, c := range o.conns {
		pts = append(pts, point{Body: "small", Path: "/", BodyBytes: bodyPaths["/"], Conns: c})
	}
	for _, c := range o.conns64k {
		pts = append(pts, point{Body: "64k", Path: "/64k", BodyBytes: bodyPaths["/64k"], Conns: c})
	}
	return pts
}

// defaultNginxKeepalive is the largest connection count of the points (at
// least 64). nginx's "keepalive N" is a per-worker cache of idle upstream
// connections, not a pool: with more requests in flight than N, every
// request beyond N opens a new upstream connection and closes it after the
// response, which measures connection churn rather than proxying (and
// loads the backend, shared by all targets, differently).
func defaultNginxKeepalive(pts []point) int {
	n := 64
	for _, pt := range pts {
		n = max(n, pt.Conns)
	}
	return n
}

// repoRoot finds the checkout: the nearest directory upward from the working
// directory with a go.mod declaring module github.com/apex-epoll/apex.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/apex-epoll/apex\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the apex checkout (no go.mod for github.com/apex-epoll/apex above the working directory)")
		}
		dir = parent
	}
}

// ---- logging and progress ----

var startTime = time.Now()

func logf(format string, args ...any) {
	el := time.Since(startTime).Round(time.Second)
	fmt.Fprintf(os.Stderr, "[%02d:%02d] %s\n", int(el.Minutes()), int(el.Seconds())%60, fmt.Sprintf(format, args...))
}

type progress struct {
	total, done int
	first       time.Time
	estPerRun   time.Duration
}

func (p *progress) eta() time.Duration {
	left := p.total - p.done
	if left <= 0 {
		return 0
	}
	per := p.estPerRun
	if p.done > 0 {
		per = time.Since(p.first) / time.Duration(p.done)
	}
	return (per * time.Duration(left)).Round(time.Second)
}

// ---- main ----

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if name, err := serveHidden(o); name != "" {
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
			os.Exit(1)
		}
		return
	}
	if o.watchdog {
		// outlive the bench's signals; only EOF on stdin ends it
		signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
		runWatchdog(os.Stdin)
		return
	}
	if err := startWatchdog(); err != nil {
		logf("warning: no cleanup watchdog (%v); if the bench is SIGKILLed, stop its children by hand", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		logf("interrupted: stopping the current run and every process the bench started (again to force)")
		cancel()
		select {
		case <-sigs:
		case <-time.After(20 * time.Second):
		}
		killAll()
		stopWatchdog()
		os.Exit(130)
	}()
	code := run(ctx, o)
	killAll()
	stopWatchdog()
	os.Exit(code)
}

// bench holds the state of one invocation.
type bench struct {
	o       *options
	lay     layoutPlan
	root    string
	tmp     string
	logs    string
	backend *proc
	bAddr   string
	// extra are the evio backends beyond the first (apex variants with
	// Servers > 1), extraAddrs their addresses; empty otherwise.
	extra      []*proc
	extraAddrs []string
	rep        *report
	labelWidth int // longest target name, for aligned progress lines
}

func run(ctx context.Context, o *options) int {
	var scen *scenario
	if o.scenario != "" {
		s, err := lookupScenario(o.scenario)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 2
		}
		if s.Run != nil {
			if o.syscalls {
				fmt.Fprintf(os.Stderr, "bench: -syscalls counts during load runs; scenario %s makes none\n", s.Name)
				return 2
			}
			return runReliability(ctx, o, s) // scenario_env.go
		}
		scen = &s
		if len(s.Targets) > 0 && !o.targetsSet {
			t, err := parseTargets(strings.Join(s.Targets, ","))
			if err != nil {
				fmt.Fprintf(os.Stderr, "bench: scenario %s: %v\n", s.Name, err)
				return 2
			}
			o.targets = t
		}
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		fmt.Fprintln(os.Stderr, "bench: wrk is not installed; run tools/bench/setup.sh (apt-get install wrk)")
		return 1
	}
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
	b := &bench{o: o, lay: lay}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	b.logs = filepath.Join(o.out, "logs")
	_ = os.RemoveAll(b.logs)
	if err := os.MkdirAll(b.logs, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	if b.tmp, err = os.MkdirTemp("", "apex-bench-"); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	defer func() {
		if o.keepTmp {
			logf("temp dir kept: %s", b.tmp)
		} else {
			os.RemoveAll(b.tmp)
		}
	}()

	servers := backendServers(o.targets)
	if o.profile {
		servers = backendServers([]string{o.profileTarget})
	}
	defer func() {
		for i, p := range append([]*proc{b.backend}, b.extra...) {
			if p == nil {
				continue
			}
			p.stop(2 * time.Second)
			copyFile(p.log, filepath.Join(b.logs, backendLogName(i)))
		}
	}()
	if err := b.startBackends(servers); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}

	if o.syscalls {
		if err := checkSyscallCounting(ctx, b.tmp); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
	}
	if o.profile {
		if err := b.runProfile(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "bench: profile:", err)
			if ctx.Err() != nil {
				return 130
			}
			return 1
		}
		return 0
	}

	pts := defaultPoints(o)
	scenName := ""
	if scen != nil {
		pts = scen.Points(o)
		scenName = scen.Name
	}
	if len(pts) == 0 {
		fmt.Fprintln(os.Stderr, "bench: no load points (check -conns and -conns-64k)")
		return 2
	}
	if o.nginxKA <= 0 {
		o.nginxKA = defaultNginxKeepalive(pts)
	}
	b.rep = &report{
		Schema:  schemaVersion,
		Started: time.Now().Format(time.RFC3339),
		Machine: machine(),
		Config: runConfig{
			Layout: lay.name, ProxyCPUs: lay.proxyCPUs, LoadCPUs: lay.loadCPUs,
			Targets: o.targets, DurationS: o.duration.Seconds(), WarmupS: o.warmup.Seconds(),
			Repeats: o.repeats, WrkThreads: o.wrkThreads, ApexConns: o.apexConns, ApexOwner: o.apexOwner, NginxKA: o.nginxKA,
			BackendLoop: lay.backendLoops, BackendServers: 1 + len(b.extra), MaxLoad: o.maxLoad, MaxBusyPct: o.maxBusy,
			Quick: o.quick, Scenario: scenName, Interleaved: o.interleave, Syscalls: o.syscalls, Variants: describeVariants(o.targets),
		},
		Notes:   []string{},
		Results: []pointResult{},
	}
	code := b.runMatrix(ctx, pts, scenName)

	b.rep.Finished = time.Now().Format(time.RFC3339)
	b.rep.Interrupted = ctx.Err() != nil
	md, err := writeOutputs(o.out, b.rep)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: writing results:", err)
		code = 1
	}
	fmt.Print(md)
	logf("wrote %s/results.json, results.md, charts (rps-*.svg/png, cpu.svg/png) and logs/", o.out)
	if ctx.Err() != nil {
		return 130
	}
	return code
}

// startBackends starts n evio backends (the first is the one every target
// uses; the others serve apex variants with Servers > 1), each in its own
// process on its own free port, placed on the load CPUs in the pinned
// layout.
func (b *bench) startBackends(n int) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	where := "not pinned"
	if b.lay.loadCPUs != "" {
		where = "CPU " + b.lay.loadCPUs
	}
	for i := 0; i < n; i++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		p, err := startProc("backend", b.lay.loadCPUs, filepath.Join(b.tmp, backendLogName(i)), "", nil,
			exe, "-serve-backend", addr, "-backend-loops", strconv.Itoa(b.lay.backendLoops))
		if err != nil {
			return err
		}
		if i == 0 {
			b.backend, b.bAddr = p, addr
		} else {
			b.extra, b.extraAddrs = append(b.extra, p), append(b.extraAddrs, addr)
		}
		if err := waitListening(addr, p, 10*time.Second); err != nil {
			return err
		}
		logf("backend %d: evio on %s, %d loop(s), %s (pid %d)", i+1, addr, b.lay.backendLoops, where, p.pid())
	}
	if b.lay.name == "pinned" {
		logf("layout pinned: proxy on CPU %s (one worker), backend + wrk on CPU %s", b.lay.proxyCPUs, b.lay.loadCPUs)
	} else {
		logf("layout free: nothing pinned, default worker counts")
	}
	return nil
}

// backendLogName is the log file of the i-th backend (0-based):
// backend.log, backend-2.log, ...
func backendLogName(i int) string {
	if i == 0 {
		return "backend.log"
	}
	return fmt.Sprintf("backend-%d.log", i+1)
}

// backendGroups are the process groups of every evio backend, first one
// first.
func (b *bench) backendGroups() []int {
	g := []int{b.backend.pgid}
	for _, p := range b.extra {
		g = append(g, p.pgid)
	}
	return g
}

// env returns what targets need to start.
func (b *bench) env() targetEnv {
	return targetEnv{
		tmp: b.tmp, backendAddr: b.bAddr, extraBackends: b.extraAddrs, pinned: b.lay.name == "pinned",
		proxyCPUs: b.lay.proxyCPUs, apexBin: b.o.apexBin, apexBaseBin: b.o.apexBaseBin, apexConns: b.o.apexConns, apexOwner: b.o.apexOwner, apexExtra: strings.ReplaceAll(b.o.apexExtra, `\n`, "\n"),
		apexAdmin: b.o.profile, upstreamKA: b.o.nginxKA, startWait: 15 * time.Second,
	}
}

// prepareApex builds apex unless -apex-bin was given.
func (b *bench) prepareApex(ctx context.Context) error {
	if b.o.apexBaseBin != "" {
		abs, err := filepath.Abs(b.o.apexBaseBin)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return err
		}
		b.o.apexBaseBin = abs
	}
	if b.o.apexBin != "" {
		if _, err := os.Stat(b.o.apexBin); err != nil {
			return err
		}
		abs, err := filepath.Abs(b.o.apexBin)
		if err != nil {
			return err
		}
		b.o.apexBin = abs
		return nil
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	b.root = root
	logf("apex: go build ./cmd/apex-epoll ...")
	t0 := time.Now()
	bin, err := buildApex(ctx, root, b.tmp)
	if err != nil {
		return err
	}
	logf("apex: built in %v", time.Since(t0).Round(100*time.Millisecond))
	b.o.apexBin = bin
	return nil
}

// verifyTarget checks every distinct body of the points through the target.
func verifyTarget(ctx context.Context, t *target, pts []point) error {
	done := map[string]bool{}
	for _, pt := range pts {
		if done[pt.Path] {
			continue
		}
		done[pt.Path] = true
		var err error
		for try := 0; try < 3; try++ {
			if err = verifyBody(ctx, t.url(pt.Path), pt.BodyBytes); err == nil {
				break
			}
			time.Sleep(300 * time.Millisecond)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	logf("NOTE: %s", msg)
	b.rep.Notes = append(b.rep.Notes, msg)
}

// runMatrix runs every point for every target and fills b.rep.Results:
// target after target, or, with -interleave, every target at once with
// the repeats taken in turn (interleave.go).
func (b *bench) runMatrix(ctx context.Context, pts []point, scen string) int {
	o := b.o
	var runnable []string
	for _, name := range o.targets {
		if ok, note := lookTarget(name); !ok {
			b.note("%s", note)
			continue
		}
		if isApex(name) {
			if err := b.prepareApex(ctx); err != nil {
				b.note("%s skipped: %s", name, firstLine(err.Error()))
				logf("%v", err)
				continue
			}
		}
		runnable = append(runnable, name)
		b.labelWidth = max(b.labelWidth, len(name))
	}
	// The bench's own goroutines (the /metrics scraper, the quiet check)
	// stay off the proxy's CPU, like wrk. After prepareApex: go build
	// would inherit the pin.
	if b.lay.loadCPUs != "" {
		if err := pinSelf(b.lay.loadCPUs); err != nil {
			logf("warning: could not pin the bench to CPU %s: %v", b.lay.loadCPUs, err)
		}
	}
	pr := &progress{
		total:     len(runnable) * len(pts) * o.repeats,
		estPerRun: o.duration + o.warmup/time.Duration(o.repeats) + 4*time.Second,
	}
	order := "target after target"
	if o.interleave {
		order = "interleaved"
	}
	logf("plan: %d target(s) × %d point(s) × %d repeat(s) of %v = %d runs, %s, about %v",
		len(runnable), len(pts), o.repeats, o.duration, pr.total, order, pr.eta())
	pr.first = time.Now()
	if o.interleave {
		b.runInterleaved(ctx, runnable, pts, scen, pr)
	} else {
		for _, name := range runnable {
			if ctx.Err() != nil {
				break
			}
			b.runTarget(ctx, name, pts, scen, pr)
		}
	}
	if len(b.rep.Results) == 0 {
		logf("no target was benchmarked")
		return 1
	}
	return 0
}

// startVerified starts a target and checks every body of the points
// through it. On failure it notes why and returns nil; the caller owns a
// returned target (stop and saveArtifacts).
func (b *bench) startVerified(ctx context.Context, name string, pts []point) *target {
	t, err := startTarget(name, b.env())
	if err != nil {
		b.note("%s did not start: %s", name, firstLine(err.Error()))
		logf("%v", err)
		return nil
	}
	pid := "no proxy process"
	if t.proc != nil {
		pid = fmt.Sprintf("pid %d", t.proc.pid())
	}
	admin := ""
	if t.adminAddr != "" {
		admin = ", admin " + t.adminAddr
		if t.scrape > 0 {
			admin += fmt.Sprintf(", /metrics scraped every %v during measured runs", t.scrape)
		}
	}
	logf("target %s: listening on %s (%s%s)", name, t.addr, pid, admin)
	if err := verifyTarget(ctx, t, pts); err != nil {
		b.note("%s is broken, not benchmarked: %v", name, err)
		t.stop()
		b.saveArtifacts(t)
		return nil
	}
	logf("target %s: bodies verified (status 200, right length)", name)
	return t
}

func (b *bench) label(t *target, pt point) string {
	return fmt.Sprintf("%-*s %s c=%d", b.labelWidth, t.name, pt.Body, pt.Conns)
}

// warmUp is the unmeasured run before a target's point (-warmup).
func (b *bench) warmUp(ctx context.Context, t *target, pt point) {
	o := b.o
	if o.warmup <= 0 {
		return
	}
	_, err := runWrk(ctx, b.lay.loadCPUs, filepath.Join(b.logs, "wrk", fmt.Sprintf("%s-%s-c%d-warmup.txt", t.name, slug(pt.Body), pt.Conns)),
		wrkArgs(o.wrkThreads, pt.Conns, o.warmup, t.url(pt.Path), b.script(pt)), o.warmup)
	if err != nil && ctx.Err() == nil {
		logf("%s warm-up: %v", b.label(t, pt), firstLine(err.Error()))
	}
}

// measureLogged is one measured repeat with its progress line. ok is false
// when the run was interrupted (nothing to keep).
func (b *bench) measureLogged(ctx context.Context, t *target, pt point, rep int, pr *progress) (r runResult, ok bool) {
	tag := fmt.Sprintf("[%d/%d] %s rep %d/%d", pr.done+1, pr.total, b.label(t, pt), rep, b.o.repeats)
	r = b.measure(ctx, t, pt, rep, tag)
	if ctx.Err() != nil {
		return r, false
	}
	pr.done++
	if r.Failed != "" {
		logf("%s FAILED: %s  (ETA %v)", tag, firstLine(r.Failed), pr.eta())
		return r, true
	}
	extra := ""
	if len(r.BackendCPUShare) > 1 {
		parts := make([]string, len(r.BackendCPUShare))
		for i, f := range r.BackendCPUShare {
			parts[i] = fmt.Sprintf("%.0f", 100*f)
		}
		extra += "  backends " + strings.Join(parts, "/") + " %"
	}
	if r.MetricsScrapes > 0 || r.MetricsScrapeErrors > 0 {
		extra += fmt.Sprintf("  %d scrapes", r.MetricsScrapes)
	}
	if r.MetricsScrapeErrors > 0 {
		extra += fmt.Sprintf("  ⚠ %d failed scrapes", r.MetricsScrapeErrors)
	}
	if r.Errors > 0 {
		extra += fmt.Sprintf("  ⚠ %d errors", r.Errors)
	}
	logf("%s  %s req/s  p50 %sms p99 %sms  cpu %s µs/req  rss %s MiB%s  (ETA %v)",
		tag, fmtRPS(r.RPS), fmtMs(r.P50Ms), fmtMs(r.P99Ms), fmtCPU(r.CPUUsPerReq), fmtRSS(r.RSSKiB), extra, pr.eta())
	return r, true
}

// runTarget runs every point of one target, then stops it.
func (b *bench) runTarget(ctx context.Context, name string, pts []point, scen string, pr *progress) {
	o := b.o
	t := b.startVerified(ctx, name, pts)
	if t == nil {
		pr.total -= len(pts) * o.repeats
		return
	}
	defer func() {
		t.stop()
		b.saveArtifacts(t)
	}()
	for _, pt := range pts {
		if ctx.Err() != nil {
			return
		}
		b.warmUp(ctx, t, pt)
		var runs []runResult
		for rep := 1; rep <= o.repeats; rep++ {
			if ctx.Err() != nil {
				break
			}
			r, ok := b.measureLogged(ctx, t, pt, rep, pr)
			if !ok {
				break
			}
			runs = append(runs, r)
			if t.proc != nil && t.proc.exited() {
				break
			}
		}
		if len(runs) > 0 {
			b.rep.Results = append(b.rep.Results, aggregate(name, b.lay.name, scen, pt, runs))
		}
		if t.proc != nil && t.proc.exited() {
			b.note("%s exited during the runs (%v); its remaining points are skipped", name, t.proc.waitErr)
			return
		}
	}
}

// script writes a point's wrk Lua script (if any) and returns its path.
func (b *bench) script(pt point) string {
	if pt.Script == "" {
		return ""
	}
	path := filepath.Join(b.tmp, fmt.Sprintf("script-%x.lua", hashString(pt.Script)))
	if _, err := os.Stat(path); err != nil {
		_ = os.WriteFile(path, []byte(pt.Script), 0o644)
	}
	return path
}

func hashString(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

// waitQuiet waits until the machine is quiet or the timeout passes.
func (b *bench) waitQuiet(ctx context.Context, tag string) (quietness, bool) {
	deadline := time.Now().Add(b.o.quietTimeout)
	lastLog := time.Time{}
	for {
		q, err := sampleQuiet(time.Second)
		if err != nil {
			logf("quiet check unavailable: %v", err)
			return q, true
		}
		if q.load1 <= b.o.maxLoad && q.busyPct <= b.o.maxBusy {
			return q, true
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			if ctx.Err() == nil {
				logf("%s  machine still busy after %v (%s); running anyway, marked not quiet", tag, b.o.quietTimeout, q)
			}
			return q, false
		}
		if time.Since(lastLog) > 5*time.Second {
			logf("%s  waiting for quiet: %s (want load1 ≤ %.2f, busy ≤ %.0f%%)", tag, q, b.o.maxLoad, b.o.maxBusy)
			lastLog = time.Now()
		}
	}
}

// measure does one repeat: quiet wait, proxy and backend CPU before, wrk
// (with the /metrics scraper beside it for a target that scrapes), CPU and
// peak RSS after; with -syscalls, the proxy's system calls over the same
// window.
func (b *bench) measure(ctx context.Context, t *target, pt point, rep int, tag string) runResult {
	o := b.o
	r := runResult{Rep: rep}
	q, quiet := b.waitQuiet(ctx, tag)
	r.Load1, r.BusyPct, r.Quiet = q.load1, q.busyPct, quiet
	if ctx.Err() != nil {
		r.Failed = "interrupted"
		return r
	}
	// The counter is attached now and enabled just before the CPU
	// accounting starts; it is disabled just after the accounting ends,
	// so both cover the same window.
	counter, cerr := b.countSyscalls(t, pt, rep)
	if counter != nil {
		defer counter.close() // a run that fails stops it too
	}
	if counter != nil {
		if cerr = counter.enable(); cerr != nil {
			counter.close()
			counter = nil
		}
	}
	var before groupUsage
	var err error
	t0 := time.Now()
	if t.proc != nil {
		r.RSSPerRun = resetPeakRSS(t.proc.pgid)
		if before, err = sampleGroup(t.proc.pgid); err != nil {
			r.Failed = "proxy accounting: " + err.Error()
			return r
		}
	}
	bBefore, bErr := b.sampleBackends()
	var scraped chan scrapeStats
	stopScrape := func() {}
	if t.scrape > 0 && t.adminAddr != "" {
		sctx, cancel := context.WithCancel(ctx)
		scraped, stopScrape = make(chan scrapeStats, 1), cancel
		go func() { scraped <- scrapeMetrics(sctx, "http://"+t.adminAddr+"/metrics", t.scrape) }()
	}
	logPath := filepath.Join(b.logs, "wrk", fmt.Sprintf("%s-%s-c%d-r%d.txt", t.name, slug(pt.Body), pt.Conns, rep))
	w, err := runWrk(ctx, b.lay.loadCPUs, logPath, wrkArgs(o.wrkThreads, pt.Conns, o.duration, t.url(pt.Path), b.script(pt)), o.duration)
	stopScrape()
	if scraped != nil {
		// within the accounting window: an in-flight scrape's cost on
		// apex's side is counted
		st := <-scraped
		r.MetricsScrapes, r.MetricsScrapeErrors, r.MetricsScrapeMaxMs = st.scrapes, st.failures, st.maxMs
		if st.lastErr != "" {
			logf("%s  /metrics scrape failed: %s", tag, st.lastErr)
		}
	}
	if err != nil {
		r.Failed = err.Error()
		return r
	}
	r.wrkResult = w
	r.Errors = w.errors()
	var after groupUsage
	if t.proc != nil {
		if after, err = sampleGroup(t.proc.pgid); err != nil {
			r.Failed = "proxy accounting after the run: " + err.Error()
			return r
		}
	}
	var bAfter []uint64
	if bErr == nil {
		bAfter, bErr = b.sampleBackends()
	}
	wall := time.Since(t0).Seconds()
	if counter != nil {
		var counts map[string]uint64
		if counts, cerr = counter.finish(); cerr == nil {
			r.Syscalls = syscallsPerRequest(counts, w.Requests)
		}
	}
	if cerr != nil {
		r.SyscallError = cerr.Error()
		logf("%s  syscall count: %v", tag, cerr)
	}
	if t.proc != nil {
		if v, ok := cpuUsPerReq(before.ticks, after.ticks, w.Requests); ok {
			r.CPUUsPerReq = &v
		}
		r.ProxyCPUPct = fptr(cpuPct(before.ticks, after.ticks, 0, wall))
		hwm := after.hwmKiB
		r.RSSKiB = &hwm
	}
	if bErr == nil {
		var sb, sa uint64
		for i := range bBefore {
			sb, sa = sb+bBefore[i], sa+bAfter[i]
		}
		if v, ok := cpuUsPerReq(sb, sa, w.Requests); ok {
			r.BackendCPUUsPerReq = &v
		}
		r.LoadCPUPct = fptr(cpuPct(sb, sa, w.CPUSeconds, wall))
		if t.servers > 1 && sa > sb {
			for i := range bBefore {
				r.BackendCPUShare = append(r.BackendCPUShare, float64(bAfter[i]-bBefore[i])/float64(sa-sb))
			}
		}
	}
	return r
}

// sampleBackends reads the CPU ticks of every evio backend's process
// group, first backend first.
func (b *bench) sampleBackends() ([]uint64, error) {
	var ticks []uint64
	for _, g := range b.backendGroups() {
		u, err := sampleGroup(g)
		if err != nil {
			return nil, err
		}
		ticks = append(ticks, u.ticks)
	}
	return ticks, nil
}

// saveArtifacts copies a target's generated config and log into out/logs.
func (b *bench) saveArtifacts(t *target) {
	if t == nil || t.proc == nil {
		return
	}
	dir := filepath.Join(b.logs, t.name)
	_ = os.MkdirAll(dir, 0o755)
	copyFile(t.config, filepath.Join(dir, filepath.Base(t.config)))
	copyFile(t.proc.log, filepath.Join(dir, filepath.Base(t.proc.log)))
	if t.name == tNginx {
		copyFile(filepath.Join(b.tmp, tNginx, "error.log"), filepath.Join(dir, "error.log"))
	}
}

func copyFile(src, dst string) {
	if src == "" {
		return
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return
	}
	_ = os.WriteFile(dst, data, 0o644)
}
