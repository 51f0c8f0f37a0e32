package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apex-epoll/apex/config"
)

// TestMain lets the test binary stand in for the bench binary when a
// scenario re-executes it as the evio backend (startEvio runs
// os.Executable() -serve-backend ADDR).
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && strings.HasPrefix(os.Args[1], "-serve-") {
		o, err := parseFlags(os.Args[1:])
		name := os.Args[1]
		if err == nil {
			name, err = serveHidden(o)
		}
		if err != nil {
			os.Stderr.WriteString(name + ": " + err.Error() + "\n")
			os.Exit(1)
		}
		return
	}
	code := m.Run()
	if apexOnce.bin != "" {
		os.RemoveAll(filepath.Dir(apexOnce.bin))
	}
	os.Exit(code)
}

// The reliability scenarios of issue #5, each selectable with -scenario.
var reliabilityScenarios = []string{"fd", "flood", "garbage", "idle", "killed", "race", "silent", "slow-reader", "slow-upload", "slowloris", "soak"}

func TestReliabilityScenariosRegistered(t *testing.T) {
	for _, name := range reliabilityScenarios {
		s, err := lookupScenario(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if s.Run == nil || s.Points != nil || s.Description == "" {
			t.Errorf("%s: want a Run function, no Points and a description", name)
		}
	}
	o, err := parseFlags([]string{"-scenario", "soak", "-duration", "10m"})
	if err != nil || o.scenario != "soak" || o.duration != 10*time.Minute {
		t.Fatalf("parseFlags: %+v %v", o, err)
	}
	for _, bad := range []scenario{
		{Name: "both", Points: defaultPoints, Run: func(context.Context, *scenarioEnv) error { return nil }},
		{Name: "neither"},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("registering %q did not panic", bad.Name)
				}
			}()
			registerScenario(bad)
		}()
	}
}

