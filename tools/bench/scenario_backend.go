package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Failing backends: killed and restarted under load, silent, answering
// garbage, and closing keep-alive connections as apex reuses them.

func init() {
	registerScenario(scenario{
		Name: "killed",
		Description: "64 keep-alive clients load apex; the evio backend process is SIGKILLed, stays down 2 s and is restarted on the same port: " +
			"every request gets a 200, a 502/503 while it is down, or a clean close; none waits past the upstream response timeout (2 s); " +
			"successes resume within 1 s of the restart.",
		Run: func(ctx context.Context, env *scenarioEnv) error {
			return runKilled(ctx, env, killedParams{clients: 64, before: 3 * time.Second, down: 2 * time.Second, after: 3 * time.Second,
				responseTimeout: 2 * time.Second, connectTimeout: 500 * time.Millisecond})
		},
	})
	registerScenario(scenario{
		Name: "silent",
		Description: "A backend that accepts and reads but never answers, 100 clients for 8 s, apex with one loop, conns = 4, queue = 4, " +
			"response_timeout = 1s, [backend.limits] queue = 8: requests that get an upstream connection or a queue place get 504 after " +
			"the timeout, the others 503 at once; no more requests wait in apex than conns × (queue + 1) + limits.queue.",
		Run: func(ctx context.Context, env *scenarioEnv) error {
			return runSilent(ctx, env, silentParams{clients: 100, dur: 8 * time.Second, responseTimeout: time.Second, conns: 4, queue: 4,
				admissionQueue: 8, retryPause: 50 * time.Millisecond})
		},
	})
	registerScenario(scenario{
		Name: "garbage",
		Description: "A backend answering garbage: an invalid status line, Content-Length with Transfer-Encoding, bad chunking, a body longer than " +
			"its Content-Length (200 requests each): apex answers 502 and the client connection stays usable. Also bad chunking after the " +
			"first chunk went out: the client sees the response cut short, never a complete one.",
		Run: func(ctx context.Context, env *scenarioEnv) error {
			return runGarbage(ctx, env, garbageParams{perKind: 200, clients: 4})
		},
	})
	registerScenario(scenario{
		Name: "race",
		Description: "Keep-alive race: GET load (32 clients, 8 s each) through apex to a backend that closes every connection after 4 requests, " +
			"then to one that closes connections idle for 20 ms (clients pause 0–40 ms): no error reaches a client.",
		Run: func(ctx context.Context, env *scenarioEnv) error {
			return runRace(ctx, env, raceParams{clients: 32, dur: 8 * time.Second, afterN: 4, idle: 20 * time.Millisecond})
		},
	})
}

// ---- killed ----

type killedParams struct {
	clients             int
	before, down, after time.Duration
	responseTimeout     time.Duration // apex [[backend]] response_timeout
	connectTimeout      time.Duration
}

