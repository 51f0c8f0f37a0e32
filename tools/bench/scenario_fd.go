package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"time"
)

// fd: apex runs with RLIMIT_NOFILE = 256 and gets more connections than it
// has descriptors. While accept fails with EMFILE it must keep serving the
// connections it has, not spin, and accept again once descriptors free up.

func init() {
	registerScenario(scenario{
		Name: "fd",
		Description: "apex started with RLIMIT_NOFILE = 256 (sh -c 'ulimit -n 256; exec apex ...') gets 400 connections, more than it has " +
			"descriptors: while accept fails with EMFILE an existing keep-alive connection is still served, apex's CPU stays low (no busy " +
			"accept loop), and once the extra connections close, the connection waiting in the backlog and a new one are served within a second.",
		Run: func(ctx context.Context, env *scenarioEnv) error {
			return runFD(ctx, env, fdParams{nofile: 256, extra: 400, window: 3 * time.Second})
		},
	})
}

type fdParams struct {
	nofile int           // apex's RLIMIT_NOFILE
	extra  int           // connections opened on top of the keep-alive one (more than nofile)
	window time.Duration // CPU measurement while saturated
}

// fdCPULimitPct bounds apex's CPU while accept fails: a loop retrying
// accept would use about 100 % of a CPU; apex pauses accepting instead.
const fdCPULimitPct = 20

func runFD(ctx context.Context, env *scenarioEnv, p fdParams) error {
	rep := env.rep
	_, baddr, err := env.startEvio("")
	if err != nil {
		return err
	}
	a, err := env.startApex(apexSpec{upstream: baddr, nofile: p.nofile})
	if err != nil {
		return err
	}
	pid := a.pid()
	if lim, err := fileLimit(pid); err == nil {
		rep.check("setup", "apex RLIMIT_NOFILE (/proc/PID/limits)", float64(lim), "", fmt.Sprint(p.nofile), lim == p.nofile)
	}
	keep := &kaClient{addr: a.addr}
	defer keep.drop()
	if r, err := keep.get("/", 5*time.Second); err != nil || r.status != 200 {
		return fmt.Errorf("apex does not proxy: %d %v", r.status, err)
	}
	idleFDs, _ := openFDs(pid)
	rep.add("setup", "apex open descriptors before (one client connection)", float64(idleFDs), "")

	var extra []net.Conn
	defer func() {
		for _, c := range extra {
			if c != nil {
				closeNow(c)
			}
		}
	}()
	for i := 0; i < p.extra; i++ {
		c, err := net.DialTimeout("tcp", a.addr, time.Second)
		if err != nil {
			rep.note("connect %d failed: %v (the listen backlog is full)", i+1, err)
			break
		}
		extra = append(extra, c)
	}
	rep.add("saturated", "connections opened on top of the keep-alive one", float64(len(extra)), "")
	if len(extra) < 2 {
		return fmt.Errorf("only %d extra connections could be opened", len(extra))
	}
	time.Sleep(300 * time.Millisecond)
	satFDs, _ := openFDs(pid)
	rep.check("saturated", "apex open descriptors", float64(satFDs), "", fmt.Sprintf("≥ %d − 8 (the limit bites)", p.nofile), satFDs >= p.nofile-8)
	// The last connection waits in the backlog: apex cannot accept it.
	stuck := extra[len(extra)-1]
	extra = extra[:len(extra)-1]
	defer closeNow(stuck)
	stuckBr := bufio.NewReader(stuck)
	_ = stuck.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := stuck.Write([]byte("GET / HTTP/1.1\r\nHost: bench\r\n\r\n")); err != nil {
		return fmt.Errorf("writing on the waiting connection: %v", err)
	}
	_, err = readResp(stuckBr)
	limitBit := errKind(err) == "timeout"
	rep.check("saturated", "the last connection is not served (it waits in the backlog)", b2f(limitBit), "", "1 (yes)", limitBit)

	// Saturated: the keep-alive connection is still served, and apex is
	// not spinning.
	t0, err0 := cpuTicksOf(pid)
	w0 := time.Now()
	ok, tries := 0, 0
	for time.Since(w0) < p.window && ctx.Err() == nil {
		tries++
		if r, err := keep.get("/", 2*time.Second); err == nil && r.status == 200 {
			ok++
		}
		time.Sleep(100 * time.Millisecond)
	}
	t1, err1 := cpuTicksOf(pid)
	if err0 != nil || err1 != nil {
		return fmt.Errorf("apex CPU time: %v %v", err0, err1)
	}
	cpu := cpuPct(t0, t1, 0, time.Since(w0).Seconds())
	rep.check("saturated", fmt.Sprintf("requests on the existing keep-alive connection answered 200 (one per 100 ms for %v)", p.window), float64(ok), "",
		fmt.Sprintf("all %d", tries), ok == tries && tries > 0)
	rep.check("saturated", "apex CPU while accept fails", cpu, "%", fmt.Sprintf("< %d %% of one CPU", fdCPULimitPct), cpu < fdCPULimitPct)

	// Free the descriptors: close every extra connection but the waiting one.
	tFree := time.Now()
	for i, c := range extra {
		closeNow(c)
		extra[i] = nil
	}
	_ = stuck.SetDeadline(tFree.Add(10 * time.Second))
	r, err := readResp(stuckBr)
	stuckAfter := time.Since(tFree)
	stuckOK := err == nil && r.status == 200
	if !stuckOK {
		rep.note("the waiting connection after the descriptors were freed: status %d, %v", r.status, err)
	}
	rep.check("freed", "time until the waiting connection was served", stuckAfter.Seconds()*1000, "ms", "≤ 1,000 ms, status 200", stuckOK && stuckAfter <= time.Second)
	fresh := &kaClient{addr: a.addr}
	tFresh := time.Now()
	r, err = fresh.get("/", 5*time.Second)
	freshTook := time.Since(tFresh)
	fresh.drop()
	freshOK := err == nil && r.status == 200
	if !freshOK {
		rep.note("a new connection after the descriptors were freed: status %d, %v", r.status, err)
	}
	rep.check("freed", "a new connection: connect and GET", freshTook.Seconds()*1000, "ms", "≤ 1,000 ms, status 200", freshOK && freshTook <= time.Second)
	r, err = keep.get("/", 5*time.Second)
	rep.check("freed", "the keep-alive connection still served", b2f(err == nil && r.status == 200), "", "1 (yes)", err == nil && r.status == 200)
	time.Sleep(300 * time.Millisecond)
	if n, err := openFDs(pid); err == nil {
		rep.add("freed", "apex open descriptors afterwards", float64(n), "")
	}
	return nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
