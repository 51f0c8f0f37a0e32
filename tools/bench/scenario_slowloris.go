package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// slowloris: 2,000 connections each send one header byte per second while
// wrk runs a keep-alive load. The load keeps at least 80 % of its rate
// without them, and every slow connection is closed at the header timeout
// with a 408 or a plain close.

func init() {
	registerScenario(scenario{
		Name: "slowloris",
		Description: "2,000 connections each send one request-head byte per second (re-opened when closed, so 2,000 stay open) " +
			"while wrk runs a keep-alive load: the load keeps at least 80 % of its rate without them (measured before and after), " +
			"and every slow connection gets a 408 or a close at server.header_timeout (10 s).",
		Run: func(ctx context.Context, env *scenarioEnv) error {
			return runSlowloris(ctx, env, slowlorisParams{
				conns: 2000, headerTimeout: 10 * time.Second, byteEvery: time.Second,
				loadConns: 64, baseDur: 5 * time.Second, loadDur: 12 * time.Second,
			})
		},
	})
}

type slowlorisParams struct {
	conns         int           // slow connections kept open
	headerTimeout time.Duration // apex server.header_timeout
	byteEvery     time.Duration // one head byte per
	loadConns     int           // wrk -c of the keep-alive load
	baseDur       time.Duration // each unloaded wrk run (one before, one after)
	loadDur       time.Duration // the wrk run beside the slow connections
}

// slowOutcome is how one slow connection ended.
type slowOutcome struct {
	kind string        // "408", "closed", "reset", "response NNN", "stopped" (by the bench), "error"
	life time.Duration // from connect to the end
}

func runSlowloris(ctx context.Context, env *scenarioEnv, p slowlorisParams) error {
	rep := env.rep
	if _, err := exec.LookPath("wrk"); err != nil {
		return fmt.Errorf("wrk is not installed (tools/bench/setup.sh)")
	}
	_, baddr, err := env.startEvio("")
	if err != nil {
		return err
	}
	a, err := env.startApex(apexSpec{upstream: baddr, server: fmt.Sprintf("header_timeout = %q", p.headerTimeout.String())})
	if err != nil {
		return err
	}
	url := "http://" + a.addr + "/"
	if err := verifyBody(ctx, url, len(smallBody)); err != nil {
		return fmt.Errorf("apex does not proxy: %v", err)
	}
	wrk := func(tag string, d time.Duration) (wrkResult, error) {
		return runWrk(ctx, env.lay.loadCPUs, filepath.Join(env.dir, "wrk-"+tag+".txt"), wrkArgs(1, p.loadConns, d, url, ""), d)
	}
	if _, err := wrk("warmup", time.Second); err != nil {
		return err
	}
	before, err := wrk("before", p.baseDur)
	if err != nil {
		return err
	}
	logf("slowloris: unloaded %s req/s; opening %d slow connections", fmtRPS(before.RPS), p.conns)
	rssBefore, _ := rssKiB(a.pid())

	var open atomic.Int64
	var mu sync.Mutex
	var outcomes []slowOutcome
	var dialErrs atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < p.conns; i++ {
		wg.Add(1)
		go func(delay time.Duration) {
			defer wg.Done()
			// Spread the connects over a second so that the timeouts
			// do not all fall on one instant.
			select {
			case <-stop:
				return
			case <-time.After(delay):
			}
			for {
				select {
				case <-stop:
					return
				default:
				}
				o, err := slowConn(a.addr, p.byteEvery, stop, &open)
				if err != nil {
					dialErrs.Add(1)
					select {
					case <-stop:
						return
					case <-time.After(100 * time.Millisecond):
					}
					continue
				}
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
			}
		}(time.Duration(i) * time.Second / time.Duration(p.conns))
	}
	stopSlow := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}
	defer stopSlow()
	// All open (and a second of trickling) before the loaded run.
	time.Sleep(time.Second + 2*p.byteEvery)
	rss := watchRSS(a.pid())
	var minOpen atomic.Int64
	minOpen.Store(open.Load())
	sampDone := make(chan struct{})
	sampStop := make(chan struct{})
	go func() {
		defer close(sampDone)
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-sampStop:
				return
			case <-tk.C:
				if n := open.Load(); n < minOpen.Load() {
					minOpen.Store(n)
				}
			}
		}
	}()
	loaded, werr := wrk("loaded", p.loadDur)
	close(sampStop)
	<-sampDone
	_, peakRSS, _ := rss.finish()
	openAtEnd := open.Load()
	stopSlow()
	if werr != nil {
		return werr
	}
	time.Sleep(time.Second)
	after, err := wrk("after", p.baseDur)
	if err != nil {
		return err
	}

	unloaded := (before.RPS + after.RPS) / 2
	ratio := loaded.RPS / unloaded
	g := "keep-alive load"
	rep.add(g, fmt.Sprintf("wrk -c%d before the slow connections", p.loadConns), math.Round(before.RPS), "req/s")
	rep.add(g, "after them", math.Round(after.RPS), "req/s")
	rep.add(g, fmt.Sprintf("beside %s slow connections (%v run)", groupThousands(int64(p.conns)), p.loadDur), math.Round(loaded.RPS), "req/s")
	rep.check(g, "loaded rate / mean unloaded rate", 100*ratio, "%", "≥ 80 %", ratio >= 0.8)
	rep.check(g, "failed requests during the loaded run", float64(loaded.errors()), "", "0", loaded.errors() == 0)
	rep.add(g, "p99 latency before", before.P99Ms, "ms")
	rep.add(g, "p99 latency beside the slow connections", loaded.P99Ms, "ms")

	g = "slow connections"
	rep.check(g, "open during the loaded run, fewest at any 100 ms sample", float64(minOpen.Load()), "",
		fmt.Sprintf("≥ 90 %% of %s (re-opened as they close)", groupThousands(int64(p.conns))), minOpen.Load() >= int64(p.conns)*9/10)
	rep.add(g, "open at the end of the loaded run", float64(openAtEnd), "")
	rep.add(g, "apex RSS before them", kib2mib(rssBefore), "MiB")
	rep.add(g, "apex peak RSS during the loaded run", kib2mib(peakRSS), "MiB")
	if n := dialErrs.Load(); n > 0 {
		rep.note("%d connects of slow connections failed", n)
	}
	counts := map[string]int{}
	var lives []time.Duration
	judged := 0
	for _, o := range outcomes {
		counts[o.kind]++
		if o.kind == "stopped" {
			continue
		}
		judged++
		lives = append(lives, o.life)
	}
	if judged == 0 {
		return errors.New("no slow connection reached the header timeout: the run was too short")
	}
	sort.Slice(lives, func(i, j int) bool { return lives[i] < lives[j] })
	closedOK := counts["408"] + counts["closed"] + counts["reset"]
	rep.add(g, "ended by apex during the run", float64(judged), "")
	rep.add(g, "… with a 408", float64(counts["408"]), "")
	rep.add(g, "… with a close (no response)", float64(counts["closed"]), "")
	rep.add(g, "… with a reset", float64(counts["reset"]), "")
	rep.check(g, "ended by a 408, a close or a reset", float64(closedOK), "", "all "+groupThousands(int64(judged)), closedOK == judged)
	lo, med, hi := lives[0], lives[len(lives)/2], lives[len(lives)-1]
	rep.check(g, "earliest end after connect", lo.Seconds(), "s", fmt.Sprintf("≥ header_timeout − 0.1 s (%.1f s)", (p.headerTimeout-100*time.Millisecond).Seconds()),
		lo >= p.headerTimeout-100*time.Millisecond)
	rep.add(g, "median end after connect", med.Seconds(), "s")
	rep.check(g, "latest end after connect", hi.Seconds(), "s", fmt.Sprintf("≤ header_timeout + 2 s (%.0f s)", (p.headerTimeout+2*time.Second).Seconds()),
		hi <= p.headerTimeout+2*time.Second)
	rep.add(g, "still open when the bench stopped them (not judged)", float64(counts["stopped"]), "")
	for k, n := range counts {
		switch k {
		case "408", "closed", "reset", "stopped":
		default:
			rep.note("%d slow connection(s) ended otherwise: %s", n, k)
		}
	}
	return nil
}

