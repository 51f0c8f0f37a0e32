package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apex-epoll/apex/config"
	"github.com/apex-epoll/apex/health"
)

// Phase 2 (balancing, health, circuit breaker, adaptive limits, retries)
// lives in the loop owners, so these tests set owner = "loop" themselves.

// server is a test upstream whose answers the test can change.
type server struct {
	*httptest.Server
	name  string
	hits  atomic.Int64
	delay atomic.Int64 // per request, ns
	fail  atomic.Bool  // answer 500
}

func startServer(t *testing.T, name string) *server {
	t.Helper()
	s := &server{name: name}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			io.WriteString(w, "ok")
			return
		}
		s.hits.Add(1)
		if d := s.delay.Load(); d > 0 {
			time.Sleep(time.Duration(d))
		}
		if s.fail.Load() {
			w.WriteHeader(500)
		}
		io.WriteString(w, s.name)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) addr() string { return strings.TrimPrefix(s.URL, "http://") }

// phase2Proxy starts Apex with one loop-owned backend "app" over servers
// (each "addr" or "addr weight=N"), the extra backend lines and sections,
// and a catch-all route. logw, if set, receives the proxy's log.
func phase2Proxy(t *testing.T, servers []string, backendExtra, sections string, logw io.Writer) (*Server, string) {
	t.Helper()
	var q []string
	for _, s := range servers {
		q = append(q, fmt.Sprintf("%q", s))
	}
	doc := fmt.Sprintf("[server]\nlisten = \"127.0.0.1:0\"\nloops = 1\n\n[[backend]]\nname = \"app\"\nservers = [%s]\nowner = \"loop\"\n%s\n%s\n\n[[route]]\nbackend = \"app\"\n",
		strings.Join(q, ", "), backendExtra, sections)
	cfg, err := config.Parse("phase2.toml", []byte(doc))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, doc)
	}
	log := testLogger()
	if logw != nil {
		log = slog.New(slog.NewTextHandler(logw, nil))
	}
	s, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { shutdownNow(s) })
	return s, s.Addrs()[0].String()
}

// getter is a keep-alive client that reports status, body and latency.
type getter struct {
	c  net.Conn
	br *bufio.Reader
}

func newGetter(t *testing.T, addr string) *getter {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &getter{c: c, br: bufio.NewReader(c)}
}

func (g *getter) do(raw string) (int, string, http.Header, error) {
	g.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(g.c, raw); err != nil {
		return 0, "", nil, err
	}
	resp, err := http.ReadResponse(g.br, nil)
	if err != nil {
		return 0, "", nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b), resp.Header, err
}

func (g *getter) get(path string, hdr ...string) (int, string, error) {
	code, body, _, err := g.do("GET " + path + " HTTP/1.1\r\nHost: x\r\n" + strings.Join(hdr, "") + "\r\n")
	return code, body, err
}

// loadResult counts what a bounded keep-alive load saw.
type loadResult struct {
	mu       sync.Mutex
	ok, errs int
	errAt    []time.Duration // when, since the start, each error happened
	byBody   map[string]int
}

// runLoad runs clients keep-alive GET loops for d, calling at(elapsed)
// from the first client between requests (to kill servers on cue).
func runLoad(t *testing.T, addr string, clients int, d time.Duration) *loadResult {
	t.Helper()
	res := &loadResult{byBody: map[string]int{}}
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var g *getter
			for time.Since(start) < d {
				if g == nil {
					c, err := net.Dial("tcp", addr)
					if err != nil {
						res.add(start, 0, "", err)
						continue
					}
					g = &getter{c: c, br: bufio.NewReader(c)}
				}
				code, body, err := g.get("/")
				res.add(start, code, body, err)
				if err != nil {
					g.c.Close()
					g = nil
				}
			}
			if g != nil {
				g.c.Close()
			}
		}()
	}
	wg.Wait()
	return res
}

func (r *loadResult) add(start time.Time, code int, body string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil || code != 200 {
		r.errs++
		r.errAt = append(r.errAt, time.Since(start))
		return
	}
	r.ok++
	r.byBody[body]++
}

