package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// scenarioSchema is bumped whenever a field of a reliability report
// (report.json) changes meaning or disappears.
const scenarioSchema = 1

// scenarioReport is the whole of <out>/<scenario>/report.json: what ran,
// where, and the figures with their pass criteria.
type scenarioReport struct {
	Schema        int               `json:"schema"`
	Scenario      string            `json:"scenario"`
	Description   string            `json:"description"`
	Command       string            `json:"command"` // how to reproduce it, from the repository root
	Started       string            `json:"started"`
	Finished      string            `json:"finished"`
	DurationS     float64           `json:"duration_s"`
	Machine       machineInfo       `json:"machine"`
	Layout        string            `json:"layout"`
	ProxyCPUs     string            `json:"proxy_cpus,omitempty"`
	LoadCPUs      string            `json:"load_cpus,omitempty"`
	ApexOwner     string            `json:"apex_owner,omitempty"` // -apex-owner; "" is apex's default
	ApexExtra     string            `json:"apex_backend,omitempty"`
	Quiet         bool              `json:"quiet"` // the quiet check passed before the run
	Load1Before   float64           `json:"load1_before"`
	BusyPctBefore float64           `json:"cpu_busy_pct_before"`
	Pass          bool              `json:"pass"`            // every criterion held and nothing went wrong
	Error         string            `json:"error,omitempty"` // the scenario could not be carried out
	Figures       []figure          `json:"figures"`
	Tables        []table           `json:"tables,omitempty"`
	Notes         []string          `json:"notes"`
	Configs       map[string]string `json:"configs"` // generated config of each process, by name

	configs map[string]string // filled while running; copied into Configs
}

// figure is one measured number. Criterion and Pass are set when the
// number is checked; Pass false fails the scenario.
type figure struct {
	Group     string  `json:"group,omitempty"` // part of the scenario: "apex", "nginx", "after 4 requests", ...
	Name      string  `json:"name"`
	Value     float64 `json:"value"`
	Unit      string  `json:"unit,omitempty"`
	Text      string  `json:"text"` // the value as printed
	Criterion string  `json:"criterion,omitempty"`
	Pass      *bool   `json:"pass,omitempty"`
}

// table is extra tabular output (the soak's samples, counts by kind).
type table struct {
	Title   string     `json:"title"`
	Columns []string   `json:"columns"`
	Rows    [][]string `json:"rows"`
}

func newScenarioReport(s scenario, o *options, lay layoutPlan) *scenarioReport {
	return &scenarioReport{
		Schema: scenarioSchema, Scenario: s.Name, Description: s.Description,
		Command: benchCommand(os.Args[1:]),
		Started: time.Now().Format(time.RFC3339),
		Layout:  lay.name, ProxyCPUs: lay.proxyCPUs, LoadCPUs: lay.loadCPUs,
		ApexOwner: o.apexOwner, ApexExtra: o.apexExtra,
		Figures: []figure{}, Notes: []string{}, configs: map[string]string{},
	}
}

// benchCommand is the command line that reproduces a run, with arguments
// quoted for a POSIX shell when they need it.
func benchCommand(args []string) string {
	parts := []string{"go", "run", "./tools/bench"}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}()<>|&;#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// add records a figure without a criterion.
func (r *scenarioReport) add(group, name string, v float64, unit string) {
	r.Figures = append(r.Figures, figure{Group: group, Name: name, Value: v, Unit: unit, Text: fmtValue(v, unit)})
	logf("  %s%s: %s", groupPrefix(group), name, fmtValue(v, unit))
}

// check records a figure with its criterion and whether it held.
func (r *scenarioReport) check(group, name string, v float64, unit, criterion string, ok bool) {
	pass := ok
	r.Figures = append(r.Figures, figure{Group: group, Name: name, Value: v, Unit: unit, Text: fmtValue(v, unit), Criterion: criterion, Pass: &pass})
	verdict := "ok"
	if !ok {
		verdict = "FAIL"
	}
	logf("  %s%s: %s  (%s: %s)", groupPrefix(group), name, fmtValue(v, unit), criterion, verdict)
}

func groupPrefix(g string) string {
	if g == "" {
		return ""
	}
	return g + ": "
}

func (r *scenarioReport) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	logf("NOTE: %s", msg)
	r.Notes = append(r.Notes, msg)
}

func (r *scenarioReport) addTable(t table) { r.Tables = append(r.Tables, t) }

// passed reports whether the scenario ran and every checked figure held.
func (r *scenarioReport) passed() bool {
	if r.Error != "" {
		return false
	}
	for _, f := range r.Figures {
		if f.Pass != nil && !*f.Pass {
			return false
		}
	}
	return true
}

// failures counts the checked figures that did not hold, and all checked.
func (r *scenarioReport) failures() (failed, checked int) {
	for _, f := range r.Figures {
		if f.Pass != nil {
			checked++
			if !*f.Pass {
				failed++
			}
		}
	}
	return failed, checked
}

