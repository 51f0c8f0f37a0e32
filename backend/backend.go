package backend

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apex-epoll/apex/balance"
	"github.com/apex-epoll/apex/config"
	"github.com/apex-epoll/apex/h1parse"
	"github.com/apex-epoll/apex/loop"
)

// Backend is a named group of upstream servers, each served by Conns
// owners (one upstream connection each).
//
// Invariant: owners is fixed after New; each Owner is driven only by its
// own goroutine; Submit only touches owners' queues and counters.
type Backend struct {
	Name     string
	LoopMode bool // owner = "loop": upstream connections live on the event loops
	owners   []*Owner
	loops    []*LoopBackend // by loop id, loop mode only
	checks   *checker       // active health checks; nil when off
	stopped  atomic.Bool    // Close saw every owner goroutine end
	cfg      *config.Backend
	lim      h1parse.Limits
	log      *slog.Logger
	wg       sync.WaitGroup
	once     sync.Once
}

// New builds the owners for cfg; Start launches them.
func New(cfg *config.Backend, lim h1parse.Limits, log *slog.Logger) *Backend {
	b := &Backend{Name: cfg.Name, LoopMode: cfg.Owner == "loop", cfg: cfg, lim: lim, log: log}
	if b.LoopMode {
		return b
	}
	for _, s := range cfg.Servers {
		for i := 0; i < cfg.Conns; i++ {
			b.owners = append(b.owners, newOwner(OwnerConfig{
				Addr:            s.Addr,
				Queue:           cfg.Queue,
				ConnectTimeout:  cfg.ConnectTimeout.D(),
				ResponseTimeout: cfg.ResponseTimeout.D(),
				IdleTimeout:     cfg.IdleTimeout.D(),
				Limits:          lim,
				Logger:          log.With("backend", cfg.Name, "server", s.Addr),
			}))
		}
	}
	return b
}

// Start runs every owner goroutine.
func (b *Backend) Start() {
	b.startChecks()
	for _, o := range b.owners {
		b.wg.Add(1)
		go func(o *Owner) {
			defer b.wg.Done()
			o.run()
		}(o)
	}
}

// Owners returns the backend's owners (for metrics and tests).
func (b *Backend) Owners() []*Owner { return b.owners }

// Submit queues ex on the owner with the fewest outstanding requests,
// scanning from start (callers rotate it so ties spread out). It returns
// false, without blocking, when the chosen owner's queue is full: the
// caller answers 503.
func (b *Backend) Submit(ex *Exchange, start int) bool {
	n := len(b.owners)
	best := b.owners[start%n]
	bestN := best.Outstanding()
	for i := 1; i < n && bestN > 0; i++ {
		o := b.owners[(start+i)%n]
		if k := o.Outstanding(); k < bestN {
			best, bestN = o, k
		}
	}
	return best.submit(ex)
}

// Close stops the owners once they have served what is queued, and waits
// for them (at most grace; stragglers are left to finish on their own).
func (b *Backend) Close(grace time.Duration) {
	b.once.Do(func() {
		if b.checks != nil {
			b.checks.close()
		}
		for _, o := range b.owners {
			close(o.quit)
		}
	})
	done := make(chan struct{})
	go func() { b.wg.Wait(); b.stopped.Store(true); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(grace):
	}
	// Grace is over: unblock owners stuck on a silent upstream.
	for _, o := range b.owners {
		if c := o.live.Load(); c != nil {
			c.SetDeadline(time.Now())
		}
	}
	select {
	case <-done:
	case <-time.After(time.Second):
	}
}

