package backend

import (
	"log/slog"
	"sync"
	"time"

	"github.com/apex-epoll/apex/config"
	"github.com/apex-epoll/apex/h1parse"
)

// Backend is a named group of upstream servers, each served by Conns
// owners (one upstream connection each).
//
// Invariant: owners is fixed after New; each Owner is driven only by its
// own goroutine; Submit only touches owners' queues and counters.
type Backend struct {
	Name   string
	owners []*Owner
	wg     sync.WaitGroup
	once   sync.Once
}

// New builds the owners for cfg; Start launches them.
func New(cfg *config.Backend, lim h1parse.Limits, log *slog.Logger) *Backend {
	b := &Backend{Name: cfg.Name}
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
		for _, o := range b.owners {
			close(o.quit)
		}
	})
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
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
