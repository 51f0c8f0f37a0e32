package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
)

// schemaVersion is bumped whenever a field of results.json changes meaning
// or disappears (adding fields does not bump it).
const schemaVersion = 1

// point is one load point: a body (path) at a connection count.
type point struct {
	Body      string // "small", "64k", ... (results.json "body")
	Path      string // request path, e.g. "/64k"
	BodyBytes int    // expected response body length (checked before runs)
	Conns     int
	Script    string // optional wrk Lua script text (scenarios)
}

// bodyLabel is the human name of a body size: "14 B", "64 KiB".
func bodyLabel(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// runResult is one repeat of one point: one wrk run plus the proxy's
// accounting around it.
type runResult struct {
	Rep int `json:"rep"`
	wrkResult
	Errors             int64    `json:"errors"`
	CPUUsPerReq        *float64 `json:"cpu_us_per_req"`         // proxy; null for direct
	BackendCPUUsPerReq *float64 `json:"backend_cpu_us_per_req"` // the evio backend, same for every target
	ProxyCPUPct        *float64 `json:"proxy_cpu_pct"`          // proxy CPU over the run, % of one CPU; null for direct
	LoadCPUPct         *float64 `json:"load_cpu_pct"`           // backend + wrk CPU over the run, % of one CPU
	RSSKiB             *int64   `json:"rss_kib"`                // proxy peak RSS during the run; null for direct
	RSSPerRun          bool     `json:"rss_per_run"`            // VmHWM was reset before the run
	Load1              float64  `json:"load1_before"`
	BusyPct            float64  `json:"cpu_busy_pct_before"`
	Quiet              bool     `json:"quiet"` // the quiet check passed before the run
	// BackendCPUShare is each evio backend's share of the backends' CPU
	// time during the run, first backend first; only for a target that
	// sends to more than one (the two-server apex variants), nil otherwise.
	BackendCPUShare []float64 `json:"backend_cpu_share,omitempty"`
	// Metrics*: the /metrics scraper of a target that scrapes (apex-admin):
	// scrapes that returned apex's metrics, failed ones, the slowest in ms.
	MetricsScrapes      int     `json:"metrics_scrapes,omitempty"`
	MetricsScrapeErrors int     `json:"metrics_scrape_errors,omitempty"`
	MetricsScrapeMaxMs  float64 `json:"metrics_scrape_ms_max,omitempty"`
	Failed              string  `json:"failed,omitempty"`
	// Syscalls is the proxy's system calls per completed request, by
	// column of syscallColumns (-syscalls only).
	Syscalls map[string]float64 `json:"syscalls_per_req,omitempty"`
	// SyscallError says why a run with -syscalls has no count.
	SyscallError string `json:"syscall_error,omitempty"`
}

// pointResult aggregates the repeats of one point for one target. Medians
// and min-max are over the repeats that produced numbers; every repeat is
// kept in Runs. A point with any error is flagged, never silently averaged.
type pointResult struct {
	Target             string   `json:"target"`
	Body               string   `json:"body"`
	BodyBytes          int      `json:"body_bytes"`
	Path               string   `json:"path"`
	Conns              int      `json:"conns"`
	Layout             string   `json:"layout"`
	Scenario           string   `json:"scenario,omitempty"`
	Repeats            int      `json:"repeats"`
	RPS                float64  `json:"rps"`
	RPSMin             float64  `json:"rps_min"`
	RPSMax             float64  `json:"rps_max"`
	CPUUsPerReq        *float64 `json:"cpu_us_per_req"`
	CPUUsPerReqMin     *float64 `json:"cpu_us_per_req_min"`
	CPUUsPerReqMax     *float64 `json:"cpu_us_per_req_max"`
	BackendCPUUsPerReq *float64 `json:"backend_cpu_us_per_req"`
	ProxyCPUPct        *float64 `json:"proxy_cpu_pct"`
	LoadCPUPct         *float64 `json:"load_cpu_pct"`
	P50Ms              float64  `json:"p50_ms"`
	P99Ms              float64  `json:"p99_ms"`
	P99MsMax           float64  `json:"p99_ms_max"`
	RSSKiB             *int64   `json:"rss_kib"`
	Errors             int64    `json:"errors"`
	Non2xx             int64    `json:"non2xx"`
	SocketErrors       int64    `json:"socket_errors"`
	Flagged            bool     `json:"flagged"`
	Flags              []string `json:"flags,omitempty"`
	NotQuietRuns       int      `json:"not_quiet_runs"`
	// BackendCPUShare is the median over repeats of each backend's share
	// (see runResult); nil with one backend.
	BackendCPUShare     []float64 `json:"backend_cpu_share,omitempty"`
	MetricsScrapes      int       `json:"metrics_scrapes,omitempty"`       // summed over repeats
	MetricsScrapeErrors int       `json:"metrics_scrape_errors,omitempty"` // summed over repeats; any flags the point
	// Syscalls is the median over repeats of each column of the proxy's
	// system calls per request (-syscalls only).
	Syscalls map[string]float64 `json:"syscalls_per_req,omitempty"`
	Runs     []runResult        `json:"runs"`
}

// median of xs (mean of the two middle values for an even count); NaN for
// an empty slice. xs is not modified.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// minMax of xs; NaNs for an empty slice.
func minMax(xs []float64) (lo, hi float64) {
	if len(xs) == 0 {
		return math.NaN(), math.NaN()
	}
	lo, hi = xs[0], xs[0]
	for _, x := range xs[1:] {
		lo = math.Min(lo, x)
		hi = math.Max(hi, x)
	}
	return lo, hi
}

func fptr(f float64) *float64 { return &f }

// aggregate builds the pointResult of a target at a point from its runs.
func aggregate(target, layout, scen string, pt point, runs []runResult) pointResult {
	pr := pointResult{
		Target: target, Body: pt.Body, BodyBytes: pt.BodyBytes, Path: pt.Path,
		Conns: pt.Conns, Layout: layout, Scenario: scen,
		Repeats: len(runs), Runs: runs,
	}
	var rps, p50, p99, cpu, bcpu, ppct, lpct []float64
	var share [][]float64 // share[i]: backend i's share in each repeat
	sys := map[string][]float64{}
	for _, r := range runs {
		if !r.Quiet {
			pr.NotQuietRuns++
		}
		if r.Failed != "" {
			pr.Flagged = true
			pr.Flags = append(pr.Flags, fmt.Sprintf("rep %d failed: %s", r.Rep, firstLine(r.Failed)))
			continue
		}
		pr.MetricsScrapes += r.MetricsScrapes
		pr.MetricsScrapeErrors += r.MetricsScrapeErrors
		if r.MetricsScrapeErrors > 0 {
			pr.Flagged = true
			pr.Flags = append(pr.Flags, fmt.Sprintf("rep %d: %d of %d /metrics scrapes failed",
				r.Rep, r.MetricsScrapeErrors, r.MetricsScrapes+r.MetricsScrapeErrors))
		}
		for i, f := range r.BackendCPUShare {
			if i == len(share) {
				share = append(share, nil)
			}
			share[i] = append(share[i], f)
		}
		pr.Errors += r.Errors
		pr.Non2xx += r.Non2xx
		pr.SocketErrors += r.socketErrors()
		if r.Errors > 0 {
			pr.Flagged = true
			pr.Flags = append(pr.Flags, fmt.Sprintf("rep %d: %d errors (connect %d, read %d, write %d, timeout %d, non-2xx/3xx %d)",
				r.Rep, r.Errors, r.Connect, r.Read, r.Write, r.Timeout, r.Non2xx))
		}
		if r.Requests == 0 {
			pr.Flagged = true
			pr.Flags = append(pr.Flags, fmt.Sprintf("rep %d: no request completed", r.Rep))
		}
		rps = append(rps, r.RPS)
		p50 = append(p50, r.P50Ms)
		p99 = append(p99, r.P99Ms)
		if r.CPUUsPerReq != nil {
			cpu = append(cpu, *r.CPUUsPerReq)
		}
		if r.BackendCPUUsPerReq != nil {
			bcpu = append(bcpu, *r.BackendCPUUsPerReq)
		}
		if r.ProxyCPUPct != nil {
			ppct = append(ppct, *r.ProxyCPUPct)
		}
		if r.LoadCPUPct != nil {
			lpct = append(lpct, *r.LoadCPUPct)
		}
		for k, v := range r.Syscalls {
			sys[k] = append(sys[k], v)
		}
		if r.SyscallError != "" {
			// The point's counts then come from fewer repeats than its
			// other figures.
			pr.Flagged = true
			pr.Flags = append(pr.Flags, fmt.Sprintf("rep %d: no syscall count: %s", r.Rep, firstLine(r.SyscallError)))
		}
		if r.RSSKiB != nil && (pr.RSSKiB == nil || *r.RSSKiB > *pr.RSSKiB) {
			v := *r.RSSKiB
			pr.RSSKiB = &v
		}
	}
	if len(rps) == 0 {
		return pr
	}
	pr.RPS = median(rps)
	pr.RPSMin, pr.RPSMax = minMax(rps)
	pr.P50Ms = median(p50)
	pr.P99Ms = median(p99)
	_, pr.P99MsMax = minMax(p99)
	if len(cpu) > 0 {
		lo, hi := minMax(cpu)
		pr.CPUUsPerReq, pr.CPUUsPerReqMin, pr.CPUUsPerReqMax = fptr(median(cpu)), fptr(lo), fptr(hi)
	}
	if len(bcpu) > 0 {
		pr.BackendCPUUsPerReq = fptr(median(bcpu))
	}
	if len(ppct) > 0 {
		pr.ProxyCPUPct = fptr(median(ppct))
	}
	if len(lpct) > 0 {
		pr.LoadCPUPct = fptr(median(lpct))
	}
	for _, s := range share {
		pr.BackendCPUShare = append(pr.BackendCPUShare, median(s))
	}
	if len(sys) > 0 {
		pr.Syscalls = map[string]float64{}
		for k, v := range sys {
			pr.Syscalls[k] = median(v)
		}
	}
	return pr
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// machineInfo describes where the numbers come from.
type machineInfo struct {
	CPUModel   string            `json:"cpu_model"`
	CPUs       int               `json:"cpus"`
	Hypervisor bool              `json:"hypervisor"`
	Kernel     string            `json:"kernel"`
	MemTotal   string            `json:"mem_total"`
	GoVersion  string            `json:"go_version"`
	Tools      map[string]string `json:"tools"`
}

// runConfig records the options that shape the numbers.
type runConfig struct {
	Layout      string   `json:"layout"`
	ProxyCPUs   string   `json:"proxy_cpus"`
	LoadCPUs    string   `json:"load_cpus"`
	Targets     []string `json:"targets"`
	DurationS   float64  `json:"duration_s"`
	WarmupS     float64  `json:"warmup_s"`
	Repeats     int      `json:"repeats"`
	WrkThreads  int      `json:"wrk_threads"`
	ApexConns   int      `json:"apex_conns"`
	ApexOwner   string   `json:"apex_owner,omitempty"`
	NginxKA     int      `json:"nginx_upstream_keepalive"`
	BackendLoop int      `json:"backend_loops"`
	// BackendServers is how many evio backends ran (2 when an apex
	// variant lists two servers); every other target uses the first.
	BackendServers int     `json:"backend_servers"`
	MaxLoad        float64 `json:"max_load1"`
	MaxBusyPct     float64 `json:"max_busy_pct"`
	Quick          bool    `json:"quick"`
	Scenario       string  `json:"scenario,omitempty"`
	// Interleaved: every target ran at once and the repeats of each point
	// were taken target by target in turn (-interleave).
	Interleaved bool `json:"interleaved,omitempty"`
	// Syscalls: the proxy's system calls were counted during the runs
	// (-syscalls), which adds a tracepoint hit to each of them.
	Syscalls bool `json:"syscalls_counted,omitempty"`
	// Variants describes each apex variant among the targets (variants.go).
	Variants map[string]string `json:"apex_variants,omitempty"`
}

// report is the whole of results.json.
type report struct {
	Schema      int           `json:"schema"`
	Started     string        `json:"started"`
	Finished    string        `json:"finished"`
	Interrupted bool          `json:"interrupted"`
	Machine     machineInfo   `json:"machine"`
	Config      runConfig     `json:"config"`
	Notes       []string      `json:"notes"`
	Results     []pointResult `json:"results"`
}

func writeJSON(path string, r *report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ---- markdown ----

// peerBest returns, among proxies other than self at the same body and
// conns, the one with the highest rps and the one with the lowest CPU per
// request (nil when there is none). A tuned apex configuration
// (apex-pipe8) and the other apex targets are not each other's peers: each
// is ranked against nginx and HAProxy. Other variants (apex-base,
// apex-admin, ...) are ranked against apex, as the variation they are.
func peerBest(all []pointResult, self pointResult) (bestRPS, bestCPU *pointResult) {
	for i := range all {
		o := &all[i]
		apexPair := isApex(self.Target) && isApex(o.Target)
		if o.Target == self.Target || !isPeer(o.Target) || (apexPair && (isTuned(self.Target) || isTuned(o.Target))) || o.Body != self.Body ||
			o.Conns != self.Conns || o.Path != self.Path || o.RPS <= 0 {
			continue
		}
		if bestRPS == nil || o.RPS > bestRPS.RPS {
			bestRPS = o
		}
		if o.CPUUsPerReq != nil && (bestCPU == nil || *o.CPUUsPerReq < *bestCPU.CPUUsPerReq) {
			bestCPU = o
		}
	}
	return bestRPS, bestCPU
}

func findDirect(all []pointResult, self pointResult) *pointResult {
	for i := range all {
		o := &all[i]
		if o.Target == tDirect && o.Body == self.Body && o.Conns == self.Conns && o.Path == self.Path && o.RPS > 0 {
			return o
		}
	}
	return nil
}

func ratio(a, b float64) string {
	if b <= 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func fmtRPS(v float64) string {
	if math.IsNaN(v) || v == 0 {
		return "–"
	}
	return groupThousands(int64(math.Round(v)))
}

func groupThousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func fmtMs(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case v < 1:
		return fmt.Sprintf("%.3f", v)
	case v < 100:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func fmtCPU(p *float64) string {
	if p == nil {
		return "–"
	}
	return fmt.Sprintf("%.2f", *p)
}

func fmtPct(p *float64) string {
	if p == nil {
		return "–"
	}
	return fmt.Sprintf("%.0f", *p)
}

func fmtRSS(p *int64) string {
	if p == nil {
		return "–"
	}
	return fmt.Sprintf("%.1f", float64(*p)/1024)
}

// bodyOrder returns the distinct (body, path) pairs in first-seen order.
func bodyOrder(results []pointResult) []pointResult {
	var out []pointResult
	seen := map[string]bool{}
	for _, r := range results {
		k := r.Body + "\x00" + r.Path
		if !seen[k] {
			seen[k] = true
			out = append(out, r)
		}
	}
	return out
}

// markdown renders results.md: the machine, the settings, one table per
// body, each proxy's ratios to direct and to its best peer, and notes.
func markdown(r *report) string {
	var b strings.Builder
	m, c := r.Machine, r.Config
	fmt.Fprintf(&b, "# Apex benchmark results\n\n")
	fmt.Fprintf(&b, "- Started %s, finished %s", r.Started, r.Finished)
	if r.Interrupted {
		b.WriteString(" — **interrupted, partial results**")
	}
	b.WriteString("\n")
	hv := ""
	if m.Hypervisor {
		hv = ", virtual machine"
	}
	fmt.Fprintf(&b, "- Machine: %s, %d CPUs%s, %s RAM, Linux %s, %s\n", m.CPUModel, m.CPUs, hv, m.MemTotal, m.Kernel, m.GoVersion)
	var tools []string
	for _, k := range []string{"wrk", "nginx", "haproxy", "perf"} {
		if v := m.Tools[k]; v != "" {
			tools = append(tools, v)
		}
	}
	if len(tools) > 0 {
		fmt.Fprintf(&b, "- Tools: %s\n", strings.Join(tools, "; "))
	}
	if c.Layout == "pinned" {
		fmt.Fprintf(&b, "- Layout **pinned**: proxy alone on CPU %s with one worker; backend (%d evio loop(s)) and wrk on CPU %s\n",
			c.ProxyCPUs, c.BackendLoop, c.LoadCPUs)
	} else {
		fmt.Fprintf(&b, "- Layout **free**: nothing pinned, default worker counts; backend %d evio loop(s)\n", c.BackendLoop)
	}
	owner := ""
	if c.ApexOwner != "" {
		owner = ", owner " + c.ApexOwner
	}
	fmt.Fprintf(&b, "- wrk -t%d, %gs per run after a %gs warm-up, %d repeat(s) per point; apex upstream conns %d%s, nginx upstream keepalive %d\n",
		c.WrkThreads, c.DurationS, c.WarmupS, c.Repeats, c.ApexConns, owner, c.NginxKA)
	if c.Scenario != "" {
		fmt.Fprintf(&b, "- Scenario: %s\n", c.Scenario)
	}
	if c.BackendServers > 1 {
		fmt.Fprintf(&b, "- %d evio backend servers, each its own process placed like the first; direct, nginx, haproxy and apex use the first\n", c.BackendServers)
	}
	if c.Interleaved {
		b.WriteString("- Interleaved: every target ran at once, and the repeats of each point were taken target by target in turn\n")
	}
	if c.Syscalls {
		b.WriteString("- Syscalls counted (-syscalls): perf stat counted the proxy's system calls during every run; each call also hit a tracepoint, so CPU µs/req is a little higher than in a run without counting\n")
	}
	for _, t := range c.Targets {
		if d, ok := c.Variants[t]; ok {
			fmt.Fprintf(&b, "- %s: %s\n", t, d)
		}
	}
	b.WriteString("- req/s is the median over repeats with [min–max]; latency is wrk's p50/p99 (median over repeats); " +
		"CPU µs/req is the proxy's utime+stime (all its processes) divided by completed requests; " +
		"proxy CPU % and load CPU % (backend + wrk) are CPU use during the run in % of one CPU (near 100 × CPUs given = that side is the bottleneck); " +
		"RSS is the proxy's peak (VmHWM) during the runs. " +
		"×direct and ×peer are ratios of req/s (higher is better); CPU ×peer is the ratio of CPU µs/req to the most frugal other proxy (lower is better).\n\n")

	for _, bo := range bodyOrder(r.Results) {
		fmt.Fprintf(&b, "## %s body (`%s`)\n\n", bodyLabel(bo.BodyBytes), bo.Path)
		b.WriteString("| target | conns | req/s | min–max | ×direct | ×peer | p50 ms | p99 ms | CPU µs/req | CPU ×peer | proxy CPU % | load CPU % | peak RSS MiB | errors |\n")
		b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		rows := []pointResult{}
		for _, pr := range r.Results {
			if pr.Body == bo.Body && pr.Path == bo.Path {
				rows = append(rows, pr)
			}
		}
		sort.SliceStable(rows, func(i, j int) bool { return rows[i].Conns < rows[j].Conns })
		for _, pr := range rows {
			name := pr.Target
			if pr.Flagged {
				name += " ⚠"
			}
			xDirect, xPeer, cpuPeer := "–", "–", "–"
			if isProxy(pr.Target) {
				br, bc := peerBest(r.Results, pr)
				// The origin's requests never reach the backend: its
				// req/s compare with nothing; its CPU does.
				if d := findDirect(r.Results, pr); d != nil && pr.Target != tOrigin {
					xDirect = ratio(pr.RPS, d.RPS)
				}
				if br != nil && pr.Target != tOrigin {
					xPeer = ratio(pr.RPS, br.RPS) + " " + br.Target
				}
				if bc != nil && pr.CPUUsPerReq != nil {
					cpuPeer = ratio(*pr.CPUUsPerReq, *bc.CPUUsPerReq) + " " + bc.Target
				}
			}
			minmax := "–"
			if pr.RPS > 0 {
				minmax = fmtRPS(pr.RPSMin) + "–" + fmtRPS(pr.RPSMax)
			}
			errs := fmt.Sprint(pr.Errors)
			if pr.Flagged {
				errs = "**" + errs + "**"
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
				name, pr.Conns, fmtRPS(pr.RPS), minmax, xDirect, xPeer, fmtMs(pr.P50Ms), fmtMs(pr.P99Ms),
				fmtCPU(pr.CPUUsPerReq), cpuPeer, fmtPct(pr.ProxyCPUPct), fmtPct(pr.LoadCPUPct), fmtRSS(pr.RSSKiB), errs)
		}
		b.WriteString("\n")
		syscallTable(&b, rows)
	}

	var notes []string
	for _, pr := range r.Results {
		for _, f := range pr.Flags {
			notes = append(notes, fmt.Sprintf("⚠ %s %s c=%d: %s", pr.Target, pr.Body, pr.Conns, f))
		}
		if len(pr.BackendCPUShare) > 1 {
			parts := make([]string, len(pr.BackendCPUShare))
			for i, f := range pr.BackendCPUShare {
				parts[i] = fmt.Sprintf("%.0f %%", 100*f)
			}
			notes = append(notes, fmt.Sprintf("%s %s c=%d: the backends' CPU time split %s (median over repeats)",
				pr.Target, pr.Body, pr.Conns, strings.Join(parts, " / ")))
		}
		if pr.NotQuietRuns > 0 {
			notes = append(notes, fmt.Sprintf("%s %s c=%d: %d run(s) started before the machine was quiet (see results.json load1_before)",
				pr.Target, pr.Body, pr.Conns, pr.NotQuietRuns))
		}
	}
	for _, pr := range r.Results {
		if !isProxy(pr.Target) || pr.BackendCPUUsPerReq == nil {
			continue
		}
		if d := findDirect(r.Results, pr); d != nil && d.BackendCPUUsPerReq != nil && *d.BackendCPUUsPerReq > 0 {
			if x := *pr.BackendCPUUsPerReq / *d.BackendCPUUsPerReq; x > 1.5 {
				notes = append(notes, fmt.Sprintf("%s %s c=%d: the backend spent %.1f× more CPU per request than with direct (%.1f vs %.1f µs): "+
					"%s treats the backend differently (new upstream connections per request? fewer requests per backend read?), so its numbers include that",
					pr.Target, pr.Body, pr.Conns, x, *pr.BackendCPUUsPerReq, *d.BackendCPUUsPerReq, pr.Target))
			}
		}
	}
	notes = append(notes, r.Notes...)
	if len(notes) > 0 {
		b.WriteString("## Notes\n\n")
		for _, n := range notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// writeOutputs writes results.json, results.md and the charts into dir.
func writeOutputs(dir string, r *report) (md string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := writeJSON(filepath.Join(dir, "results.json"), r); err != nil {
		return "", err
	}
	md = markdown(r)
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(md), 0o644); err != nil {
		return md, err
	}
	if len(r.Results) > 0 {
		if err := writeCharts(dir, r); err != nil {
			return md, fmt.Errorf("charts: %w", err)
		}
	}
	return md, nil
}

// machine describes this machine for the report.
func machine() machineInfo {
	m := machineInfo{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Tools: map[string]string{}}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(l, ":")
			if !ok {
				continue
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if k == "model name" && m.CPUModel == "" {
				m.CPUModel = v
			}
			if k == "flags" && strings.Contains(" "+v+" ", " hypervisor ") {
				m.Hypervisor = true
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseFloat(f[1], 64); err == nil {
					m.MemTotal = fmt.Sprintf("%.1f GiB", kb/1024/1024)
				}
			}
		}
	}
	if f := strings.Fields(toolVersion("wrk", "-v")); len(f) >= 2 {
		m.Tools["wrk"] = "wrk " + f[1]
	}
	m.Tools["nginx"] = strings.TrimPrefix(toolVersion("nginx", "-v"), "nginx version: ")
	if v := toolVersion("haproxy", "-v"); v != "" {
		f := strings.Fields(v)
		if len(f) >= 3 {
			v = "haproxy " + f[2]
		}
		m.Tools["haproxy"] = v
	}
	m.Tools["perf"] = toolVersion("perf", "--version")
	for k, v := range m.Tools {
		if v == "" {
			delete(m.Tools, k)
		}
	}
	return m
}

// syscallTable writes the system calls per request of the rows that
// counted them (-syscalls), one column per syscallColumns entry.
func syscallTable(b *strings.Builder, rows []pointResult) {
	var counted []pointResult
	for _, pr := range rows {
		if pr.Syscalls != nil {
			counted = append(counted, pr)
		}
	}
	if len(counted) == 0 {
		return
	}
	b.WriteString("System calls per request (the proxy's processes, `perf stat` on the syscall tracepoints; each column is its own median over repeats, so the columns need not add up to `all`):\n\n")
	b.WriteString("| target | conns | CPU µs/req | " + strings.Join(syscallColumns, " | ") + " |\n")
	b.WriteString("|---|--:|--:|" + strings.Repeat("--:|", len(syscallColumns)) + "\n")
	for _, pr := range counted {
		fmt.Fprintf(b, "| %s | %d | %s |", pr.Target, pr.Conns, fmtCPU(pr.CPUUsPerReq))
		for _, c := range syscallColumns {
			fmt.Fprintf(b, " %.3f |", pr.Syscalls[c])
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
}
