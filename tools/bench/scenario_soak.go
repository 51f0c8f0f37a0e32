package main

import (
	"context"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// soak: apex in front of the evio backend at about half of its peak rate
// for -duration. RSS, open descriptors and goroutines must stay flat and
// no request may fail.

func init() {
	registerScenario(scenario{
		Name: "soak",
		Description: "Keep-alive GET load at about half of apex's peak rate (measured first with wrk) for -duration: " +
			"apex's RSS, open descriptors (/proc/PID/fd) and goroutines (admin /debug/pprof/goroutine) stay flat, and no request fails.",
		Run: func(ctx context.Context, env *scenarioEnv) error {
			return runSoak(ctx, env, soakParams{duration: env.o.duration, conns: 32, share: 0.5, peakConns: 64, peakDur: 5 * time.Second})
		},
	})
}

type soakParams struct {
	duration  time.Duration // the whole load, warm-up included
	conns     int           // paced keep-alive client connections
	share     float64       // of the peak rate
	peakConns int           // wrk -c of the peak measurement
	peakDur   time.Duration
	rate      float64 // > 0: use this rate and skip the peak measurement (tests)
}

// soakLimits are the flatness criteria. They allow for the pools filling
// after the start sample (upstream connections open on demand, up to
// [[backend]] conns, and close after idle_timeout); a leak of one
// descriptor, goroutine or a few hundred bytes per thousand requests
// exceeds them many times over in ten minutes at this rate.
var soakLimits = struct {
	rssEndMiB, rssPeakMiB float64
	fdsEnd, fdsPeak       int
	grEnd, grPeak         int
}{rssEndMiB: 8, rssPeakMiB: 16, fdsEnd: 16, fdsPeak: 64, grEnd: 4, grPeak: 16}

// soakSample is one observation of apex during the soak.
type soakSample struct {
	at       time.Duration // since the load started
	rssKiB   int64
	fds      int
	gr       int
	requests int64 // completed in the interval before the sample
	errors   int64
	rps      float64
}

func runSoak(ctx context.Context, env *scenarioEnv, p soakParams) error {
	rep := env.rep
	_, baddr, err := env.startEvio("")
	if err != nil {
		return err
	}
	a, err := env.startApex(apexSpec{upstream: baddr, backend: "conns = 64"})
	if err != nil {
		return err
	}
	url := "http://" + a.addr + "/"
	if err := verifyBody(ctx, url, len(smallBody)); err != nil {
		return fmt.Errorf("apex does not proxy: %v", err)
	}
	rate := p.rate
	if rate <= 0 {
		if _, err := exec.LookPath("wrk"); err != nil {
			return fmt.Errorf("wrk is not installed (tools/bench/setup.sh)")
		}
		logf("soak: measuring the peak: wrk -c%d for %v", p.peakConns, p.peakDur)
		w, err := runWrk(ctx, env.lay.loadCPUs, filepath.Join(env.dir, "wrk-peak.txt"),
			wrkArgs(1, p.peakConns, p.peakDur, url, ""), p.peakDur)
		if err != nil {
			return fmt.Errorf("peak measurement: %v", err)
		}
		if w.errors() > 0 || w.RPS <= 0 {
			return fmt.Errorf("peak measurement: %d errors, %.0f req/s", w.errors(), w.RPS)
		}
		rep.add("peak", fmt.Sprintf("peak rate (wrk -t1 -c%d, %v)", p.peakConns, p.peakDur), math.Round(w.RPS), "req/s")
		rate = p.share * w.RPS
		time.Sleep(2 * time.Second) // let the peak's connections close
	}
	rep.add("load", fmt.Sprintf("target rate (%.0f %% of peak), %d paced keep-alive connections", 100*p.share, p.conns), math.Round(rate), "req/s")

	pid := a.pid()
	sampleNow := func() soakSample {
		s := soakSample{rssKiB: -1, fds: -1, gr: -1}
		if k, err := rssKiB(pid); err == nil {
			s.rssKiB = k
		}
		if n, err := openFDs(pid); err == nil {
			s.fds = n
		}
		if n, err := goroutines(ctx, a.admin); err == nil {
			s.gr = n
		}
		return s
	}
	idle := sampleNow()

	var requests, errCount atomic.Int64
	var kinds tally
	var worst maxDur
	stop := make(chan struct{})
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) * float64(p.conns) / rate)
	start := time.Now()
	for i := 0; i < p.conns; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			soakClient(a.addr, interval, start.Add(interval*time.Duration(i)/time.Duration(p.conns)), stop, &requests, &errCount, &kinds, &worst)
		}(i)
	}
	warm := min(max(p.duration/20, 2*time.Second), 30*time.Second)
	every := min(max(p.duration/60, time.Second), 10*time.Second)
	end := start.Add(p.duration)
	var samples []soakSample
	lastReq, lastErr, lastAt := int64(0), int64(0), start
	next := start.Add(warm)
	logf("soak: %.0f req/s on %d connections for %v; samples every %v after a %v warm-up", rate, p.conns, p.duration, every, warm)
	for ctx.Err() == nil {
		if d := time.Until(next); d > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
			if ctx.Err() != nil {
				break
			}
		}
		now := time.Now()
		s := sampleNow()
		s.at = now.Sub(start)
		r, e := requests.Load(), errCount.Load()
		s.requests, s.errors = r-lastReq, e-lastErr
		s.rps = float64(s.requests) / now.Sub(lastAt).Seconds()
		lastReq, lastErr, lastAt = r, e, now
		samples = append(samples, s)
		if len(samples) == 1 || len(samples)%6 == 0 || !now.Before(end) {
			logf("soak: t=%v %.0f req/s, errors %d, rss %.1f MiB, fds %d, goroutines %d",
				s.at.Round(time.Second), s.rps, e, kib2mib(s.rssKiB), s.fds, s.gr)
		}
		if !now.Before(end) {
			break
		}
		next = next.Add(every)
		if next.After(end) {
			next = end
		}
	}
	close(stop)
	wg.Wait()
	loadFor := time.Since(start)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	time.Sleep(2 * time.Second)
	after := sampleNow()
	if len(samples) < 2 {
		return fmt.Errorf("too few samples (%d) for a %v soak", len(samples), p.duration)
	}

	total, errs := requests.Load(), errCount.Load()
	achieved := float64(total) / loadFor.Seconds()
	rep.add("load", "achieved rate (whole load)", math.Round(achieved), "req/s")
	rep.add("load", "requests", float64(total), "")
	if achieved < 0.9*rate {
		rep.note("the clients reached %.0f req/s of the %.0f targeted (the load CPU is shared by the clients and the backend)", achieved, rate)
	}
	rep.check("load", "failed requests (non-200, socket error, no answer within 5 s)", float64(errs), "", "0", errs == 0)
	rep.add("load", "slowest request", worst.get().Seconds()*1000, "ms")
	if errs > 0 {
		rep.note("failures by kind: %v", kinds.snapshot())
	}

	first, last := samples[0], samples[len(samples)-1]
	var peakRSS int64
	var peakFD, peakGR int
	for _, s := range samples {
		peakRSS, peakFD, peakGR = max(peakRSS, s.rssKiB), max(peakFD, s.fds), max(peakGR, s.gr)
	}
	span := fmt.Sprintf("start (t=%v)", first.at.Round(time.Second))
	rep.add("RSS", "idle, before the load", kib2mib(idle.rssKiB), "MiB")
	rep.add("RSS", span, kib2mib(first.rssKiB), "MiB")
	rep.check("RSS", "peak", kib2mib(peakRSS), "MiB", fmt.Sprintf("≤ start + %.0f MiB", soakLimits.rssPeakMiB),
		kib2mib(peakRSS-first.rssKiB) <= soakLimits.rssPeakMiB)
	rep.check("RSS", "end", kib2mib(last.rssKiB), "MiB", fmt.Sprintf("≤ start + %.0f MiB", soakLimits.rssEndMiB),
		kib2mib(last.rssKiB-first.rssKiB) <= soakLimits.rssEndMiB)
	rep.add("fds", "idle, before the load", float64(idle.fds), "")
	rep.add("fds", span, float64(first.fds), "")
	rep.check("fds", "peak", float64(peakFD), "", fmt.Sprintf("≤ start + %d", soakLimits.fdsPeak), peakFD-first.fds <= soakLimits.fdsPeak)
	rep.check("fds", "end", float64(last.fds), "", fmt.Sprintf("≤ start + %d", soakLimits.fdsEnd), last.fds-first.fds <= soakLimits.fdsEnd)
	rep.add("goroutines", "idle, before the load", float64(idle.gr), "")
	rep.add("goroutines", span, float64(first.gr), "")
	rep.check("goroutines", "peak", float64(peakGR), "", fmt.Sprintf("≤ start + %d", soakLimits.grPeak), peakGR-first.gr <= soakLimits.grPeak)
	rep.check("goroutines", "end", float64(last.gr), "", fmt.Sprintf("≤ start + %d", soakLimits.grEnd), last.gr-first.gr <= soakLimits.grEnd)
	if first.gr < 0 || last.gr < 0 {
		rep.note("goroutine counts unavailable: apex's admin listener did not answer /debug/pprof/goroutine")
	}
	rep.add("after", "RSS 2 s after the load", kib2mib(after.rssKiB), "MiB")
	rep.add("after", "fds 2 s after the load", float64(after.fds), "")
	rep.add("after", "goroutines 2 s after the load", float64(after.gr), "")

	t := table{Title: "Samples", Columns: []string{"t (s)", "req/s", "errors", "RSS MiB", "fds", "goroutines"}}
	for _, s := range samples {
		t.Rows = append(t.Rows, []string{fmt.Sprintf("%.0f", s.at.Seconds()), fmtRPS(s.rps), fmt.Sprint(s.errors),
			fmt.Sprintf("%.1f", kib2mib(s.rssKiB)), fmt.Sprint(s.fds), fmt.Sprint(s.gr)})
	}
	rep.addTable(t)
	return nil
}

// soakClient sends keep-alive GETs on one connection, one every interval
// from first on (it does not burst to catch up more than one second), until
// stop closes.
func soakClient(addr string, interval time.Duration, first time.Time, stop <-chan struct{},
	requests, errCount *atomic.Int64, kinds *tally, worst *maxDur) {
	k := &kaClient{addr: addr}
	defer k.drop()
	next := first
	for {
		if d := time.Until(next); d > 0 {
			select {
			case <-stop:
				return
			case <-time.After(d):
			}
		} else {
			select {
			case <-stop:
				return
			default:
			}
			if -d > time.Second {
				next = time.Now()
			}
		}
		t0 := time.Now()
		r, err := k.get("/", 5*time.Second)
		worst.observe(time.Since(t0))
		requests.Add(1)
		switch {
		case err != nil:
			errCount.Add(1)
			kinds.add(errKind(err)+" "+k.where()+": "+firstLine(strings.TrimSpace(err.Error())), 1)
		case r.status != 200:
			errCount.Add(1)
			kinds.add(fmt.Sprintf("status %d", r.status), 1)
		}
		next = next.Add(interval)
	}
}