func TestScenarioReportWrite(t *testing.T) {
	s := scenario{Name: "demo", Description: "A demonstration."}
	r := newScenarioReport(s, &options{apexOwner: "loop"}, layoutPlan{name: "pinned", proxyCPUs: "1", loadCPUs: "0"})
	r.Command = benchCommand([]string{"-scenario", "demo", "-apex-backend", "pipeline = 8"})
	if r.Command != "go run ./tools/bench -scenario demo -apex-backend 'pipeline = 8'" {
		t.Fatalf("command %q", r.Command)
	}
	r.configs["apex"] = "[server]\n"
	r.add("apex", "RSS per idle connection", 412.5, "B")
	r.check("apex", "errors", 0, "", "0", true)
	r.addTable(table{Title: "Samples", Columns: []string{"t", "rss"}, Rows: [][]string{{"10", "12.5"}}})
	r.note("a note with %d", 7)
	dir := t.TempDir()
	md, err := r.write(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Pass || !strings.Contains(md, "**PASS** (1 criteria)") || !strings.Contains(md, "| apex | RSS per idle connection | 413 B | – | – |") ||
		!strings.Contains(md, "| apex | errors | 0 | 0 | pass |") || !strings.Contains(md, "### Samples") || !strings.Contains(md, "- a note with 7") {
		t.Fatalf("markdown:\n%s", md)
	}
	r.check("apex", "RSS growth", 40, "MiB", "< 32 MiB", false)
	if md, err = r.write(dir); err != nil {
		t.Fatal(err)
	}
	if r.Pass || !strings.Contains(md, "**FAIL**: 1 of 2 criteria failed") || !strings.Contains(md, "| **FAIL** |") {
		t.Fatalf("a failed check does not fail the report:\n%s", md)
	}
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back scenarioReport
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Schema != scenarioSchema || back.Scenario != "demo" || back.Pass || len(back.Figures) != 3 ||
		back.Figures[2].Pass == nil || *back.Figures[2].Pass || back.Configs["apex"] != "[server]\n" || back.Machine.CPUs == 0 {
		t.Fatalf("report.json: %s", b)
	}
	md2, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil || string(md2) != md {
		t.Fatalf("report.md differs from the returned Markdown (%v)", err)
	}
	r.Error = "apex did not start\nlog tail"
	if md = r.markdown(); !strings.Contains(md, "could not be carried out: apex did not start\n") || !strings.Contains(md, "## Error") || r.passed() {
		t.Fatalf("error report:\n%s", md)
	}
}

func TestFmtValue(t *testing.T) {
	for _, c := range []struct {
		v    float64
		unit string
		want string
	}{
		{10000, "", "10,000"}, {412.5, "B", "413 B"}, {12.34, "MiB", "12.3 MiB"}, {1.234, "s", "1.23 s"},
		{0.5, "", "0.500"}, {97.6, "%", "97.6 %"},
	} {
		if got := fmtValue(c.v, c.unit); got != c.want {
			t.Errorf("fmtValue(%v, %q) = %q, want %q", c.v, c.unit, got, c.want)
		}
	}
}

func TestApexScenarioConfig(t *testing.T) {
	if got := mergeTOMLLines("conns = 4\nqueue = 4", "queue = 8\npipeline = 2\n"); got != "conns = 4\nqueue = 8\npipeline = 2" {
		t.Fatalf("merge: %q", got)
	}
	specs := []apexSpec{
		{upstream: "127.0.0.1:9000", server: `header_timeout = "10s"`, backend: "conns = 4\nqueue = 4\nresponse_timeout = \"1s\"", tables: "[backend.limits]\nqueue = 8"},
		{upstream: "127.0.0.1:9000", loops: 1},
		{},
	}
	for i, spec := range specs {
		cfg := apexScenarioConfig(spec, "127.0.0.1:8080", "127.0.0.1:9901", i == 0, "goroutine", "queue = 2")
		c, err := config.Parse("scenario.toml", []byte(cfg))
		if err != nil {
			t.Fatalf("spec %d: %v\n%s", i, err, cfg)
		}
		if c.Admin.Listen != "127.0.0.1:9901" {
			t.Errorf("spec %d: no admin listener", i)
		}
		if spec.upstream != "" {
			if len(c.Backends) != 1 || c.Backends[0].Owner != "goroutine" || c.Backends[0].Queue != 2 {
				t.Errorf("spec %d: -apex-owner/-apex-backend not applied: %+v", i, c.Backends)
			}
		}
		if i == 0 && (c.Server.Loops != 1 || c.Backends[0].Conns != 4) {
			t.Errorf("spec 0: loops %d conns %d", c.Server.Loops, c.Backends[0].Conns)
		}
	}
}

func TestReadResp(t *testing.T) {
	cases := []struct {
		in      string
		status  int
		body    int64
		close   bool
		errKind string
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, 5, false, ""},
		{"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nConnection: close\r\n\r\n", 502, 0, true, ""},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n", 200, 5, false, ""},
		{"HTTP/1.0 200 OK\r\n\r\nuntil close", 200, 11, true, ""},
		{"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx", 200, 1, false, ""},
		{"HTTP/1.1 204 No Content\r\n\r\n", 204, 0, false, ""},
		{"", 0, 0, false, "closed"},
		{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", 200, 5, false, "truncated"},
		{"HTTP/1.1 200 OK\r\nContent-", 200, 0, false, "truncated"},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 200, 0, false, "malformed"},
		{"SSH-2.0-OpenSSH\r\n", 0, 0, false, "malformed"},
	}
	for _, c := range cases {
		br := bufio.NewReader(strings.NewReader(c.in))
		r, err := readResp(br)
		if k := errKind(err); k != c.errKind {
			t.Errorf("%q: error %v (kind %q), want kind %q", c.in, err, k, c.errKind)
			continue
		}
		if r.status != c.status || r.bodyLen != c.body || (err == nil && r.close != c.close) {
			t.Errorf("%q: got %+v", c.in, r)
		}
	}
	if k := errKind(errors.New("x")); k != "other" {
		t.Errorf("errKind(other) = %q", k)
	}
	if k := errKind(io.EOF); k != "other" {
		t.Errorf("errKind(EOF) = %q", k)
	}
}

func TestParseGoroutineTotal(t *testing.T) {
	if n, err := parseGoroutineTotal("goroutine profile: total 17\n"); err != nil || n != 17 {
		t.Fatalf("%d %v", n, err)
	}
	if _, err := parseGoroutineTotal("<html>"); err == nil {
		t.Fatal("accepted garbage")
	}
}

