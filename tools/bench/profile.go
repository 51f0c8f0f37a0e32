package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// runProfile (-profile) puts one target (apex by default) under steady wrk
// load and captures, into <out>/profile/:
//
//	<t>-cpu.pprof      CPU profile from apex's /debug/pprof/profile (apex only)
//	<t>-cpu-top.txt    go tool pprof -top
//	<t>-cpu.svg        go tool pprof -svg call graph (needs graphviz's dot)
//	perf.data          perf record -e cpu-clock -g of every process of the target
//	perf-top.txt       perf report, flat, by DSO and symbol
//	perf-callers.txt   perf report: the hottest symbols with the call chains that reach them
//	wrk-*.txt          the load runs that were profiled
//
// The two captures run one after the other so that perf's overhead does not
// bias the pprof profile and vice versa.
func (b *bench) runProfile(ctx context.Context) error {
	o := b.o
	name := o.profileTarget
	if !isProxy(name) {
		return fmt.Errorf("-profile-target must be a proxy (apex, nginx, haproxy), not %q", name)
	}
	if _, err := parseTargets(name); err != nil {
		return err
	}
	if ok, note := lookTarget(name); !ok {
		return fmt.Errorf("%s", note)
	}
	if isApex(name) {
		if err := b.prepareApex(ctx); err != nil {
			return err
		}
	}
	t, err := startTarget(name, b.env())
	if err != nil {
		return err
	}
	defer func() {
		t.stop()
		b.saveArtifacts(t)
	}()
	pt := point{Body: strings.TrimPrefix(o.profilePath, "/"), Path: o.profilePath, BodyBytes: bodyPaths[o.profilePath], Conns: o.profileConns}
	if err := verifyTarget(ctx, t, []point{pt}); err != nil {
		return fmt.Errorf("%s is broken: %v", name, err)
	}
	dir := filepath.Join(o.out, "profile")
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	secs := int(math.Ceil(o.profileDur.Seconds()))
	if secs < 1 {
		secs = 1
	}
	logf("profile: %s on %s, wrk -c%d %s, %ds per capture, output in %s", name, t.addr, pt.Conns, pt.Path, secs, dir)
	if o.warmup > 0 {
		if _, err := runWrk(ctx, b.lay.loadCPUs, filepath.Join(dir, "wrk-warmup.txt"),
			wrkArgs(o.wrkThreads, pt.Conns, o.warmup, t.url(pt.Path), ""), o.warmup); err != nil && ctx.Err() == nil {
			logf("profile: warm-up: %v", firstLine(err.Error()))
		}
	}
	var summary, failures []string
	captured := 0

	// 1. pprof, from apex's admin listener.
	if t.adminAddr != "" {
		prof := filepath.Join(dir, name+"-cpu.pprof")
		w, err := b.underLoad(ctx, t, pt, secs, filepath.Join(dir, "wrk-pprof.txt"), func() error {
			return fetchPprof(ctx, t.adminAddr, secs, prof)
		})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failures = append(failures, "pprof: "+err.Error())
			logf("profile: pprof capture failed: %v (does apex serve /debug/pprof/ on its [admin] listener?)", err)
		} else {
			logf("profile: pprof captured under %s req/s (%d errors) -> %s", fmtRPS(w.RPS), w.errors(), prof)
			captured++
			summary = append(summary, b.pprofReports(ctx, t, dir, prof)...)
		}
	} else {
		logf("profile: %s has no pprof endpoint; perf only", name)
	}

	// 2. perf record of every process of the target.
	if _, err := exec.LookPath("perf"); err == nil {
		data := filepath.Join(dir, "perf.data")
		w, err := b.underLoad(ctx, t, pt, secs, filepath.Join(dir, "wrk-perf.txt"), func() error {
			return b.perfRecord(ctx, t, secs, data)
		})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failures = append(failures, "perf: "+err.Error())
			logf("profile: perf capture failed: %v", err)
		} else {
			logf("profile: perf recorded under %s req/s (%d errors) -> %s", fmtRPS(w.RPS), w.errors(), data)
			captured++
			summary = append(summary, perfReports(ctx, dir, data)...)
		}
	} else {
		logf("profile: perf is not installed: no perf capture (tools/bench/setup.sh installs linux-perf)")
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	fmt.Println(strings.Join(summary, "\n"))
	if captured == 0 {
		return fmt.Errorf("no profile captured: %s", strings.Join(failures, "; "))
	}
	if len(failures) > 0 {
		logf("profile: partly done (%s); see docs/PROFILING.md for how to read the rest", strings.Join(failures, "; "))
	} else {
		logf("profile: done; see docs/PROFILING.md for how to read these")
	}
	return nil
}

// pprofReports writes the -top text and, with graphviz, the SVG call graph
// of a CPU profile, and returns the summary to print.
func (b *bench) pprofReports(ctx context.Context, t *target, dir, prof string) []string {
	var summary []string
	name := t.name
	top := filepath.Join(dir, name+"-cpu-top.txt")
	if err := goPprof(ctx, top, "-top", "-nodecount=40", t.binary, prof); err != nil {
		logf("profile: go tool pprof -top: %v", err)
	} else {
		summary = append(summary, "pprof top ("+top+"):\n"+headLines(top, 18))
	}
	if _, err := exec.LookPath("dot"); err == nil {
		svg := filepath.Join(dir, name+"-cpu.svg")
		if err := goPprof(ctx, "", "-svg", "-output", svg, t.binary, prof); err != nil {
			logf("profile: go tool pprof -svg: %v", err)
		} else {
			logf("profile: call graph -> %s", svg)
		}
	} else {
		logf("profile: graphviz (dot) is not installed: no SVG call graph (tools/bench/setup.sh installs it); the .pprof is complete")
	}
	return summary
}

