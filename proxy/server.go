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
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apex-epoll/apex/backend"
	"github.com/apex-epoll/apex/config"
	"github.com/apex-epoll/apex/h1parse"
	"github.com/apex-epoll/apex/loop"
)

// Server is a running proxy built from one configuration.
//
// Invariant: workers (one per loop) and backends are fixed after New; the
// goroutines it starts are the loops' (Group) and, with owner =
// "goroutine", each backend's owners, and Shutdown waits for all of them.
type Server struct {
	cfg      *config.Config
	log      *slog.Logger
	group    *loop.Group
	workers  []*worker
	backends []*backend.Backend
	stopOnce sync.Once
	draining atomic.Bool
}

// Draining reports whether Shutdown has begun (for the admin /healthz).
func (s *Server) Draining() bool { return s.draining.Load() }

// ConfigTOML is the running configuration as TOML (for the admin /config).
func (s *Server) ConfigTOML() ([]byte, error) { return s.cfg.TOML() }

// New builds the proxy for cfg: backends with their owners, the route
// table, and the loops with their listeners (bound, not yet serving).
func New(cfg *config.Config, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: cfg, log: log}
	lim := h1parse.Limits{
		MaxRequestLine: cfg.Server.MaxRequestLine,
		MaxHeaderBytes: cfg.Server.MaxHeaderBytes,
		MaxFields:      cfg.Server.MaxHeaderFields,
	}
	byName := map[string]*backend.Backend{}
	for i := range cfg.Backends {
		bc := &cfg.Backends[i]
		// Upstream responses may carry larger heads than we accept from
		// clients (cookies); allow the largest the parser supports.
		b := backend.New(bc, h1parse.Limits{MaxRequestLine: 8192, MaxHeaderBytes: 32 << 10, MaxFields: 256}, log)
		byName[bc.Name] = b
		s.backends = append(s.backends, b)
	}
	rt := buildRoutes(cfg, byName)
	wc := workerConfig{
		limits:        lim,
		headerTimeout: int64(cfg.Server.HeaderTimeout.D()),
		idleTimeout:   int64(cfg.Server.IdleTimeout.D()),
		bodyTimeout:   int64(cfg.Server.BodyTimeout.D()),
		sendTimeout:   int64(cfg.Server.IdleTimeout.D()),
		maxBody:       cfg.Server.MaxBodyBytes,
	}
	g, err := loop.NewGroup(loop.Config{
		Loops:       cfg.Server.Loops,
		OutputBound: cfg.Server.OutputBuffer,
		Logger:      log,
	}, cfg.Server.Listen, func(l *loop.Loop) loop.Handler {
		w := &worker{srv: s, loop: l, cfg: wc, routes: rt}
		s.workers = append(s.workers, w)
		return w
	})
	if err != nil {
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

// Start launches the owners and the loops.
func (s *Server) Start() {
	for _, b := range s.backends {
		b.Start()
	}
	s.group.Start()
	addrs := make([]string, 0, len(s.cfg.Server.Listen))
	for i := range s.cfg.Server.Listen {
		if ap, err := s.group.Loops[0].BoundAddr(i); err == nil {
			addrs = append(addrs, ap.String())
		}
	}
	s.log.Info("apex serving", "listen", addrs, "loops", len(s.group.Loops), "config", s.cfg.Source)
	for _, bc := range s.cfg.Backends {
		servers := make([]string, len(bc.Servers))
		for i, sv := range bc.Servers {
			servers[i] = sv.Addr
		}
		s.log.Info("backend", "name", bc.Name, "servers", servers, "conns", bc.Conns, "queue", bc.Queue)
	}
}

// Addrs returns the bound listen addresses (useful with port 0).
func (s *Server) Addrs() []netip.AddrPort {
	var out []netip.AddrPort
	for i := range s.cfg.Server.Listen {
		if ap, err := s.group.Loops[0].BoundAddr(i); err == nil {
			out = append(out, ap)
		}
	}
	return out
}

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
		for _, b := range s.backends {
			b.Close(5 * time.Second)
		}
		for _, w := range s.workers {
			s.onLoop(w, w.loop.Stop)
		}
		s.group.Wait()
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
