package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"sync"
	"time"
)

// idle: 10,000 keep-alive client connections, each after one request,
// held idle. apex's RSS per idle connection is (RSS with them − RSS
// before) / N; nginx's from the same run for comparison.

func init() {
	registerScenario(scenario{
		Name: "idle",
		Description: "10,000 keep-alive client connections, each idle after one GET, through apex and then through nginx " +
			"(same backend, same layout): resident memory per idle connection, (RSS with them − RSS before) / 10,000, " +
			"at most 2 KiB for apex; nginx's figure (master + workers) for comparison.",
		Run: func(ctx context.Context, env *scenarioEnv) error {
			return runIdle(ctx, env, idleParams{conns: 10000, settle: 2 * time.Second, nginx: true})
		},
	})
}

type idleParams struct {
	conns  int
	settle time.Duration // after the connections are open, before reading RSS
	nginx  bool          // also measure nginx (when installed)
}

// idleGoalBytes is the goal for apex's RSS per idle connection.
const idleGoalBytes = 2048

func runIdle(ctx context.Context, env *scenarioEnv, p idleParams) error {
	rep := env.rep
	_, baddr, err := env.startEvio("")
	if err != nil {
		return err
	}
	a, err := env.startApex(apexSpec{upstream: baddr})
	if err != nil {
		return err
	}
	pa, err := measureIdle(ctx, env, "apex", a.addr, []int{a.pid()}, p)
	a.stop(5 * time.Second)
	if err != nil {
		return fmt.Errorf("apex: %v", err)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	rep.check("apex", "RSS per idle connection", pa, "B", fmt.Sprintf("≤ %d B", idleGoalBytes), pa <= idleGoalBytes)
	if !p.nginx {
		return nil
	}
	if _, err := exec.LookPath("nginx"); err != nil {
		rep.note("nginx is not installed (tools/bench/setup.sh): no comparison")
		return nil
	}
	time.Sleep(time.Second)
	t, err := env.startNginx(baddr)
	if err != nil {
		return fmt.Errorf("nginx: %v", err)
	}
	pids, err := groupPIDs(t.proc.pgid)
	if err != nil || len(pids) == 0 {
		return fmt.Errorf("nginx: no processes in group %d (%v)", t.proc.pgid, err)
	}
	pn, err := measureIdle(ctx, env, "nginx", t.addr, pids, p)
	t.stop()
	if err != nil {
		return fmt.Errorf("nginx: %v", err)
	}
	rep.add("nginx", "RSS per idle connection (master + workers)", pn, "B")
	rep.note("nginx (%d processes: master and worker_processes %s) allocates its connection and event arrays for worker_connections (16384) at start, so part of its per-connection cost is already in its RSS before the connections open",
		len(pids), map[bool]string{true: "1", false: "auto"}[env.lay.name == "pinned"])
	return nil
}

// measureIdle opens p.conns keep-alive connections to addr (one GET each),
// lets them settle, and returns the growth of the summed VmRSS of pids per
// connection, in bytes. It checks that the connections are still served
// afterwards and closes them.
func measureIdle(ctx context.Context, env *scenarioEnv, name, addr string, pids []int, p idleParams) (float64, error) {
	rep := env.rep
	// Warm up: the upstream connections and the first buffers.
	for i := 0; i < 50; i++ {
		k := &kaClient{addr: addr}
		if r, err := k.get("/", 5*time.Second); err != nil || r.status != 200 {
			k.drop()
			return 0, fmt.Errorf("warm-up GET: %d %v", r.status, err)
		}
		closeNow(k.c)
	}
	time.Sleep(p.settle)
	w := watchRSS(pids...)
	before := w.base
	conns := make([]net.Conn, p.conns)
	defer func() {
		for _, c := range conns {
			if c != nil {
				closeNow(c)
			}
		}
	}()
	logf("idle: %s: opening %d keep-alive connections", name, p.conns)
	t0 := time.Now()
	const workers = 8
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for wi := 0; wi < workers; wi++ {
		wg.Add(1)
		go func(wi int) {
			defer wg.Done()
			br := bufio.NewReaderSize(nil, 4096)
			for i := wi; i < p.conns && ctx.Err() == nil; i += workers {
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					errs[wi] = fmt.Errorf("connection %d: %v", i, err)
					return
				}
				conns[i] = c
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: bench\r\n\r\n")); err != nil {
					errs[wi] = fmt.Errorf("connection %d: %v", i, err)
					return
				}
				br.Reset(c)
				r, err := readResp(br)
				if err == nil && (r.status != 200 || r.close || br.Buffered() > 0) {
					err = fmt.Errorf("status %d, close %v, %d extra bytes", r.status, r.close, br.Buffered())
				}
				if err != nil {
					errs[wi] = fmt.Errorf("connection %d: %v", i, err)
					return
				}
				_ = c.SetDeadline(time.Time{})
			}
		}(wi)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			w.finish()
			return 0, err
		}
	}
	if ctx.Err() != nil {
		w.finish()
		return 0, ctx.Err()
	}
	opened := time.Since(t0)
	time.Sleep(p.settle)
	_, peak, after := w.finish()
	fds := -1
	if len(pids) == 1 {
		fds, _ = openFDs(pids[0])
	}
	// Still alive and served: a request on every hundredth connection.
	served, probed := 0, 0
	for i := 0; i < p.conns; i += 100 {
		probed++
		c := conns[i]
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: bench\r\n\r\n")); err != nil {
			continue
		}
		if r, err := readResp(bufio.NewReaderSize(c, 4096)); err == nil && r.status == 200 {
			served++
		}
	}
	per := float64(after-before) * 1024 / float64(p.conns)
	rep.add(name, "connections opened", float64(p.conns), "")
	rep.add(name, "time to open them (one GET each)", opened.Seconds(), "s")
	rep.add(name, "RSS before", kib2mib(before), "MiB")
	rep.add(name, fmt.Sprintf("RSS with the connections idle (after %v)", p.settle), kib2mib(after), "MiB")
	rep.add(name, "peak RSS while opening", kib2mib(peak), "MiB")
	if fds >= 0 {
		rep.add(name, "open descriptors with the connections idle", float64(fds), "")
	}
	rep.check(name, "idle connections still served afterwards (every 100th probed)", float64(served), "",
		fmt.Sprintf("all %d", probed), served == probed)
	return per, nil
}