// TestServerKilledUnderLoad: two servers, one killed under load. With
// active health checks and retries, clients see no error at all; with
// passive health only, at most a handful, and none in the last second.
func TestServerKilledUnderLoad(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sections string
		maxErrs  int
	}{
		{"active", "[backend.health]\npath = \"/healthz\"\ninterval = \"100ms\"\ntimeout = \"100ms\"\nfall = 1\n", 0},
		{"passive", "", 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := startServer(t, "A"), startServer(t, "B")
			_, addr := phase2Proxy(t, []string{a.addr(), b.addr()}, "conns = 4\n", tc.sections, nil)
			time.AfterFunc(500*time.Millisecond, func() {
				a.CloseClientConnections()
				a.Close()
			})
			res := runLoad(t, addr, 8, 2*time.Second)
			t.Logf("%s: %d ok (%v), %d errors at %v", tc.name, res.ok, res.byBody, res.errs, res.errAt)
			if res.errs > tc.maxErrs {
				t.Fatalf("%d errors, at most %d allowed", res.errs, tc.maxErrs)
			}
			for _, at := range res.errAt {
				if at > time.Second {
					t.Fatalf("an error at %v: errors should have stopped", at)
				}
			}
			if res.byBody["A"] == 0 || res.byBody["B"] == 0 {
				t.Fatalf("both servers should have served before the kill: %v", res.byBody)
			}
		})
	}
}

// TestSlowServerLimitFalls: one of two servers slows from 1 ms to 200 ms.
// Round robin keeps sending it its share, so its adaptive limit falls;
// once it is at its limit the balancer passes it over (backpressure-aware
// routing), and the requests the healthy server answers stay fast.
func TestSlowServerLimitFalls(t *testing.T) {
	slow, fast := startServer(t, "S"), startServer(t, "F")
	slow.delay.Store(int64(time.Millisecond))
	fast.delay.Store(int64(time.Millisecond))
	s, addr := phase2Proxy(t, []string{slow.addr(), fast.addr()}, "conns = 16\nbalance = \"round_robin\"\n",
		"[backend.limits]\nadaptive = true\nmin_limit = 2\nmax_limit = 64\nqueue = 256\nqueue_timeout = \"2s\"\n", nil)
	limitOf := func(srv *server) float64 {
		snap := s.Snapshot()
		for _, sv := range snap.Backends[0].Servers {
			if sv.Addr == srv.addr() {
				return float64(sv.Limit)
			}
		}
		t.Fatal("server not in the snapshot")
		return 0
	}
	runLoad(t, addr, 16, time.Second)
	before := limitOf(slow)
	slow.delay.Store(int64(200 * time.Millisecond))
	var mu sync.Mutex
	var fastLat []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := newGetter(t, addr)
			for time.Since(start) < 3*time.Second {
				t0 := time.Now()
				code, body, err := g.get("/")
				if err != nil || code != 200 {
					t.Errorf("status %d err %v", code, err)
					return
				}
				if body == "F" && time.Since(start) > time.Second {
					mu.Lock()
					fastLat = append(fastLat, time.Since(t0))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	after := limitOf(slow)
	sort.Slice(fastLat, func(i, j int) bool { return fastLat[i] < fastLat[j] })
	if len(fastLat) < 100 {
		t.Fatalf("only %d requests reached the fast server", len(fastLat))
	}
	p99 := fastLat[len(fastLat)*99/100]
	t.Logf("slow server's limit %v -> %v; fast server: %d requests, p99 %v; hits slow %d fast %d",
		before, after, len(fastLat), p99, slow.hits.Load(), fast.hits.Load())
	if after >= before || after < 2 {
		t.Fatalf("the slow server's limit should fall (and stay >= min_limit): %v -> %v", before, after)
	}
	if p99 > 100*time.Millisecond {
		t.Fatalf("p99 of the fast server's requests is %v", p99)
	}
}

// TestShedWithinQueueTimeout: one server at its limit. Requests beyond
// the queue get shed_status at once, queued ones when queue_timeout
// passes, both with Retry-After.
func TestShedWithinQueueTimeout(t *testing.T) {
	slow := startServer(t, "S")
	slow.delay.Store(int64(600 * time.Millisecond))
	_, addr := phase2Proxy(t, []string{slow.addr()}, "conns = 8\n",
		"[backend.limits]\nadaptive = false\nmax_limit = 2\nmin_limit = 1\nqueue = 2\nqueue_timeout = \"150ms\"\nshed_status = 429\n", nil)
	type answer struct {
		code  int
		after time.Duration
		retry string
	}
	out := make(chan answer, 8)
	start := time.Now()
	for i := 0; i < 8; i++ {
		go func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				out <- answer{code: -1}
				return
			}
			defer c.Close()
			g := &getter{c: c, br: bufio.NewReader(c)}
			code, _, h, err := g.do("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			if err != nil {
				code = -1
			}
			out <- answer{code, time.Since(start), h.Get("Retry-After")}
		}()
		time.Sleep(10 * time.Millisecond) // arrive in order
	}
	var ok, shed int
	for i := 0; i < 8; i++ {
		a := <-out
		switch a.code {
		case 200:
			ok++
		case 429:
			shed++
			if a.retry == "" {
				t.Errorf("429 without Retry-After")
			}
			if a.after > 150*time.Millisecond+350*time.Millisecond {
				t.Errorf("shed after %v, queue_timeout is 150ms", a.after)
			}
		default:
			t.Errorf("unexpected status %d", a.code)
		}
	}
	if ok != 2 || shed != 6 {
		t.Fatalf("%d answered, %d shed; want 2 and 6 (limit 2, the rest shed at once or after queue_timeout)", ok, shed)
	}
}