// perfReports writes the flat and the call-chain reports of perf.data and
// returns the summary to print.
func perfReports(ctx context.Context, dir, data string) []string {
	var summary []string
	top := filepath.Join(dir, "perf-top.txt")
	if err := perfReport(ctx, data, top, "--no-children", "-F", "overhead,dso,sym", "-g", "none", "--percent-limit", "0.5"); err != nil {
		logf("profile: perf report: %v", err)
	} else {
		summary = append(summary, "perf top ("+top+"):\n"+headLines(top, 30))
	}
	callers := filepath.Join(dir, "perf-callers.txt")
	if err := perfReport(ctx, data, callers, "--no-children", "-F", "overhead,sym", "-g", "graph,0.5,callee", "--percent-limit", "2"); err != nil {
		logf("profile: perf report (callers): %v", err)
	}
	return summary
}

// underLoad runs wrk against the target for secs+3 seconds and calls capture
// one second in, so that the capture window sits inside steady load.
func (b *bench) underLoad(ctx context.Context, t *target, pt point, secs int, wrkLog string, capture func() error) (wrkResult, error) {
	d := time.Duration(secs+3) * time.Second
	type res struct {
		w   wrkResult
		err error
	}
	ch := make(chan res, 1)
	go func() {
		w, err := runWrk(ctx, b.lay.loadCPUs, wrkLog, wrkArgs(b.o.wrkThreads, pt.Conns, d, t.url(pt.Path), ""), d)
		ch <- res{w, err}
	}()
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
	}
	cerr := ctx.Err()
	if cerr == nil {
		cerr = capture()
	}
	r := <-ch
	if cerr != nil {
		return r.w, cerr
	}
	if r.err != nil {
		return r.w, fmt.Errorf("wrk: %v", r.err)
	}
	return r.w, nil
}

// fetchPprof GETs /debug/pprof/profile?seconds=N from the admin listener.
func fetchPprof(ctx context.Context, admin string, secs int, dst string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs+30)*time.Second)
	defer cancel()
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", admin, secs)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d: %s", url, resp.StatusCode, truncate(string(body), 200))
	}
	if !bytes.HasPrefix(body, []byte{0x1f, 0x8b}) {
		return fmt.Errorf("GET %s: not a gzipped pprof profile (%d bytes)", url, len(body))
	}
	return os.WriteFile(dst, body, 0o644)
}

// goPprof runs `go tool pprof args...`, writing stdout to outFile if set.
func goPprof(ctx context.Context, outFile string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := groupCommand(ctx, "go", append([]string{"tool", "pprof"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%v: %s", err, tailLines(errb.String(), 5))
	}
	if outFile != "" {
		return os.WriteFile(outFile, out.Bytes(), 0o644)
	}
	return nil
}

// perfRecord samples every process of the target's group on cpu-clock with
// call graphs for secs seconds. perf itself runs on the load CPUs.
func (b *bench) perfRecord(ctx context.Context, t *target, secs int, data string) error {
	pids, err := groupPIDs(t.proc.pgid)
	if err != nil || len(pids) == 0 {
		return fmt.Errorf("no process to record in group %d (%v)", t.proc.pgid, err)
	}
	ps := make([]string, len(pids))
	for i, p := range pids {
		ps[i] = strconv.Itoa(p)
	}
	logPath := filepath.Join(filepath.Dir(data), "perf-record.log")
	p, err := startProc("perf", b.lay.loadCPUs, logPath, "", nil,
		"perf", "record", "-e", "cpu-clock", "-g", "-p", strings.Join(ps, ","), "-o", data, "--", "sleep", strconv.Itoa(secs))
	if err != nil {
		return err
	}
	limit := time.Duration(secs+30) * time.Second
	select {
	case <-p.done:
	case <-ctx.Done():
		p.stop(2 * time.Second)
		return ctx.Err()
	case <-time.After(limit):
		p.stop(2 * time.Second)
		return fmt.Errorf("perf record did not finish within %v", limit)
	}
	p.stop(time.Second) // unregister
	if p.waitErr != nil {
		return fmt.Errorf("perf record: %v%s", p.waitErr, p.logTail())
	}
	if fi, err := os.Stat(data); err != nil || fi.Size() == 0 {
		return fmt.Errorf("perf record wrote no data%s", p.logTail())
	}
	return nil
}

// perfReport runs perf report --stdio on data into outFile.
func perfReport(ctx context.Context, data, outFile string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := groupCommand(ctx, "perf", append([]string{"report", "-i", data, "--stdio"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%v: %s", err, tailLines(errb.String(), 5))
	}
	return os.WriteFile(outFile, out.Bytes(), 0o644)
}

// headLines returns the first n non-comment lines of a file.
func headLines(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "#") || strings.TrimSpace(l) == "" {
			continue
		}
		out = append(out, l)
		if len(out) == n {
			break
		}
	}
	return strings.Join(out, "\n")
}