// ---- end to end, at a tiny scale, against a freshly built apex ----

var apexOnce struct {
	sync.Once
	bin string
	err error
}

// testEnv builds apex once per test binary and returns an environment for
// one scenario (free layout, nothing pinned) that stops what it started.
func testEnv(t *testing.T, name string) *scenarioEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs apex; skipped with -short")
	}
	apexOnce.Do(func() {
		root, err := repoRoot()
		if err != nil {
			apexOnce.err = err
			return
		}
		dir, err := os.MkdirTemp("", "apex-bench-test-")
		if err != nil {
			apexOnce.err = err
			return
		}
		apexOnce.bin, apexOnce.err = buildApex(context.Background(), root, dir)
	})
	if apexOnce.err != nil {
		t.Fatalf("building apex: %v", apexOnce.err)
	}
	o := &options{apexBin: apexOnce.bin, layout: "free"}
	s, err := lookupScenario(name)
	if err != nil {
		t.Fatal(err)
	}
	env := newScenarioEnv(o, layoutPlan{name: "free", backendLoops: 1}, t.TempDir(), t.TempDir(), s)
	t.Cleanup(env.stopAll)
	return env
}

// knownApexFailures are criteria that the current apex fails, by
// "scenario/part/figure", with the reason. They are reported in
// docs/RELIABILITY.md; the tests log them instead of failing, and say so
// when one starts to pass (then remove it from here).
var knownApexFailures = map[string]string{}

// checkRan fails the test when the scenario could not run or produced no
// checked figure, and reports failed criteria (apex's behaviour) as
// errors with the whole report, except the known ones.
func checkRan(t *testing.T, env *scenarioEnv, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("scenario %s did not run: %v", env.rep.Scenario, err)
	}
	failed, checked := 0, 0
	for _, f := range env.rep.Figures {
		if f.Pass == nil {
			continue
		}
		checked++
		key := env.rep.Scenario + "/" + f.Group + "/" + f.Name
		why, known := knownApexFailures[key]
		switch {
		case !*f.Pass && known:
			t.Logf("known failure %s = %s (%s): %s", key, f.Text, f.Criterion, why)
		case !*f.Pass:
			failed++
			t.Errorf("%s = %s, want %s", key, f.Text, f.Criterion)
		case known:
			t.Logf("%s now passes: remove it from knownApexFailures", key)
		}
	}
	if checked == 0 {
		t.Fatalf("scenario %s checked nothing", env.rep.Scenario)
	}
	if failed > 0 {
		t.Logf("the whole report:\n%s", env.rep.markdown())
	}
}

func TestScenarioGarbageEndToEnd(t *testing.T) {
	env := testEnv(t, "garbage")
	checkRan(t, env, runGarbage(t.Context(), env, garbageParams{perKind: 6, clients: 2}))
}

func TestScenarioSilentEndToEnd(t *testing.T) {
	env := testEnv(t, "silent")
	checkRan(t, env, runSilent(t.Context(), env, silentParams{clients: 8, dur: 1500 * time.Millisecond,
		responseTimeout: 200 * time.Millisecond, conns: 1, queue: 2, admissionQueue: 2, retryPause: 20 * time.Millisecond}))
}

func TestScenarioKilledEndToEnd(t *testing.T) {
	env := testEnv(t, "killed")
	checkRan(t, env, runKilled(t.Context(), env, killedParams{clients: 8, before: 500 * time.Millisecond, down: 300 * time.Millisecond,
		after: 1500 * time.Millisecond, responseTimeout: time.Second, connectTimeout: 300 * time.Millisecond}))
}

func TestScenarioFDEndToEnd(t *testing.T) {
	env := testEnv(t, "fd")
	checkRan(t, env, runFD(t.Context(), env, fdParams{nofile: 64, extra: 100, window: time.Second}))
	names := make([]string, 0, len(env.rep.Figures))
	for _, f := range env.rep.Figures {
		names = append(names, f.Name)
	}
	sort.Strings(names)
	if len(names) < 8 {
		t.Fatalf("figures: %v", names)
	}
}