// logBuf collects the proxy's log for transition assertions.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) transitions() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.b.String(), "\n") {
		if !strings.Contains(line, "circuit breaker changed") {
			continue
		}
		var from, to string
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "from="); ok {
				from = v
			}
			if v, ok := strings.CutPrefix(f, "to="); ok {
				to = v
			}
		}
		out = append(out, from+">"+to)
	}
	return out
}

// TestCircuitBreakerTransitions: a server answering 500 opens its circuit
// after consecutive_failures; no request reaches it while open; after
// cool_down it half-opens; a failed trial reopens it; successful trials
// close it.
func TestCircuitBreakerTransitions(t *testing.T) {
	a, b := startServer(t, "A"), startServer(t, "B")
	var logs logBuf
	s, addr := phase2Proxy(t, []string{a.addr(), b.addr()}, "balance = \"round_robin\"\nconns = 2\n",
		"[backend.circuit]\nconsecutive_failures = 3\nmin_requests = 1000\ncool_down = \"300ms\"\nhalf_open_trials = 2\n\n[backend.retry]\nattempts = 1\n", &logs)
	g := newGetter(t, addr)
	get := func() (int, string) {
		code, body, err := g.get("/")
		if err != nil {
			t.Fatal(err)
		}
		return code, body
	}
	a.fail.Store(true)
	for a.hits.Load() < 3 {
		get()
	}
	// Open: everything goes to B.
	hits := a.hits.Load()
	for i := 0; i < 20; i++ {
		if code, body := get(); code != 200 || body != "B" {
			t.Fatalf("while open: %d %q", code, body)
		}
	}
	if a.hits.Load() != hits {
		t.Fatal("a request reached the server while its circuit was open")
	}
	// The metrics say so too.
	circuitOf := func(srv *server) (int, bool) {
		for _, sv := range s.Snapshot().Backends[0].Servers {
			if sv.Addr == srv.addr() {
				return sv.Circuit, sv.Up
			}
		}
		t.Fatal("server not in the snapshot")
		return 0, false
	}
	if st, up := circuitOf(a); st != int(health.Open) || !up {
		t.Fatalf("metrics: circuit state %d (want open), up %v (a 500 is an answer: still up)", st, up)
	}
	if st, _ := circuitOf(b); st != int(health.Closed) {
		t.Fatalf("metrics: the healthy server's circuit is %d", st)
	}
	// Half-open with the server still failing: one trial, open again.
	time.Sleep(350 * time.Millisecond)
	for a.hits.Load() == hits {
		get()
	}
	hits = a.hits.Load()
	for i := 0; i < 10; i++ {
		get()
	}
	if a.hits.Load() != hits {
		t.Fatal("the circuit did not reopen after a failed trial")
	}
	// Half-open with the server healed: trials succeed, the circuit closes.
	a.fail.Store(false)
	time.Sleep(350 * time.Millisecond)
	for i := 0; i < 20; i++ {
		if code, _ := get(); code != 200 {
			t.Fatalf("after healing: %d", code)
		}
	}
	if a.hits.Load() < hits+5 {
		t.Fatalf("the healed server gets traffic again: %d hits, was %d", a.hits.Load(), hits)
	}
	want := []string{"closed>open", "open>half_open", "half_open>open", "open>half_open", "half_open>closed"}
	if got := logs.transitions(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("transitions %v, want %v", got, want)
	}
}

// TestWeightedRoundRobin: weights 1, 2, 3 give 1/6, 2/6, 3/6 of requests.
func TestWeightedRoundRobin(t *testing.T) {
	s1, s2, s3 := startServer(t, "1"), startServer(t, "2"), startServer(t, "3")
	_, addr := phase2Proxy(t, []string{s1.addr(), s2.addr() + " weight=2", s3.addr() + " weight=3"},
		"balance = \"round_robin\"\n", "", nil)
	g := newGetter(t, addr)
	count := map[string]int{}
	for i := 0; i < 600; i++ {
		code, body, err := g.get("/")
		if err != nil || code != 200 {
			t.Fatalf("%d %v", code, err)
		}
		count[body]++
	}
	for name, want := range map[string]int{"1": 100, "2": 200, "3": 300} {
		if d := count[name] - want; d < -6 || d > 6 {
			t.Fatalf("server %s got %d of 600, want %d: %v", name, count[name], want, count)
		}
	}
}