// InitLoops creates, in loop mode, each loop's pool for each server. Call
// before the loops start. Each loop may hold up to Conns connections per
// server, and Conns × Queue requests per server waiting for one: Queue is
// per connection, as it is per owner in goroutine mode, so both modes shed
// load at the same depth.
func (b *Backend) InitLoops(loops []*loop.Loop) error {
	if !b.LoopMode {
		return nil
	}
	policy, err := balance.ParsePolicy(b.cfg.Balance)
	if err != nil {
		return fmt.Errorf("backend %q: %w", b.Name, err)
	}
	specs := make([]balance.Server, len(b.cfg.Servers))
	addrs := make([]netip.AddrPort, len(b.cfg.Servers))
	for i, s := range b.cfg.Servers {
		specs[i] = balance.Server{Name: s.Addr, Weight: s.Weight}
		if addrs[i], err = resolveAddr(s.Addr); err != nil {
			return fmt.Errorf("backend %q: server %s: %w", b.Name, s.Addr, err)
		}
	}
	proto := balance.New(policy, specs, 1)
	b.loops = make([]*LoopBackend, len(loops))
	for i, l := range loops {
		var pools []*LoopPool
		for j, s := range b.cfg.Servers {
			oc := OwnerConfig{
				Addr:            s.Addr,
				ConnectTimeout:  b.cfg.ConnectTimeout.D(),
				ResponseTimeout: b.cfg.ResponseTimeout.D(),
				IdleTimeout:     b.cfg.IdleTimeout.D(),
				Limits:          b.lim,
				Logger:          b.log.With("backend", b.Name, "server", s.Addr, "loop", l.ID()),
				Splice:          b.cfg.SpliceOn(),
			}
			pools = append(pools, NewLoopPool(l, addrs[j], oc, b.cfg.Conns, b.cfg.Conns*b.cfg.Queue, b.cfg.Pipeline))
		}
		// Each loop draws its own random numbers (p2c), from its own seed.
		b.loops[i] = newLoopBackend(b, l, pools, proto.Clone(uint64(i)*0x9E3779B97F4A7C15+1))
	}
	return nil
}

// Pool returns the pool of loop id for the next request; rr rotates among
// the servers.
// Config is the configuration b was built from; it must not be changed.
func (b *Backend) Config() *config.Backend { return b.cfg }

// Retire winds b down after a reload replaced it. Nothing new is routed to
// it by then; what it holds finishes: loop-owned pools serve their queued
// clients and close each connection as it falls idle, goroutine owners
// finish their queues and stop (Close, waiting up to grace).
func (b *Backend) Retire(grace time.Duration) {
	if b.checks != nil {
		b.once.Do(b.checks.close)
	}
	if !b.LoopMode {
		go b.Close(grace)
		return
	}
	for _, lb := range b.loops {
		lb.l.Post(&loop.Task{Run: func() {
			for _, p := range lb.pools {
				p.Retire()
			}
		}})
	}
}

// Stopped reports whether b holds nothing Shutdown must wait for: a
// loop-owned backend's connections belong to the loops (which close them
// as they stop), and a goroutine-owned one has seen its owners end.
func (b *Backend) Stopped() bool { return b.LoopMode || b.stopped.Load() }

// Loop is loop id's share of b (owner = "loop").
func (b *Backend) Loop(id int) *LoopBackend { return b.loops[id] }

func resolveAddr(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	ta, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ap := ta.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// ServerStats is one server's upstream side at one instant.
type ServerStats struct {
	Addr        string
	Conns       int // open upstream connections
	Outstanding int // requests sent or queued on its connections (goroutine owners)
	Waiting     int // requests waiting for a connection (loop owners)
}

// OwnerStats reports the goroutine owners' connections and queues, by
// server. Safe from any goroutine.
func (b *Backend) OwnerStats() []ServerStats {
	out := make([]ServerStats, len(b.cfg.Servers))
	for i, s := range b.cfg.Servers {
		out[i].Addr = s.Addr
	}
	for _, o := range b.owners {
		for i := range out {
			if out[i].Addr != o.cfg.Addr {
				continue
			}
			if o.live.Load() != nil {
				out[i].Conns++
			}
			out[i].Outstanding += int(o.outstanding.Load())
			out[i].Waiting += len(o.queue)
		}
	}
	return out
}

// LoopStates reports loop id's view of b's servers. Call on that loop.
func (b *Backend) LoopStates(id int) (servers []ServerState, waiting int) {
	if id >= len(b.loops) {
		return nil, 0
	}
	lb := b.loops[id]
	for i := range lb.pools {
		servers = append(servers, lb.State(i))
	}
	return servers, lb.Waiting()
}
