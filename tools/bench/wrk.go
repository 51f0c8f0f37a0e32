package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what the bench keeps from one wrk run.
type wrkResult struct {
	Requests   int64   `json:"requests"`    // "N requests in D"
	ElapsedS   float64 `json:"elapsed_s"`   // D of that line, seconds
	RPS        float64 `json:"rps"`         // "Requests/sec:"
	P50Ms      float64 `json:"p50_ms"`      // Latency Distribution 50%
	P99Ms      float64 `json:"p99_ms"`      // Latency Distribution 99%
	Connect    int64   `json:"err_connect"` // Socket errors: connect
	Read       int64   `json:"err_read"`
	Write      int64   `json:"err_write"`
	Timeout    int64   `json:"err_timeout"`
	Non2xx     int64   `json:"non2xx"`    // "Non-2xx or 3xx responses:"
	CPUSeconds float64 `json:"wrk_cpu_s"` // user+system CPU of the wrk process (from wait4), set by runWrk
	sawLatency bool
}

// socketErrors is the sum of wrk's socket error counters.
func (w wrkResult) socketErrors() int64 { return w.Connect + w.Read + w.Write + w.Timeout }

// errors is every failed request wrk saw: socket errors plus non-2xx/3xx.
func (w wrkResult) errors() int64 { return w.socketErrors() + w.Non2xx }

var (
	reRequests = regexp.MustCompile(`^\s*(\d+) requests in ([0-9.]+[a-z]+)`)
	reRPS      = regexp.MustCompile(`^Requests/sec:\s*([0-9.]+)`)
	rePct      = regexp.MustCompile(`^\s*(50|75|90|99)(?:\.0+)?%\s+([0-9.]+[a-z]+)\s*$`)
	reSockErr  = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	reNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses:\s*(\d+)`)
)

// parseWrk parses the text wrk prints with --latency.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	var sawReq, sawRPS, inDist bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		trim := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trim, "Latency Distribution"):
			inDist = true
			continue
		case inDist:
			if m := rePct.FindStringSubmatch(line); m != nil {
				ms, err := parseWrkDuration(m[2])
				if err != nil {
					return r, fmt.Errorf("wrk latency %q: %v", trim, err)
				}
				switch m[1] {
				case "50":
					r.P50Ms = ms
					r.sawLatency = true
				case "99":
					r.P99Ms = ms
				}
				continue
			}
			inDist = false
		}
		if m := reRequests.FindStringSubmatch(line); m != nil {
			n, err := strconv.ParseInt(m[1], 10, 64)
			if err != nil {
				return r, err
			}
			r.Requests = n
			ms, err := parseWrkDuration(m[2])
			if err != nil {
				return r, fmt.Errorf("wrk elapsed %q: %v", m[2], err)
			}
			r.ElapsedS = ms / 1000
			sawReq = true
		} else if m := reRPS.FindStringSubmatch(trim); m != nil {
			v, err := strconv.ParseFloat(m[1], 64)
			if err != nil {
				return r, err
			}
			r.RPS = v
			sawRPS = true
		} else if m := reSockErr.FindStringSubmatch(line); m != nil {
			vals := make([]int64, 4)
			for i := range vals {
				vals[i], _ = strconv.ParseInt(m[i+1], 10, 64)
			}
			r.Connect, r.Read, r.Write, r.Timeout = vals[0], vals[1], vals[2], vals[3]
		} else if m := reNon2xx.FindStringSubmatch(line); m != nil {
			r.Non2xx, _ = strconv.ParseInt(m[1], 10, 64)
		}
	}
	if !sawReq || !sawRPS {
		return r, fmt.Errorf("wrk output has no request totals:\n%s", tailLines(out, 20))
	}
	if !r.sawLatency && r.Requests > 0 {
		return r, fmt.Errorf("wrk output has no latency distribution (was --latency passed?)")
	}
	return r, nil
}

// parseWrkDuration parses wrk's time format (format_time_us/format_time_s:
// "812.00us", "1.23ms", "2.00s", "1.50m", "1.00h") into milliseconds.
func parseWrkDuration(s string) (float64, error) {
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i <= 0 {
		return 0, fmt.Errorf("no unit in %q", s)
	}
	v, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return 0, err
	}
	var mult float64
	switch s[i:] {
	case "us":
		mult = 0.001
	case "ms":
		mult = 1
	case "s":
		mult = 1000
	case "m":
		mult = 60 * 1000
	case "h":
		mult = 3600 * 1000
	default:
		return 0, fmt.Errorf("unknown unit %q in %q", s[i:], s)
	}
	return v * mult, nil
}

// wrkArgs builds the wrk command line. Duration is rounded up to whole
// seconds (wrk's resolution).
func wrkArgs(threads, conns int, d time.Duration, url, script string) []string {
	secs := int(math.Ceil(d.Seconds()))
	if secs < 1 {
		secs = 1
	}
	if threads > conns {
		threads = conns
	}
	args := []string{"wrk",
		"-t" + strconv.Itoa(threads),
		"-c" + strconv.Itoa(conns),
		"-d" + strconv.Itoa(secs) + "s",
		"--latency",
	}
	if script != "" {
		args = append(args, "-s", script)
	}
	return append(args, url)
}

// runWrk runs wrk (pinned to cpus when not empty) and parses its output.
// The run is bounded: wrk is killed if it outlives its duration by 30 s, and
// when ctx is cancelled. The raw output is kept in logPath.
func runWrk(ctx context.Context, cpus, logPath string, args []string, d time.Duration) (wrkResult, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return wrkResult{}, err
	}
	_ = os.Remove(logPath)
	p, err := startProc("wrk", cpus, logPath, "", nil, args...)
	if err != nil {
		return wrkResult{}, err
	}
	defer p.stop(time.Second)
	limit := time.NewTimer(d + 30*time.Second)
	defer limit.Stop()
	select {
	case <-p.done:
	case <-ctx.Done():
		p.stop(time.Second)
		return wrkResult{}, ctx.Err()
	case <-limit.C:
		p.stop(time.Second)
		return wrkResult{}, fmt.Errorf("wrk did not finish within %v; killed", d+30*time.Second)
	}
	out, _ := os.ReadFile(logPath)
	if p.waitErr != nil {
		return wrkResult{}, fmt.Errorf("wrk failed (%v): %s", p.waitErr, tailLines(string(out), 10))
	}
	r, err := parseWrk(string(out))
	if ps := p.cmd.ProcessState; ps != nil {
		r.CPUSeconds = (ps.UserTime() + ps.SystemTime()).Seconds()
	}
	return r, err
}