func runKilled(ctx context.Context, env *scenarioEnv, p killedParams) error {
	rep := env.rep
	bp, baddr, err := env.startEvio("")
	if err != nil {
		return err
	}
	a, err := env.startApex(apexSpec{upstream: baddr, backend: fmt.Sprintf("response_timeout = %q\nconnect_timeout = %q",
		p.responseTimeout.String(), p.connectTimeout.String())})
	if err != nil {
		return err
	}
	if err := verifyBody(ctx, "http://"+a.addr+"/", len(smallBody)); err != nil {
		return fmt.Errorf("apex does not proxy: %v", err)
	}
	var outcomes, details tally
	var worst maxDur
	var killedAt, backAt, firstOK atomic.Int64 // unix ns
	var okBefore, okDown, okAfter atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < p.clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := &kaClient{addr: a.addr}
			defer k.drop()
			for {
				select {
				case <-stop:
					return
				default:
				}
				t0 := time.Now()
				r, err := k.get("/", p.responseTimeout+time.Second)
				done := time.Now()
				worst.observe(done.Sub(t0))
				if err != nil {
					outcomes.add(errKind(err), 1)
					details.add(fmt.Sprintf("%s %s, within %s", errKind(err), k.where(), latencyBucket(done.Sub(t0))), 1)
					if errKind(err) == "connect" {
						time.Sleep(10 * time.Millisecond)
					}
					continue
				}
				outcomes.add(fmt.Sprint(r.status), 1)
				if r.status != 200 {
					continue
				}
				switch ka, ba := killedAt.Load(), backAt.Load(); {
				case ka == 0:
					okBefore.Add(1)
				case ba == 0:
					okDown.Add(1)
				default:
					okAfter.Add(1)
					for {
						cur := firstOK.Load()
						if (cur != 0 && cur <= done.UnixNano()) || firstOK.CompareAndSwap(cur, done.UnixNano()) {
							break
						}
					}
				}
			}
		}()
	}
	stopClients := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}
	defer stopClients()
	time.Sleep(p.before)
	_ = syscall.Kill(-bp.pgid, syscall.SIGKILL)
	killedAt.Store(time.Now().UnixNano())
	select {
	case <-bp.done:
	case <-time.After(5 * time.Second):
		return fmt.Errorf("the backend did not die after SIGKILL")
	}
	bp.stop(time.Second) // reaped; off the registry
	logf("killed: backend killed; down for %v", p.down)
	time.Sleep(p.down)
	// From here on the backend counts as back: the time to the first
	// success includes the restarted process's own start-up.
	tRestart := time.Now()
	backAt.Store(tRestart.UnixNano())
	if _, _, err := env.startEvio(baddr); err != nil {
		return fmt.Errorf("restarting the backend on %s: %v", baddr, err)
	}
	listening := time.Since(tRestart)
	logf("killed: backend back on %s, listening %v after its start", baddr, listening.Round(time.Millisecond))
	time.Sleep(p.after)
	stopClients()

	c := outcomes.snapshot()
	var total int64
	for _, n := range c {
		total += n
	}
	g := "requests"
	rep.add(g, "total", float64(total), "")
	rep.add(g, "200", float64(c["200"]), "")
	rep.add(g, "502", float64(c["502"]), "")
	rep.add(g, "503", float64(c["503"]), "")
	rep.add(g, "clean close before a response (client reconnects)", float64(c["closed"]), "")
	checkOnly(rep, g, "anything else (other status, reset, truncated, malformed)", c, "200", "502", "503", "closed", "timeout")
	noteDetails(rep, "client errors", &details, 10)
	rep.check(g, fmt.Sprintf("no answer within the response timeout + 1 s (%v)", p.responseTimeout+time.Second), float64(c["timeout"]), "", "0", c["timeout"] == 0)
	rep.check(g, "slowest request", worst.get().Seconds()*1000, "ms", fmt.Sprintf("≤ response_timeout (%v)", p.responseTimeout), worst.get() <= p.responseTimeout)
	g = "timeline"
	rep.add(g, "200s before the kill", float64(okBefore.Load()), "")
	rep.add(g, "200s while the backend was down (answers already on their way at the kill)", float64(okDown.Load()), "")
	rep.add(g, "200s after the restart", float64(okAfter.Load()), "")
	rep.add(g, "restarted backend listening, after its start", listening.Seconds()*1000, "ms")
	if f := firstOK.Load(); f != 0 {
		d := time.Duration(f - backAt.Load())
		rep.check(g, "first 200 after the restart began", d.Seconds()*1000, "ms", "≤ 1,000 ms", d <= time.Second)
	} else {
		rep.check(g, "first 200 after the restart began", -1, "", "≤ 1,000 ms", false)
		rep.note("no request succeeded after the restart")
	}
	return nil
}

// ---- silent ----

type silentParams struct {
	clients         int
	dur             time.Duration
	responseTimeout time.Duration
	conns, queue    int           // [[backend]] conns and queue: the owner's connections and hand-off queue
	admissionQueue  int           // [backend.limits] queue: requests waiting for a server under its limit
	retryPause      time.Duration // a client waits this long after a 503
}

