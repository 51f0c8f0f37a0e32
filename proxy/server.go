// Package proxy wires the pieces into a reverse proxy: loops accept and
// parse client requests (loop, h1parse), routes pick a backend, owners
// carry each request upstream and stream the response back (backend).
//
// The path of one request: loop reads bytes → worker.Data → h1parse
// Request.Parse → routes.match → client.startRequest builds the upstream
// head → Backend.Submit queues the Exchange on an Owner → the owner writes
// it upstream, reads and parses the response (h1parse Response.Parse) and
// posts Chunks through the loop's door → client.Deliver writes them to the
// client → finishResponse keeps the connection for the next request.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apex-epoll/apex/accesslog"
	"github.com/apex-epoll/apex/backend"
	"github.com/apex-epoll/apex/config"
	"github.com/apex-epoll/apex/h1parse"
	"github.com/apex-epoll/apex/loop"
)

// Server is a running proxy built from one configuration.
//
// Invariant: workers (one per loop) are fixed after New; backends change
// only in Reload, under mu, and every backend a reload replaced that still
// has owner goroutines running is in retired until Shutdown closes it; the goroutines it starts are the
// loops' (Group) and, with owner = "goroutine", each backend's owners, and
// Shutdown waits for all of them.
type Server struct {
	cfg      atomic.Pointer[config.Config] // the running configuration
	log      *slog.Logger
	group    *loop.Group
	workers  []*worker
	stopOnce sync.Once
	draining atomic.Bool

	mu       sync.Mutex // serialises Reload and Shutdown
	backends []*backend.Backend
	retired  []*backend.Backend
	reloads  [2]atomic.Uint64 // [0] failed, [1] succeeded
	// blocking: the loops sleep in epoll_wait (loop.Config.BlockingWait)
	// because no backend is goroutine-owned; fixed at start.
	blocking bool

	// Metrics ids of (route label, backend) pairs, kept across reloads so
	// counters stay monotonic; id 0 is requests answered before routing.
	// Bounded by the distinct pairs the loaded configurations named.
	// live is the backend list metrics report (a copy of backends).
	statMu     sync.Mutex
	statIDs    map[[2]string]int
	statLabels [][2]string
	live       []*backend.Backend

	alog atomic.Pointer[accesslog.Log] // the access log in use; nil: off
	// alogLines, alogDrops and alogErrs carry the counts of logs a
	// reload closed.
	alogLines, alogDrops, alogErrs atomic.Uint64
}

// openAccessLog opens the log cfg asks for (nil when "off").
func openAccessLog(cfg *config.Config) (*accesslog.Log, error) {
	if cfg.Log.Access == "" || cfg.Log.Access == "off" {
		return nil, nil
	}
	f, err := accesslog.ParseFormat(cfg.Log.Format)
	if err != nil {
		return nil, fmt.Errorf("%s: log.format: %w", cfg.Source, err)
	}
	l, err := accesslog.Open(cfg.Log.Access, f)
	if err != nil {
		return nil, fmt.Errorf("%s: log.access: %w", cfg.Source, err)
	}
	return l, nil
}

// ReopenAccessLog reopens the access log file (SIGUSR1, after logrotate).
func (s *Server) ReopenAccessLog() error {
	if l := s.alog.Load(); l != nil {
		return l.Reopen()
	}
	return nil
}

// AccessLogCounts returns the lines written, dropped (buffers full) and
// lost to write errors, over every log this server has had.
func (s *Server) AccessLogCounts() (lines, drops, errs uint64) {
	lines, drops, errs = s.alogLines.Load(), s.alogDrops.Load(), s.alogErrs.Load()
	if l := s.alog.Load(); l != nil {
		lines += l.Lines()
		drops += l.Drops()
		errs += l.Errors()
	}
	return lines, drops, errs
}