// slowConn opens one connection and sends one head byte every byteEvery
// until apex answers or closes, or stop closes. It returns how the
// connection ended; err only when the connect failed.
func slowConn(addr string, byteEvery time.Duration, stop <-chan struct{}, open *atomic.Int64) (slowOutcome, error) {
	const head = "GET / HTTP/1.1\r\nHost: bench\r\nX-Slowloris: "
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return slowOutcome{}, err
	}
	t0 := time.Now()
	open.Add(1)
	defer open.Add(-1)
	defer closeNow(c)
	buf := make([]byte, 256)
	end := func(kind string) (slowOutcome, error) { return slowOutcome{kind: kind, life: time.Since(t0)}, nil }
	for i := 0; ; i++ {
		b := byte('a')
		if i < len(head) {
			b = head[i]
		}
		if _, err := c.Write([]byte{b}); err != nil {
			if k := errKind(err); k == "reset" {
				return end("reset")
			}
			return end("error: " + err.Error())
		}
		_ = c.SetReadDeadline(time.Now().Add(byteEvery))
		n, err := c.Read(buf)
		if n > 0 {
			// A response: read what follows (apex closes after it).
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			rest, _ := io.ReadAll(io.LimitReader(c, 4096))
			got := append(buf[:n:n], rest...)
			if bytes.HasPrefix(got, []byte("HTTP/1.1 408")) || bytes.HasPrefix(got, []byte("HTTP/1.0 408")) {
				return end("408")
			}
			if len(got) >= 12 {
				return end("response " + string(got[9:12]))
			}
			return end("response " + fmt.Sprintf("%q", got))
		}
		switch k := errKind(err); {
		case k == "timeout":
			select {
			case <-stop:
				return end("stopped")
			default:
			}
		case errors.Is(err, io.EOF):
			return end("closed")
		case k == "reset":
			return end("reset")
		default:
			return end("error: " + err.Error())
		}
	}
}