func runSilent(ctx context.Context, env *scenarioEnv, p silentParams) error {
	rep := env.rep
	be, err := startRawServer(func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	if err != nil {
		return err
	}
	defer be.close()
	a, err := env.startApex(apexSpec{upstream: be.addr(), loops: 1,
		backend: fmt.Sprintf("conns = %d\nqueue = %d\nresponse_timeout = %q", p.conns, p.queue, p.responseTimeout.String()),
		tables:  fmt.Sprintf("[backend.limits]\nqueue = %d", p.admissionQueue)})
	if err != nil {
		return err
	}
	// Every request waiting in apex is on an upstream connection, in an
	// owner's hand-off queue or in the admission queue in front of them.
	capacity := p.conns*(p.queue+1) + p.admissionQueue
	maxWait := time.Duration(p.queue+1) * p.responseTimeout
	type span struct{ from, to time.Time }
	var mu sync.Mutex
	var waits []span // requests answered 504
	var outcomes, details tally
	var min504, max504, max503 atomic.Int64
	min504.Store(int64(time.Hour))
	rss := watchRSS(a.pid())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < p.clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := &kaClient{addr: a.addr}
			defer k.drop()
			var mine []span
			defer func() {
				mu.Lock()
				waits = append(waits, mine...)
				mu.Unlock()
			}()
			for {
				select {
				case <-stop:
					return
				default:
				}
				t0 := time.Now()
				r, err := k.get("/", maxWait+2*time.Second)
				t1 := time.Now()
				d := int64(t1.Sub(t0))
				if err != nil {
					outcomes.add(errKind(err), 1)
					details.add(fmt.Sprintf("%s %s, within %s", errKind(err), k.where(), latencyBucket(t1.Sub(t0))), 1)
					if errKind(err) == "connect" {
						time.Sleep(p.retryPause)
					}
					continue
				}
				outcomes.add(fmt.Sprint(r.status), 1)
				switch r.status {
				case 504:
					mine = append(mine, span{t0, t1})
					for cur := min504.Load(); d < cur && !min504.CompareAndSwap(cur, d); cur = min504.Load() {
					}
					for cur := max504.Load(); d > cur && !max504.CompareAndSwap(cur, d); cur = max504.Load() {
					}
				case 503:
					for cur := max503.Load(); d > cur && !max503.CompareAndSwap(cur, d); cur = max503.Load() {
					}
					time.Sleep(p.retryPause)
				}
			}
		}()
	}
	select {
	case <-ctx.Done():
	case <-time.After(p.dur):
	}
	close(stop)
	wg.Wait() // bounded: each request ends within maxWait + 2 s
	base, peak, _ := rss.finish()
	time.Sleep(500 * time.Millisecond)
	end, endErr := rssKiB(a.pid())

	c := outcomes.snapshot()
	g := "responses"
	rep.add(g, "504 (waited for the silent backend)", float64(c["504"]), "")
	rep.add(g, "503 (queue full)", float64(c["503"]), "")
	checkOnly(rep, g, "anything else (other status, client error, no answer)", c, "503", "504")
	noteDetails(rep, "client errors", &details, 10)
	if c["504"] == 0 || c["503"] == 0 {
		rep.check(g, "both 504s and 503s seen", 0, "", "1 (yes)", false)
		return nil
	}
	g = "timing"
	rep.check(g, "quickest 504", time.Duration(min504.Load()).Seconds(), "s",
		fmt.Sprintf("≥ response_timeout − 0.05 s (%.2f s)", (p.responseTimeout-50*time.Millisecond).Seconds()),
		time.Duration(min504.Load()) >= p.responseTimeout-50*time.Millisecond)
	rep.check(g, "slowest 504", time.Duration(max504.Load()).Seconds(), "s",
		fmt.Sprintf("≤ (queue + 1) × response_timeout + 1 s (%.0f s)", (maxWait+time.Second).Seconds()),
		time.Duration(max504.Load()) <= maxWait+time.Second)
	rep.check(g, "slowest 503", time.Duration(max503.Load()).Seconds()*1000, "ms", "≤ 500 ms (at once)", time.Duration(max503.Load()) <= 500*time.Millisecond)
	// The most requests waiting in apex at one instant: the largest
	// overlap of the 504 requests' lifetimes.
	type ev struct {
		at time.Time
		d  int
	}
	evs := make([]ev, 0, 2*len(waits))
	for _, s := range waits {
		evs = append(evs, ev{s.from, +1}, ev{s.to, -1})
	}
	sort.Slice(evs, func(i, j int) bool {
		if evs[i].at.Equal(evs[j].at) {
			return evs[i].d < evs[j].d
		}
		return evs[i].at.Before(evs[j].at)
	})
	cur, most := 0, 0
	for _, e := range evs {
		cur += e.d
		most = max(most, cur)
	}
	g = "queue"
	rep.check(g, "most requests waiting in apex at once (overlap of the 504s)", float64(most), "",
		fmt.Sprintf("≤ conns × (queue + 1) + limits.queue = %d", capacity), most <= capacity)
	rep.add(g, "connections the silent backend accepted", float64(be.accepted.Load()), "")
	rep.add(g, "apex RSS before", kib2mib(base), "MiB")
	rep.add(g, "apex RSS peak", kib2mib(peak), "MiB")
	if endErr == nil {
		rep.add(g, "apex RSS after", kib2mib(end), "MiB")
	}
	return nil
}