// statID returns the metrics id of a route label and backend name.
func (s *Server) statID(label, backend string) int {
	s.statMu.Lock()
	defer s.statMu.Unlock()
	k := [2]string{label, backend}
	if id, ok := s.statIDs[k]; ok {
		return id
	}
	if s.statIDs == nil {
		s.statIDs = map[[2]string]int{{"", ""}: 0}
		s.statLabels = [][2]string{{"", ""}}
		if k == ([2]string{}) {
			return 0
		}
	}
	id := len(s.statLabels)
	s.statIDs[k] = id
	s.statLabels = append(s.statLabels, k)
	return id
}

// Draining reports whether Shutdown has begun (for the admin /healthz).
func (s *Server) Draining() bool { return s.draining.Load() }

// ConfigTOML is the running configuration as TOML (for the admin /config).
func (s *Server) ConfigTOML() ([]byte, error) { return s.cfg.Load().TOML() }

// Config is the running configuration; it must not be changed.
func (s *Server) Config() *config.Config { return s.cfg.Load() }

// New builds the proxy for cfg: backends with their owners, the route
// table, and the loops with their listeners (bound, not yet serving).
func New(cfg *config.Config, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{log: log}
	s.cfg.Store(cfg)
	byName := map[string]*backend.Backend{}
	for i := range cfg.Backends {
		b := newBackend(&cfg.Backends[i], log)
		byName[b.Name] = b
		s.backends = append(s.backends, b)
	}
	s.statID("", "")
	rt := buildRoutes(cfg, byName, s.statID)
	s.live = s.backends
	wc := newWorkerConfig(cfg)
	alog, err := openAccessLog(cfg)
	if err != nil {
		return nil, err
	}
	s.alog.Store(alog)
	wc.alog = alog
	s.blocking = !hasGoroutineOwner(cfg)
	loops := cfg.Server.Loops
	if loops == 0 {
		loops = startProcs
	}
	if s.blocking && runtime.GOMAXPROCS(0) < loops+1 {
		// A sleeping loop keeps its P (loop.Config.BlockingWait): one P
		// more than there are loops is for everything else (the access
		// log's writer, health-check tickers, the admin endpoint).
		runtime.GOMAXPROCS(loops + 1)
	}
	g, err := loop.NewGroup(loop.Config{
		Loops:        loops,
		OutputBound:  cfg.Server.OutputBuffer,
		Logger:       log,
		BlockingWait: s.blocking,
	}, cfg.Server.Listen, func(l *loop.Loop) loop.Handler {
		w := &worker{srv: s, loop: l, cfg: wc, routes: rt}
		s.workers = append(s.workers, w)
		return w
	})
	if err != nil {
		if alog != nil {
			alog.Close(time.Second)
		}
		return nil, err
	}
	s.group = g
	for _, b := range s.backends {
		if err := b.InitLoops(g.Loops); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// newBackend builds the backend for bc. Upstream responses may carry
// larger heads than Apex accepts from clients (cookies): they get the
// largest the parser supports.
func newBackend(bc *config.Backend, log *slog.Logger) *backend.Backend {
	return backend.New(bc, h1parse.Limits{MaxRequestLine: 8192, MaxHeaderBytes: 32 << 10, MaxFields: 256}, log)
}

func newWorkerConfig(cfg *config.Config) workerConfig {
	return workerConfig{
		limits: h1parse.Limits{
			MaxRequestLine: cfg.Server.MaxRequestLine,
			MaxHeaderBytes: cfg.Server.MaxHeaderBytes,
			MaxFields:      cfg.Server.MaxHeaderFields,
		},
		headerTimeout: int64(cfg.Server.HeaderTimeout.D()),
		idleTimeout:   int64(cfg.Server.IdleTimeout.D()),
		bodyTimeout:   int64(cfg.Server.BodyTimeout.D()),
		sendTimeout:   int64(cfg.Server.IdleTimeout.D()),
		maxBody:       cfg.Server.MaxBodyBytes,
	}
}

// Start launches the owners and the loops.
func (s *Server) Start() {
	for _, b := range s.backends {
		b.Start()
	}
	s.group.Start()
	var addrs []string
	for _, ap := range s.group.Addrs() {
		addrs = append(addrs, ap.String())
	}
	cfg := s.cfg.Load()
	s.log.Info("apex serving", "listen", addrs, "loops", len(s.group.Loops), "config", cfg.Source)
	for i := range cfg.Backends {
		logBackend(s.log, &cfg.Backends[i])
	}
}

func logBackend(log *slog.Logger, bc *config.Backend) {
	servers := make([]string, len(bc.Servers))
	for i, sv := range bc.Servers {
		servers[i] = sv.Addr
	}
	log.Info("backend", "name", bc.Name, "servers", servers, "conns", bc.Conns, "queue", bc.Queue, "owner", bc.Owner, "balance", bc.Balance)
	if bc.Owner == "goroutine" && (bc.Health.Path != "" || len(bc.Servers) > 1) {
		log.Warn("owner = \"goroutine\" applies no balancing policy, health checks, circuit breaker, adaptive limit or retries; use owner = \"loop\"", "backend", bc.Name)
	}
}

// Reloads returns how many reloads failed and succeeded.
func (s *Server) Reloads() (failed, succeeded uint64) {
	return s.reloads[0].Load(), s.reloads[1].Load()
}

// ReloadFailed counts a reload that never reached Reload (the file did not
// load), so that the count covers every attempt.
func (s *Server) ReloadFailed() { s.reloads[0].Add(1) }

// Reload switches the running proxy to cfg. Everything is prepared first
// (new backends resolved, new listeners bound) and nothing changes if any
// of it fails. Then each loop swaps its routes and limits between two
// events, so a request uses the configuration it started with from its
// first byte to its last. Backends whose configuration is unchanged keep
// their warm upstream connections; replaced ones finish what they hold and
// close (Backend.Retire). Listeners that stay keep their sockets and
// accept queues. server.loops and server.output_buffer are fixed at start:
// changing them is refused.
func (s *Server) Reload(cfg *config.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.reload(cfg)
	if err != nil {
		s.reloads[0].Add(1)
		return err
	}
	s.reloads[1].Add(1)
	return nil
}

func (s *Server) reload(cfg *config.Config) error {
	if s.draining.Load() {
		return errors.New("reload: shutting down")
	}
	old := s.cfg.Load()
	if cfg.Server.Loops != old.Server.Loops {
		return fmt.Errorf("%s: server.loops: changing it needs a restart (running %d)", cfg.Source, old.Server.Loops)
	}
	if cfg.Server.OutputBuffer != old.Server.OutputBuffer {
		return fmt.Errorf("%s: server.output_buffer: changing it needs a restart (running %d)", cfg.Source, old.Server.OutputBuffer)
	}
	if s.blocking && hasGoroutineOwner(cfg) {
		return fmt.Errorf("%s: backend.owner: a goroutine-owned backend needs a restart (the loops were started without one, so they sleep in epoll_wait and would starve its goroutines)", cfg.Source)
	}
	running := map[string]*backend.Backend{}
	for _, b := range s.backends {
		running[b.Name] = b
	}
	var next, fresh []*backend.Backend
	byName := map[string]*backend.Backend{}
	for i := range cfg.Backends {
		bc := &cfg.Backends[i]
		b := running[bc.Name]
		if b == nil || !reflect.DeepEqual(b.Config(), bc) {
			b = newBackend(bc, s.log)
			if err := b.InitLoops(s.group.Loops); err != nil {
				return err
			}
			fresh = append(fresh, b)
		}
		byName[b.Name] = b
		next = append(next, b)
	}
	oldLog := s.alog.Load()
	alog := oldLog
	logChanged := cfg.Log.Access != old.Log.Access || cfg.Log.Format != old.Log.Format
	if logChanged {
		var err error
		if alog, err = openAccessLog(cfg); err != nil {
			return err
		}
	}
	if err := s.group.SetListeners(cfg.Server.Listen); err != nil {
		if logChanged && alog != nil {
			alog.Close(time.Second)
		}
		return fmt.Errorf("reload: %w", err)
	}
	for _, b := range fresh {
		b.Start()
		logBackend(s.log, b.Config())
	}
	rt := buildRoutes(cfg, byName, s.statID)
	wc := newWorkerConfig(cfg)
	wc.alog = alog
	for _, w := range s.workers {
		s.onLoop(w, func() { w.cfg, w.routes = wc, rt })
	}
	if logChanged {
		s.alog.Store(alog)
		if oldLog != nil {
			// No loop holds it now: write what it has and close it.
			oldLog.Close(5 * time.Second)
			s.alogLines.Add(oldLog.Lines())
			s.alogDrops.Add(oldLog.Drops())
			s.alogErrs.Add(oldLog.Errors())
		}
	}
	// Only retired backends Shutdown must still wait for are kept, so the
	// list does not grow with every reload.
	kept := s.retired[:0]
	for _, b := range s.retired {
		if !b.Stopped() {
			kept = append(kept, b)
		}
	}
	s.retired = kept
	for _, b := range s.backends {
		if byName[b.Name] != b {
			b.Retire(cfg.Server.ShutdownGrace.D())
			if !b.Stopped() {
				s.retired = append(s.retired, b)
			}
		}
	}
	s.backends = next
	s.statMu.Lock()
	s.live = next
	s.statMu.Unlock()
	s.cfg.Store(cfg)
	return nil
}

// Addrs returns the bound listen addresses (useful with port 0).
func (s *Server) Addrs() []netip.AddrPort { return s.group.Addrs() }

// onLoop runs f on w's loop and waits for it.
func (s *Server) onLoop(w *worker, f func()) {
	done := make(chan struct{})
	t := &loop.Task{Run: func() { f(); close(done) }}
	w.loop.Post(t)
	<-done
}

// ErrGraceExpired is returned by Shutdown when connections had to be
// closed with requests still in flight.
var ErrGraceExpired = errors.New("shutdown grace expired; remaining connections closed")

// Shutdown stops accepting, lets in-flight requests finish (idle
// keep-alive connections are closed at once, busy ones get Connection:
// close on their last response), and returns when every connection is
// closed or ctx is done; then it closes what remains and stops the loops
// and owners.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.stopOnce.Do(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.draining.Store(true)
		for _, w := range s.workers {
			s.onLoop(w, w.beginDrain)
		}
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
	wait:
		for {
			open := 0
			for _, w := range s.workers {
				open += int(w.conns.Load())
			}
			if open == 0 {
				break
			}
			select {
			case <-ctx.Done():
				err = ErrGraceExpired
				s.log.Warn("shutdown grace expired; closing remaining connections", "open", open)
				break wait
			case <-tick.C:
			}
		}
		// Close what is left; exchanges still with owners are cancelled.
		for _, w := range s.workers {
			s.onLoop(w, func() { w.loop.ForEach(func(c *loop.Conn) { c.Close() }) })
		}
		// Owners finish (cancelled exchanges end quickly) while the loops
		// still run to take back their chunks.
		for _, b := range append(s.backends, s.retired...) {
			b.Close(5 * time.Second)
		}
		for _, w := range s.workers {
			s.onLoop(w, w.loop.Stop)
		}
		s.group.Wait()
		if l := s.alog.Load(); l != nil {
			l.Close(5 * time.Second)
		}
	})
	return err
}

// beginDrain runs on the loop: stop accepting, close idle connections, and
// mark the rest to close after their current response.
func (w *worker) beginDrain() {
	w.draining = true
	w.loop.CloseListeners()
	w.loop.ForEach(func(c *loop.Conn) {
		cl, ok := c.Ctx.(*client)
		if !ok {
			return
		}
		if cl.state == stIdle && c.Buffered() == 0 {
			c.Close()
		}
	})
}

// hasGoroutineOwner reports whether a backend of cfg uses the goroutine
// owner, whose goroutines need the Ps that blocking loops would keep: the
// loops then park in the netpoller instead.
func hasGoroutineOwner(cfg *config.Config) bool {
	for i := range cfg.Backends {
		if cfg.Backends[i].Owner == "goroutine" {
			return true
		}
	}
	return false
}

// startProcs is GOMAXPROCS as the process started (the CPUs it may use):
// the default number of loops, whatever New later sets GOMAXPROCS to.
var startProcs = runtime.GOMAXPROCS(0)