// TestConsistentHash: requests with the same X-User go to the same
// server; removing one of five servers (a reload) moves only the keys it
// had.
func TestConsistentHash(t *testing.T) {
	var addrs []string
	for i := 0; i < 5; i++ {
		addrs = append(addrs, startServer(t, fmt.Sprint(i)).addr())
	}
	extra := "balance = \"hash\"\nhash_key = \"header:X-User\"\n"
	s, addr := phase2Proxy(t, addrs, extra, "", nil)
	g := newGetter(t, addr)
	place := func() map[int]string {
		m := map[int]string{}
		for u := 0; u < 500; u++ {
			code, body, err := g.get("/", fmt.Sprintf("X-User: user-%d\r\n", u))
			if err != nil || code != 200 {
				t.Fatalf("%d %v", code, err)
			}
			m[u] = body
		}
		return m
	}
	before := place()
	again := place()
	per := map[string]int{}
	for u, srv := range before {
		if again[u] != srv {
			t.Fatalf("user-%d moved from %s to %s with nothing changed", u, srv, again[u])
		}
		per[srv]++
	}
	for name, n := range per {
		if n < 50 || n > 150 {
			t.Fatalf("server %s has %d of 500 keys: %v", name, n, per)
		}
	}
	// Remove server 2 by a reload.
	var q []string
	for i, a := range addrs {
		if i != 2 {
			q = append(q, fmt.Sprintf("%q", a))
		}
	}
	doc := fmt.Sprintf("[server]\nlisten = \"127.0.0.1:0\"\nloops = 1\n\n[[backend]]\nname = \"app\"\nservers = [%s]\nowner = \"loop\"\n%s\n[[route]]\nbackend = \"app\"\n", strings.Join(q, ", "), extra)
	cfg, err := config.Parse("phase2.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	after := place()
	moved := 0
	for u, srv := range before {
		if after[u] == srv {
			continue
		}
		moved++
		if srv != "2" {
			t.Fatalf("user-%d moved from %s to %s, though %s stayed", u, srv, after[u], srv)
		}
	}
	t.Logf("keys per server %v; %d of 500 moved", per, moved)
	if moved != per["2"] {
		t.Fatalf("%d keys moved, server 2 had %d", moved, per["2"])
	}
}

// TestPOSTNeverRetriedAfterReachingServer: a server that reads requests
// and drops the connection. A POST that reached it gets 502 and is never
// sent to the other server; a GET is retried there; a POST with an
// Idempotency-Key is too.
func TestPOSTNeverRetriedAfterReachingServer(t *testing.T) {
	var mu sync.Mutex
	seenBad := map[string]int{}
	bad := startRaw(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		mu.Lock()
		seenBad[req.Header.Get("X-Id")]++
		mu.Unlock()
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) // reset, no response
		}
	})
	var seenGood sync.Map
	good := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		seenGood.Store(r.Header.Get("X-Id"), true)
		io.WriteString(w, "good")
	})
	_, addr := phase2Proxy(t, []string{bad.addr(), good.addr()}, "balance = \"round_robin\"\n",
		"[backend.retry]\nattempts = 2\nbudget = 1\n", nil)
	var posts502, keyed502 int
	for i := 0; i < 20; i++ {
		for _, kind := range []string{"post", "get", "keyed"} {
			id := fmt.Sprintf("%s-%d", kind, i)
			g := newGetter(t, addr)
			var raw string
			switch kind {
			case "post":
				raw = "POST / HTTP/1.1\r\nHost: x\r\nX-Id: " + id + "\r\nContent-Length: 2\r\n\r\nhi"
			case "keyed":
				raw = "POST / HTTP/1.1\r\nHost: x\r\nX-Id: " + id + "\r\nIdempotency-Key: k" + id + "\r\nContent-Length: 2\r\n\r\nhi"
			default:
				raw = "GET / HTTP/1.1\r\nHost: x\r\nX-Id: " + id + "\r\n\r\n"
			}
			code, _, _, err := g.do(raw)
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			reachedBad := seenBad[id]
			mu.Unlock()
			_, reachedGood := seenGood.Load(id)
			switch {
			case kind == "post" && reachedBad > 0:
				if code != 502 || reachedGood || reachedBad != 1 {
					t.Fatalf("%s reached the failing server %d time(s): status %d, re-sent to the other: %v", id, reachedBad, code, reachedGood)
				}
				posts502++
			case kind == "keyed" && reachedBad > 0 && code != 200:
				keyed502++
			case code != 200:
				t.Fatalf("%s: status %d (reached failing server: %d)", id, code, reachedBad)
			}
		}
	}
	if posts502 == 0 {
		t.Fatal("no POST reached the failing server: the test proved nothing")
	}
	if keyed502 != 0 {
		t.Fatalf("%d keyed POSTs were not retried", keyed502)
	}
}