// ---- garbage ----

type garbageParams struct {
	perKind int // garbage responses per kind
	clients int // client connections per kind
}

// garbageKind is one broken response. late: the head and a valid first
// chunk go out, the broken chunk 50 ms later, so apex has already sent the
// head to the client and can only cut the response short.
type garbageKind struct {
	name, path, resp string
	late             bool
}

var garbageKinds = []garbageKind{
	{name: "invalid status line", path: "/bad-status", resp: "HTTP/1.1 OK\r\n\r\n"},
	{name: "Content-Length and Transfer-Encoding", path: "/cl-te", resp: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
	{name: "bad chunking", path: "/bad-chunk", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"},
	{name: "body longer than its Content-Length", path: "/long-body", resp: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA-BYTES"},
	{name: "bad chunking after the first chunk", path: "/late-bad-chunk", late: true,
		resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"},
}

func runGarbage(ctx context.Context, env *scenarioEnv, p garbageParams) error {
	rep := env.rep
	byPath := map[string]garbageKind{}
	for _, k := range garbageKinds {
		byPath[k.path] = k
	}
	be, err := startRawServer(func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			h, err := readReqHead(br)
			if err != nil {
				return
			}
			k, ok := byPath[h.path]
			if !ok {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				continue
			}
			io.WriteString(c, k.resp)
			if k.late {
				time.Sleep(50 * time.Millisecond)
				io.WriteString(c, "zz\r\nabc\r\n0\r\n\r\n")
			}
		}
	})
	if err != nil {
		return err
	}
	defer be.close()
	a, err := env.startApex(apexSpec{upstream: be.addr()})
	if err != nil {
		return err
	}
	t := table{Title: "Outcomes by kind", Columns: []string{"kind", "requests", "502", "other status", "cut short", "connection usable after"}}
	for _, kind := range garbageKinds {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var got502, otherStatus, cut, usable, complete atomic.Int64
		var wg sync.WaitGroup
		for ci := 0; ci < p.clients; ci++ {
			n := p.perKind / p.clients
			if ci < p.perKind%p.clients {
				n++
			}
			wg.Add(1)
			go func(n int) {
				defer wg.Done()
				k := &kaClient{addr: a.addr}
				defer k.drop()
				for i := 0; i < n; i++ {
					r, err := k.get(kind.path, 5*time.Second)
					switch {
					case err != nil:
						cut.Add(1)
						continue // dropped: the next get dials again
					case r.status == 502:
						got502.Add(1)
					default:
						otherStatus.Add(1)
						if r.status == 200 {
							complete.Add(1)
						}
					}
					if k.c == nil {
						continue
					}
					if r, err := k.get("/ok", 5*time.Second); err == nil && r.status == 200 {
						usable.Add(1)
					}
				}
			}(n)
		}
		wg.Wait()
		t.Rows = append(t.Rows, []string{kind.name, fmt.Sprint(p.perKind), fmt.Sprint(got502.Load()), fmt.Sprint(otherStatus.Load()),
			fmt.Sprint(cut.Load()), fmt.Sprint(usable.Load())})
		if kind.late {
			rep.check(kind.name, "responses read as complete", float64(complete.Load()), "", "0 (cut short, or 502)", complete.Load() == 0)
			rep.add(kind.name, "cut short (connection closed)", float64(cut.Load()), "")
			continue
		}
		all := fmt.Sprintf("all %d", p.perKind)
		rep.check(kind.name, "502", float64(got502.Load()), "", all, got502.Load() == int64(p.perKind))
		rep.check(kind.name, "client connection usable afterwards (GET /ok → 200)", float64(usable.Load()), "", all, usable.Load() == int64(p.perKind))
	}
	rep.addTable(t)
	return nil
}

// ---- race ----

type raceParams struct {
	clients int
	dur     time.Duration // per backend behaviour
	afterN  int           // the first backend closes after this many responses
	idle    time.Duration // the second closes connections idle this long
}

func runRace(ctx context.Context, env *scenarioEnv, p raceParams) error {
	rep := env.rep
	type mode struct {
		name   string
		handle func(c net.Conn, closes, raced *atomic.Int64)
		pause  time.Duration // clients pause up to this long between requests
	}
	ok := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	// caught reports whether a request arrived within a millisecond on a
	// connection the backend has decided to close: the race happened, and
	// the request is dropped unanswered.
	caught := func(c net.Conn, br *bufio.Reader) bool {
		_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
		_, err := br.Peek(1)
		return err == nil
	}
	modes := []mode{
		{name: fmt.Sprintf("closes after %d requests", p.afterN), handle: func(c net.Conn, closes, raced *atomic.Int64) {
			br := bufio.NewReader(c)
			for i := 0; i < p.afterN; i++ {
				if _, err := readReqHead(br); err != nil {
					return
				}
				if _, err := io.WriteString(c, ok); err != nil {
					return
				}
			}
			// Close, without "Connection: close".
			closes.Add(1)
			if caught(c, br) {
				raced.Add(1)
			}
		}},
		{name: fmt.Sprintf("closes after %v idle", p.idle), pause: 2 * p.idle, handle: func(c net.Conn, closes, raced *atomic.Int64) {
			br := bufio.NewReader(c)
			for {
				_ = c.SetReadDeadline(time.Now().Add(p.idle))
				if _, err := br.Peek(1); err != nil {
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						closes.Add(1)
						if caught(c, br) {
							raced.Add(1)
						}
					}
					return
				}
				_ = c.SetReadDeadline(time.Time{})
				if _, err := readReqHead(br); err != nil {
					return
				}
				if _, err := io.WriteString(c, ok); err != nil {
					return
				}
			}
		}},
	}
	for mi, m := range modes {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var closes, raced atomic.Int64
		be, err := startRawServer(func(c net.Conn) { m.handle(c, &closes, &raced) })
		if err != nil {
			return err
		}
		a, err := env.startApex(apexSpec{name: fmt.Sprintf("apex-%d", mi+1), upstream: be.addr()})
		if err != nil {
			be.close()
			return err
		}
		var outcomes, details tally
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for i := 0; i < p.clients; i++ {
			wg.Add(1)
			go func(seed uint64) {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(seed, 7))
				k := &kaClient{addr: a.addr}
				defer k.drop()
				for {
					select {
					case <-stop:
						return
					default:
					}
					t0 := time.Now()
					r, err := k.get("/", 5*time.Second)
					switch {
					case err != nil:
						outcomes.add(errKind(err), 1)
						details.add(fmt.Sprintf("%s %s, within %s", errKind(err), k.where(), latencyBucket(time.Since(t0))), 1)
						if errKind(err) == "connect" {
							time.Sleep(10 * time.Millisecond)
						}
					default:
						outcomes.add(fmt.Sprint(r.status), 1)
					}
					if m.pause > 0 {
						time.Sleep(time.Duration(rng.Int64N(int64(m.pause))))
					}
				}
			}(uint64(i))
		}
		select {
		case <-ctx.Done():
		case <-time.After(p.dur):
		}
		close(stop)
		wg.Wait()
		a.stop(5 * time.Second)
		be.close()
		c := outcomes.snapshot()
		var total, bad int64
		var odd []string
		for k, n := range c {
			total += n
			if k != "200" {
				bad += n
				odd = append(odd, fmt.Sprintf("%s: %d", k, n))
			}
		}
		sort.Strings(odd)
		rep.add(m.name, "GET requests", float64(total), "")
		rep.add(m.name, "upstream connections the backend accepted", float64(be.accepted.Load()), "")
		rep.add(m.name, "connections the backend closed under apex", float64(closes.Load()), "")
		rep.add(m.name, "… with a request arriving as it closed (dropped unanswered: the race)", float64(raced.Load()), "")
		rep.check(m.name, "client-visible errors (non-200 or socket error)", float64(bad), "", "0", bad == 0)
		if len(odd) > 0 {
			rep.note("%s: %s", m.name, strings.Join(odd, ", "))
		}
		noteDetails(rep, m.name+": client errors", &details, 10)
	}
	return nil
}

// checkOnly checks that the outcomes c hold nothing but the allowed kinds,
// and notes what else there was.
func checkOnly(rep *scenarioReport, group, label string, c map[string]int64, allowed ...string) {
	other := int64(0)
	var odd []string
	for k, n := range c {
		if !slices.Contains(allowed, k) {
			other += n
			odd = append(odd, fmt.Sprintf("%s: %d", k, n))
		}
	}
	sort.Strings(odd)
	rep.check(group, label, float64(other), "", "0", other == 0)
	if len(odd) > 0 {
		rep.note("other outcomes: %s", strings.Join(odd, ", "))
	}
}
