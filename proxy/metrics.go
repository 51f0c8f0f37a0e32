package proxy

import (
	"time"

	"github.com/apex-epoll/apex/backend"
	"github.com/apex-epoll/apex/health"
	"github.com/apex-epoll/apex/loop"
	"github.com/apex-epoll/apex/metrics"
)

// loopSnapshot is what one loop reports to a scrape: copies of its own
// counters, taken on the loop so they need no atomics.
//
// Invariant: built on the loop and then owned by the scraping goroutine;
// it shares no memory with the loop (routes is a copy).
type loopSnapshot struct {
	routes  []routeStats
	refused [600]uint64
	upErrs  [600]uint64
	shed    uint64
	loop    loop.Stats
	retries uint64
	servers [][]backend.ServerState // by live backend, loop owners only
	waiting []int                   // by live backend: requests in its queue
}

// circuitSeverity orders circuit states for "the most open among loops".
var circuitSeverity = map[health.State]int{health.Closed: 0, health.HalfOpen: 1, health.Open: 2}

// snapshotTimeout bounds how long a scrape waits for a busy loop; a loop
// that does not answer in time is left out of that scrape.
const snapshotTimeout = 2 * time.Second

// Snapshot implements metrics.Source: every loop copies its counters on
// its own goroutine, and the copies are summed here.
func (s *Server) Snapshot() *metrics.Snapshot {
	s.statMu.Lock()
	labels := append([][2]string(nil), s.statLabels...)
	live := s.live
	s.statMu.Unlock()

	results := make(chan *loopSnapshot, len(s.workers))
	for _, w := range s.workers {
		w.loop.Post(&loop.Task{Run: func() {
			ls := &loopSnapshot{
				routes:  append([]routeStats(nil), w.stats.routes...),
				refused: w.stats.refusedBy,
				upErrs:  w.stats.upErrs,
				shed:    w.stats.shed,
				retries: w.stats.retries,
				loop:    w.loop.Stats(),
				servers: make([][]backend.ServerState, len(live)),
				waiting: make([]int, len(live)),
			}
			for i, b := range live {
				if b.LoopMode {
					ls.servers[i], ls.waiting[i] = b.LoopStates(w.loop.ID())
				}
			}
			results <- ls
		}})
	}

	snap := &metrics.Snapshot{
		Routes:         make([]metrics.Route, len(labels)),
		Refused:        map[int]uint64{},
		UpstreamErrors: map[int]uint64{},
		Backends:       make([]metrics.Backend, len(live)),
		Draining:       s.draining.Load(),
	}
	for i, l := range labels {
		snap.Routes[i].Route, snap.Routes[i].Backend = l[0], l[1]
	}
	for i, b := range live {
		mb := &snap.Backends[i]
		mb.Name = b.Name
		if !b.LoopMode {
			for _, st := range b.OwnerStats() {
				mb.Servers = append(mb.Servers, metrics.Server{Addr: st.Addr, Conns: st.Conns, Outstanding: st.Outstanding})
				mb.Queue += st.Waiting
			}
			continue
		}
		for _, sv := range b.Config().Servers {
			mb.Servers = append(mb.Servers, metrics.Server{Addr: sv.Addr, Judged: true, Up: true})
		}
	}
	for _, w := range s.workers {
		snap.ClientConns += w.conns.Load()
	}
	timeout := time.After(snapshotTimeout)
	snap.ReloadsFailed, snap.ReloadsSucceeded = s.Reloads()
	snap.AccessLogLines, snap.AccessLogDrops, snap.AccessLogErrors = s.AccessLogCounts()
	for range s.workers {
		var ls *loopSnapshot
		select {
		case ls = <-results:
		case <-timeout:
			return snap // what the other loops reported
		}
		for id := range ls.routes {
			if id >= len(snap.Routes) {
				break // a reload added it after labels were copied
			}
			r, st := &snap.Routes[id], &ls.routes[id]
			for c := range r.Requests {
				r.Requests[c] += st.classes[c]
			}
			r.Duration.Add(&st.duration)
			r.Upstream.Add(&st.upstream)
		}
		for status, n := range ls.refused {
			if n > 0 {
				snap.Refused[status] += n
			}
		}
		for status, n := range ls.upErrs {
			if n > 0 {
				snap.UpstreamErrors[status] += n
			}
		}
		snap.Shed += ls.shed
		snap.Accepted += ls.loop.Accepted
		snap.ClientBytesIn += ls.loop.ClientBytesIn
		snap.ClientBytesOut += ls.loop.ClientBytesOut
		snap.UpstreamBytesIn += ls.loop.UpstreamBytesIn
		snap.UpstreamBytesOut += ls.loop.UpstreamBytesOut
		snap.SplicedBytes += ls.loop.SplicedBytes
		snap.Retries += ls.retries
		for i, ss := range ls.servers {
			snap.Backends[i].Queue += ls.waiting[i]
			for j, st := range ss {
				sv := &snap.Backends[i].Servers[j]
				sv.Conns += st.Conns
				sv.Outstanding += st.Outstanding
				sv.Limit += st.Limit
				snap.Backends[i].Queue += st.Waiting
				sv.Up = sv.Up && st.Up
				if circuitSeverity[st.Circuit] > circuitSeverity[health.State(sv.Circuit)] {
					sv.Circuit = int(st.Circuit)
				}
			}
		}
	}
	return snap
}
