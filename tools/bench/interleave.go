package main

import (
	"context"
	"slices"
)

// runInterleaved (-interleave) starts every target at once and, for each
// point, warms each one up and then takes repeat 1 of every target, repeat
// 2 of every target, and so on. A slow drift of the shared machine (a
// neighbour's build, the hypervisor moving vCPUs) then falls on every
// target alike instead of on whichever target happened to run at the
// time, which is what a comparison of two close configurations (apex with
// and without the admin endpoint) needs. The targets not being measured
// sit idle on the proxy CPU they share; their upstream connections to the
// backend stay open and idle.
func (b *bench) runInterleaved(ctx context.Context, names []string, pts []point, scen string, pr *progress) {
	o := b.o
	var live []*target
	defer func() {
		for _, t := range live {
			t.stop()
			b.saveArtifacts(t)
		}
	}()
	for _, name := range names {
		if ctx.Err() != nil {
			return
		}
		t := b.startVerified(ctx, name, pts)
		if t == nil {
			pr.total -= len(pts) * o.repeats
			continue
		}
		live = append(live, t)
	}
	exited := func(t *target) bool { return t.proc != nil && t.proc.exited() }
	for pi, pt := range pts {
		if ctx.Err() != nil {
			return
		}
		for _, t := range live {
			b.warmUp(ctx, t, pt)
		}
		runs := make([][]runResult, len(live))
		for rep := 1; rep <= o.repeats && ctx.Err() == nil; rep++ {
			for i, t := range live {
				if exited(t) {
					continue
				}
				r, ok := b.measureLogged(ctx, t, pt, rep, pr)
				if !ok {
					break
				}
				runs[i] = append(runs[i], r)
				if exited(t) {
					// its later repeats of this point and every later point
					pr.total -= o.repeats - rep + (len(pts)-pi-1)*o.repeats
				}
			}
		}
		for i, t := range live {
			if len(runs[i]) > 0 {
				b.rep.Results = append(b.rep.Results, aggregate(t.name, b.lay.name, scen, pt, runs[i]))
			}
		}
		live = slices.DeleteFunc(live, func(t *target) bool {
			if !exited(t) {
				return false
			}
			b.note("%s exited during the runs (%v); its remaining points are skipped", t.name, t.proc.waitErr)
			t.stop()
			b.saveArtifacts(t)
			return true
		})
	}
}