// fmtValue prints a figure: integers with thousands separators, other
// numbers with three significant digits, then the unit.
func fmtValue(v float64, unit string) string {
	var s string
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		s = "–"
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		s = groupThousands(int64(v))
	case math.Abs(v) >= 100:
		s = groupThousands(int64(math.Round(v)))
	case math.Abs(v) >= 10:
		s = fmt.Sprintf("%.1f", v)
	case math.Abs(v) >= 1:
		s = fmt.Sprintf("%.2f", v)
	default:
		s = fmt.Sprintf("%.3f", v)
	}
	if unit == "" {
		return s
	}
	if unit == "%" {
		return s + " %"
	}
	return s + " " + unit
}

// kib2mib converts KiB to MiB for figures.
func kib2mib(k int64) float64 { return float64(k) / 1024 }

// markdown renders report.md.
func (r *scenarioReport) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Reliability scenario `%s`\n\n%s\n\n", r.Scenario, r.Description)
	verdict := "**PASS**"
	failed, checked := r.failures()
	switch {
	case r.Error != "":
		verdict = "**FAIL**: the scenario could not be carried out: " + firstLine(r.Error)
	case failed > 0:
		verdict = fmt.Sprintf("**FAIL**: %d of %d criteria failed", failed, checked)
	default:
		verdict += fmt.Sprintf(" (%d criteria)", checked)
	}
	fmt.Fprintf(&b, "- Result: %s\n", verdict)
	fmt.Fprintf(&b, "- Command: `%s`\n", r.Command)
	fmt.Fprintf(&b, "- Started %s, took %.0f s\n", r.Started, r.DurationS)
	m := r.Machine
	if m.CPUs > 0 {
		hv := ""
		if m.Hypervisor {
			hv = ", virtual machine"
		}
		fmt.Fprintf(&b, "- Machine: %s, %d CPUs%s, %s RAM, Linux %s, %s\n", m.CPUModel, m.CPUs, hv, m.MemTotal, m.Kernel, m.GoVersion)
	}
	if r.Layout == "pinned" {
		fmt.Fprintf(&b, "- Layout pinned: proxy on CPU %s (one loop unless the scenario says otherwise); backends, clients and wrk on CPU %s\n", r.ProxyCPUs, r.LoadCPUs)
	} else {
		fmt.Fprintf(&b, "- Layout free: nothing pinned\n")
	}
	if r.ApexOwner != "" || r.ApexExtra != "" {
		fmt.Fprintf(&b, "- apex upstream owner %q, extra backend lines %q\n", r.ApexOwner, r.ApexExtra)
	}
	if !r.Quiet {
		fmt.Fprintf(&b, "- The machine was **not quiet** before the run (load1 %.2f, %.0f %% busy)\n", r.Load1Before, r.BusyPctBefore)
	}
	b.WriteString("\n| part | measured | figure | criterion | result |\n|---|---|--:|---|---|\n")
	for _, f := range r.Figures {
		res := "–"
		if f.Pass != nil {
			res = "pass"
			if !*f.Pass {
				res = "**FAIL**"
			}
		}
		crit := f.Criterion
		if crit == "" {
			crit = "–"
		}
		part := f.Group
		if part == "" {
			part = "–"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", part, f.Name, f.Text, crit, res)
	}
	for _, t := range r.Tables {
		fmt.Fprintf(&b, "\n### %s\n\n| %s |\n|%s\n", t.Title, strings.Join(t.Columns, " | "), strings.Repeat("--:|", len(t.Columns)))
		for _, row := range t.Rows {
			fmt.Fprintf(&b, "| %s |\n", strings.Join(row, " | "))
		}
	}
	if strings.Contains(r.Error, "\n") {
		fmt.Fprintf(&b, "\n## Error\n\n```\n%s\n```\n", strings.TrimRight(r.Error, "\n"))
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	if len(r.Configs) > 0 {
		names := make([]string, 0, len(r.Configs))
		for n := range r.Configs {
			names = append(names, n)
		}
		sort.Strings(names)
		b.WriteString("\n## Generated configs\n")
		for _, n := range names {
			fmt.Fprintf(&b, "\n`%s`:\n\n```\n%s```\n", n, r.Configs[n])
		}
	}
	return b.String()
}

// write fills in the machine and verdict and writes report.json and
// report.md into dir; it returns the Markdown.
func (r *scenarioReport) write(dir string) (string, error) {
	if r.Machine.CPUs == 0 {
		r.Machine = machine()
	}
	if r.Finished == "" {
		r.Finished = time.Now().Format(time.RFC3339)
	}
	r.Configs = r.configs
	r.Pass = r.passed()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(js, '\n'), 0o644); err != nil {
		return "", err
	}
	md := r.markdown()
	return md, os.WriteFile(filepath.Join(dir, "report.md"), []byte(md), 0o644)
}
