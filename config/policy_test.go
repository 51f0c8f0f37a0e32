package config

import (
	"cmp"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// backendDoc is a document with one backend "app" whose keys from line 4
// on are the given lines, and a route to it after them: the first line
// given is line 4 of the document.
func backendDoc(lines ...string) string {
	head := []string{
		`[[backend]]`,
		`name = "app"`,
		`servers = ["h:1"]`,
	}
	return doc(append(append(head, lines...), `[[route]]`, `backend = "app"`)...)
}

func TestPolicyDefaults(t *testing.T) {
	// No policy section at all: every default, passive health included.
	c, err := Parse("apex.toml", []byte(backendDoc()))
	if err != nil {
		t.Fatal(err)
	}
	b := c.Backends[0]
	if b.Balance != "p2c" || b.HashKey != (HashKey{}) || b.Health != wantHealth || b.Circuit != wantCircuit ||
		b.Limits != wantLimits || b.Retry != wantRetry {
		t.Errorf("defaults:\n got  %+v\n want balance p2c, health %+v, circuit %+v, limits %+v, retry %+v",
			b, wantHealth, wantCircuit, wantLimits, wantRetry)
	}

	// Empty sections are the same as absent ones.
	c, err = Parse("apex.toml", []byte(backendDoc(
		`[backend.health]`, `[backend.circuit]`, `[backend.limits]`, `[backend.retry]`)))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Backends[0]; got.Health != wantHealth || got.Circuit != wantCircuit || got.Limits != wantLimits || got.Retry != wantRetry {
		t.Errorf("empty sections: got %+v", got)
	}
}

// Each policy key by itself, the others keeping their defaults.
func TestPolicyKeys(t *testing.T) {
	ms := func(n int) Duration { return Duration(time.Duration(n) * time.Millisecond) }
	tests := []struct {
		name  string
		lines []string
		want  func(b *Backend) // turns the defaults into what the lines set
	}{
		{"round_robin", []string{`balance = "round_robin"`}, func(b *Backend) { b.Balance = "round_robin" }},
		{"p2c written", []string{`balance = "p2c"`}, func(b *Backend) {}},
		{"hash on header", []string{`balance = "hash"`, `hash_key = "header:X-User-ID"`}, func(b *Backend) {
			b.Balance, b.HashKey = "hash", HashKey{HashKeyHeader, "x-user-id"}
		}},
		{"hash on cookie keeps case", []string{`hash_key = "cookie:SessionID"`, `balance = "hash"`}, func(b *Backend) {
			b.Balance, b.HashKey = "hash", HashKey{HashKeyCookie, "SessionID"}
		}},
		{"hash on client_ip", []string{`balance = "hash"`, `hash_key = "client_ip"`}, func(b *Backend) {
			b.Balance, b.HashKey = "hash", HashKey{Kind: HashKeyClientIP}
		}},
		{"active health", []string{`[backend.health]`, `path = "/healthz"`}, func(b *Backend) { b.Health.Path = "/healthz" }},
		{"short interval shortens the default timeout", []string{`[backend.health]`, `interval = "200ms"`}, func(b *Backend) {
			b.Health.Interval, b.Health.Timeout = ms(200), ms(200)
		}},
		{"long interval keeps the default timeout", []string{`[backend.health]`, `interval = "1h"`}, func(b *Backend) {
			b.Health.Interval = Duration(time.Hour)
		}},
		{"timeout equal to interval", []string{`[backend.health]`, `interval = "100ms"`, `timeout = "100ms"`}, func(b *Backend) {
			b.Health.Interval, b.Health.Timeout = ms(100), ms(100)
		}},
		{"rise and fall", []string{`[backend.health]`, `rise = 1`, `fall = 100`}, func(b *Backend) {
			b.Health.Rise, b.Health.Fall = 1, 100
		}},
		{"dotted health key", []string{`health.fall = 7`}, func(b *Backend) { b.Health.Fall = 7 }},
		{"circuit", []string{`[backend.circuit]`, `consecutive_failures = 1`, `failure_ratio = 1`, `window = "100ms"`,
			`min_requests = 1_000_000`, `cool_down = "1h"`, `half_open_trials = 1000`}, func(b *Backend) {
			b.Circuit = Circuit{1, 1, ms(100), 1000000, Duration(time.Hour), 1000}
		}},
		{"adaptive limit", []string{`[backend.limits]`, `adaptive = true`}, func(b *Backend) { b.Limits.Adaptive = true }},
		{"fixed limit", []string{`[backend.limits]`, `adaptive = false`}, func(b *Backend) { b.Limits.Adaptive = false }},
		{"limits", []string{`[backend.limits]`, `min_limit = 100000`, `max_limit = 100000`, `queue = 65536`,
			`queue_timeout = "5s"`, `shed_status = 429`}, func(b *Backend) {
			b.Limits = Limits{false, 100000, 100000, 65536, Duration(5 * time.Second), 429}
		}},
		{"shed_status 503 written", []string{`limits = { shed_status = 503 }`}, func(b *Backend) {}},
		{"both queues", []string{`queue = 8`, `limits.queue = 16`}, func(b *Backend) { b.Queue, b.Limits.Queue = 8, 16 }},
		{"no retries", []string{`[backend.retry]`, `attempts = 1`}, func(b *Backend) { b.Retry.Attempts = 1 }},
		{"zero budget", []string{`[backend.retry]`, `budget = 0.0`}, func(b *Backend) { b.Retry.Budget = 0 }},
		{"integer budget", []string{`[backend.retry]`, `attempts = 10`, `budget = 1`}, func(b *Backend) { b.Retry = Retry{10, 1} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := backendDoc(tt.lines...)
			c, err := Parse("apex.toml", []byte(text))
			if err != nil {
				t.Fatalf("%v\n%s", err, text)
			}
			want, err := Parse("apex.toml", []byte(backendDoc()))
			if err != nil {
				t.Fatal(err)
			}
			tt.want(&want.Backends[0])
			if !reflect.DeepEqual(c.Backends[0], want.Backends[0]) {
				t.Errorf("got  %+v\nwant %+v\ndocument:\n%s", c.Backends[0], want.Backends[0], text)
			}
			roundTrip(t, c)
		})
	}
}

// roundTrip checks that c survives TOML and Parse unchanged.
func roundTrip(t *testing.T, c *Config) {
	t.Helper()
	text, err := c.TOML()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(c.Source, text)
	if err != nil {
		t.Fatalf("Parse(TOML()): %v\n%s", err, text)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip changed the config:\n got  %+v\n want %+v\nTOML:\n%s", back, c, text)
	}
}

func TestServersTableForm(t *testing.T) {
	want := []ServerAddr{{"10.0.0.1:9000", 1}, {"[::1]:9001", 2}}
	for _, tt := range []struct {
		name  string
		lines []string
	}{
		{"strings", []string{`servers = ["10.0.0.1:9000", "[::1]:9001 weight=2"]`}},
		{"inline tables", []string{`servers = [{addr = "10.0.0.1:9000"}, {addr = "[::1]:9001", weight = 2}]`}},
		{"mixed", []string{`servers = [`, `  "10.0.0.1:9000",`, `  { addr = "[::1]:9001", weight = 2 },`, `]`}},
		{"weight 1 written", []string{`servers = [{addr = "10.0.0.1:9000", weight = 1}, "[::1]:9001 weight=2"]`}},
		{"array of tables", []string{
			`[[backend.servers]]`,
			`addr = "10.0.0.1:9000"`,
			`[[backend.servers]]`,
			`weight = 2`,
			`addr = "[::1]:9001"`,
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			text := doc(append(append([]string{`[[backend]]`, `name = "app"`}, tt.lines...), `[[route]]`, `backend = "app"`)...)
			c, err := Parse("apex.toml", []byte(text))
			if err != nil {
				t.Fatalf("%v\n%s", err, text)
			}
			if got := c.Backends[0].Servers; !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
			roundTrip(t, c)
		})
	}
}

func TestPolicyErrors(t *testing.T) {
	const serverForms = `expected a string "host:port [weight=N]" or a table {addr = "host:port", weight = N}`
	tests := []struct {
		name string
		doc  string
		want string // the whole error text
	}{
		// Servers written as tables.
		{"server table without addr", doc(
			`[[backend]]`,
			`name = "app"`,
			`servers = [`,
			`  "h:1",`,
			`  { weight = 2 },`,
			`]`,
			`[[route]]`,
			`backend = "app"`),
			`apex.toml:5: backend[0].servers[1].addr: required key is missing; a server table needs addr = "host:port"`},
		{"server table bad addr", backendDoc(
			`[[backend]]`,
			`name = "b"`,
			`servers = [{ addr = "h:1 weight=2" }]`),
			`apex.toml:6: backend[1].servers[0].addr: invalid address "h:1 weight=2": non-numeric port "1 weight=2"`},
		{"server table without host", backendDoc(
			`[[backend]]`,
			`name = "b"`,
			`servers = [{ addr = ":80" }]`),
			`apex.toml:6: backend[1].servers[0].addr: invalid address ":80": missing host`},
		{"server table integer addr", backendDoc(
			`[[backend]]`,
			`name = "b"`,
			`servers = [{ addr = 80 }]`),
			`apex.toml:6: backend[1].servers[0].addr: expected a string, got integer 80`},
		{"server table weight 0", backendDoc(
			`[[backend]]`,
			`name = "b"`,
			`servers = [{ addr = "h:1", weight = 0 }]`),
			`apex.toml:6: backend[1].servers[0].weight: 0 out of range 1..1000`},
		{"server table string weight", backendDoc(
			`[[backend]]`,
			`name = "b"`,
			`servers = [{ addr = "h:1", weight = "2" }]`),
			`apex.toml:6: backend[1].servers[0].weight: expected an integer, got string "2"`},
		{"server table unknown key", backendDoc(
			`[[backend]]`,
			`name = "b"`,
			`servers = [{ addr = "h:1", backup = true }]`),
			`apex.toml:6: backend[1].servers[0].backup: unknown key (valid keys: addr, weight)`},
		{"server integer", backendDoc(
			`[[backend]]`,
			`name = "b"`,
			`servers = ["h:1", 9000]`),
			`apex.toml:6: backend[1].servers[1]: ` + serverForms + `, got integer 9000`},
		{"server array", backendDoc(
			`[[backend]]`,
			`name = "b"`,
			`servers = [["h:1"]]`),
			`apex.toml:6: backend[1].servers[0]: ` + serverForms + `, got an array`},
		{"array of server tables, bad weight", doc(
			`[[backend]]`,
			`name = "app"`,
			`[[backend.servers]]`,
			`addr = "h:1"`,
			`[[backend.servers]]`,
			`addr = "h:2"`,
			`weight = 1001`,
			`[[route]]`,
			`backend = "app"`),
			`apex.toml:7: backend[0].servers[1].weight: 1001 out of range 1..1000`},
		{"array of server tables, no addr", doc(
			`[[backend]]`,
			`name = "app"`,
			`[[backend.servers]]`,
			`addr = "h:1"`,
			`[[backend.servers]]`,
			`weight = 2`,
			`[[route]]`,
			`backend = "app"`),
			`apex.toml:5: backend[0].servers[1].addr: required key is missing; a server table needs addr = "host:port"`},

		// Balance and hash_key.
		{"bad balance", backendDoc(
			`balance = "least_conn"`),
			`apex.toml:4: backend[0].balance: invalid value "least_conn" (want one of: p2c, round_robin, hash)`},
		{"hash without hash_key", backendDoc(
			`conns = 4`,
			`balance = "hash"`),
			`apex.toml:5: backend[0].balance: balance = "hash" needs hash_key (header:NAME, cookie:NAME or client_ip)`},
		{"hash_key without balance", backendDoc(
			`hash_key = "client_ip"`),
			`apex.toml:4: backend[0].hash_key: hash_key is only allowed with balance = "hash" (balance is "p2c")`},
		{"hash_key with round_robin", backendDoc(
			`balance = "round_robin"`,
			`hash_key = "header:X-User"`),
			`apex.toml:5: backend[0].hash_key: hash_key is only allowed with balance = "hash" (balance is "round_robin")`},
		{"hash_key with a bad balance", backendDoc(
			`hash_key = "client_ip"`,
			`balance = "hashed"`),
			`apex.toml:5: backend[0].balance: invalid value "hashed" (want one of: p2c, round_robin, hash)`},
		{"hash_key unknown kind", backendDoc(
			`balance = "hash"`,
			`hash_key = "query:user"`),
			`apex.toml:5: backend[0].hash_key: invalid hash_key "query:user"; want header:NAME, cookie:NAME or client_ip`},
		{"hash_key kind in upper case", backendDoc(
			`balance = "hash"`,
			`hash_key = "Header:X-User"`),
			`apex.toml:5: backend[0].hash_key: invalid hash_key "Header:X-User"; want header:NAME, cookie:NAME or client_ip`},
		{"hash_key bare header name", backendDoc(
			`balance = "hash"`,
			`hash_key = "X-User"`),
			`apex.toml:5: backend[0].hash_key: invalid hash_key "X-User"; want header:NAME, cookie:NAME or client_ip`},
		{"hash_key client_ip with a name", backendDoc(
			`balance = "hash"`,
			`hash_key = "client_ip:v4"`),
			`apex.toml:5: backend[0].hash_key: invalid hash_key "client_ip:v4"; want header:NAME, cookie:NAME or client_ip`},
		{"hash_key empty header name", backendDoc(
			`balance = "hash"`,
			`hash_key = "header:"`),
			`apex.toml:5: backend[0].hash_key: invalid hash_key "header:": missing header name after "header:"`},
		{"hash_key header name with space", backendDoc(
			`balance = "hash"`,
			`hash_key = "header:X User"`),
			`apex.toml:5: backend[0].hash_key: invalid hash_key "header:X User": header name "X User" is not a token (RFC 9110 section 5.6.2)`},
		{"hash_key header name with colon", backendDoc(
			`balance = "hash"`,
			`hash_key = "header:X-User:"`),
			`apex.toml:5: backend[0].hash_key: invalid hash_key "header:X-User:": header name "X-User:" is not a token (RFC 9110 section 5.6.2)`},
		{"hash_key cookie name with semicolon", backendDoc(
			`balance = "hash"`,
			`hash_key = "cookie:a;b"`),
			`apex.toml:5: backend[0].hash_key: invalid hash_key "cookie:a;b": cookie name "a;b" is not a token (RFC 9110 section 5.6.2)`},
		{"hash_key integer", backendDoc(
			`balance = "hash"`,
			`hash_key = 1`),
			`apex.toml:5: backend[0].hash_key: expected a string, got integer 1`},

		// [backend.health]
		{"health not a table", backendDoc(
			`health = "/healthz"`),
			`apex.toml:4: backend[0].health: expected a table, got string "/healthz"`},
		{"health array of tables", backendDoc(
			`[[backend.health]]`,
			`path = "/healthz"`),
			`apex.toml:4: backend[0].health: expected a table, got an array`},
		{"health unknown key", backendDoc(
			`[backend.health]`,
			`path = "/healthz"`,
			`intervall = "1s"`),
			`apex.toml:6: backend[0].health.intervall: unknown key (valid keys: path, interval, timeout, rise, fall)`},
		{"health path without slash", backendDoc(
			`[backend.health]`,
			`path = "healthz"`),
			`apex.toml:5: backend[0].health.path: invalid path "healthz": must start with "/"`},
		{"health path empty", backendDoc(
			`[backend.health]`,
			`path = ""`),
			`apex.toml:5: backend[0].health.path: invalid path "": must start with "/"`},
		{"health path with space", backendDoc(
			`[backend.health]`,
			`path = "/health z"`),
			`apex.toml:5: backend[0].health.path: invalid path "/health z": contains a space or control character`},
		{"health interval too short", backendDoc(
			`[backend.health]`,
			`interval = "50ms"`),
			`apex.toml:5: backend[0].health.interval: 50ms out of range 100ms..1h`},
		{"health interval too long", backendDoc(
			`[backend.health]`,
			`interval = "90m"`),
			`apex.toml:5: backend[0].health.interval: 1h30m out of range 100ms..1h`},
		{"health interval integer", backendDoc(
			`[backend.health]`,
			`interval = 1`),
			`apex.toml:5: backend[0].health.interval: expected a duration string such as "10s", got integer 1`},
		{"health timeout zero", backendDoc(
			`[backend.health]`,
			`timeout = "0s"`),
			`apex.toml:5: backend[0].health.timeout: duration "0s" must be positive`},
		{"health timeout above interval", backendDoc(
			`[backend.health]`,
			`timeout = "2s"`),
			`apex.toml:5: backend[0].health.timeout: timeout (2s) must be at most interval (1s), so that a server never has two checks in flight`},
		{"health timeout above written interval", backendDoc(
			`[backend.health]`,
			`timeout = "300ms"`,
			`interval = "200ms"`),
			`apex.toml:5: backend[0].health.timeout: timeout (300ms) must be at most interval (200ms), so that a server never has two checks in flight`},
		{"health rise zero", backendDoc(
			`[backend.health]`,
			`rise = 0`),
			`apex.toml:5: backend[0].health.rise: 0 out of range 1..100`},
		{"health fall too large", backendDoc(
			`[backend.health]`,
			`fall = 101`),
			`apex.toml:5: backend[0].health.fall: 101 out of range 1..100`},

		// [backend.circuit]
		{"circuit unknown key", backendDoc(
			`[backend.circuit]`,
			`max_failures = 5`),
			`apex.toml:5: backend[0].circuit.max_failures: unknown key (valid keys: consecutive_failures, failure_ratio, window, min_requests, cool_down, half_open_trials)`},
		{"consecutive_failures zero", backendDoc(
			`[backend.circuit]`,
			`consecutive_failures = 0`),
			`apex.toml:5: backend[0].circuit.consecutive_failures: 0 out of range 1..1000`},
		{"failure_ratio zero", backendDoc(
			`[backend.circuit]`,
			`failure_ratio = 0.0`),
			`apex.toml:5: backend[0].circuit.failure_ratio: 0 must be greater than 0 and at most 1`},
		{"failure_ratio above one", backendDoc(
			`[backend.circuit]`,
			`failure_ratio = 1.5`),
			`apex.toml:5: backend[0].circuit.failure_ratio: 1.5 must be greater than 0 and at most 1`},
		{"failure_ratio as percent", backendDoc(
			`[backend.circuit]`,
			`failure_ratio = 50`),
			`apex.toml:5: backend[0].circuit.failure_ratio: 50 must be greater than 0 and at most 1`},
		{"failure_ratio nan", backendDoc(
			`[backend.circuit]`,
			`failure_ratio = nan`),
			`apex.toml:5: backend[0].circuit.failure_ratio: nan must be greater than 0 and at most 1`},
		{"failure_ratio string", backendDoc(
			`[backend.circuit]`,
			`failure_ratio = "50%"`),
			`apex.toml:5: backend[0].circuit.failure_ratio: expected a number, got string "50%"`},
		{"window too short", backendDoc(
			`[backend.circuit]`,
			`window = "10ms"`),
			`apex.toml:5: backend[0].circuit.window: 10ms out of range 100ms..1h`},
		{"window bad", backendDoc(
			`[backend.circuit]`,
			`window = "10"`),
			`apex.toml:5: backend[0].circuit.window: invalid duration "10" (want e.g. "10s", "250ms" or "1m30s")`},
		{"min_requests zero", backendDoc(
			`[backend.circuit]`,
			`min_requests = 0`),
			`apex.toml:5: backend[0].circuit.min_requests: 0 out of range 1..1000000`},
		{"cool_down too long", backendDoc(
			`[backend.circuit]`,
			`cool_down = "2h"`),
			`apex.toml:5: backend[0].circuit.cool_down: 2h out of range 100ms..1h`},
		{"half_open_trials zero", backendDoc(
			`[backend.circuit]`,
			`half_open_trials = 0`),
			`apex.toml:5: backend[0].circuit.half_open_trials: 0 out of range 1..1000`},

		// [backend.limits]
		{"limits unknown key", backendDoc(
			`[backend.limits]`,
			`queue_size = 10`),
			`apex.toml:5: backend[0].limits.queue_size: unknown key (valid keys: adaptive, min_limit, max_limit, queue, queue_timeout, shed_status)`},
		{"adaptive string", backendDoc(
			`[backend.limits]`,
			`adaptive = "yes"`),
			`apex.toml:5: backend[0].limits.adaptive: expected a boolean, got string "yes"`},
		{"min_limit zero", backendDoc(
			`[backend.limits]`,
			`min_limit = 0`),
			`apex.toml:5: backend[0].limits.min_limit: 0 out of range 1..100000`},
		{"max_limit too large", backendDoc(
			`[backend.limits]`,
			`max_limit = 100001`),
			`apex.toml:5: backend[0].limits.max_limit: 100001 out of range 1..100000`},
		{"max_limit below min_limit", backendDoc(
			`[backend.limits]`,
			`min_limit = 10`,
			`max_limit = 5`),
			`apex.toml:6: backend[0].limits.max_limit: max_limit (5) must be at least min_limit (10)`},
		{"min_limit above default max_limit", backendDoc(
			`[backend.limits]`,
			`min_limit = 2000`),
			`apex.toml:5: backend[0].limits.min_limit: max_limit (1000) must be at least min_limit (2000)`},
		{"limits queue zero", backendDoc(
			`[backend.limits]`,
			`queue = 0`),
			`apex.toml:5: backend[0].limits.queue: 0 out of range 1..65536`},
		{"limits queue too large", backendDoc(
			`queue = 64`,
			`limits.queue = 65537`),
			`apex.toml:5: backend[0].limits.queue: 65537 out of range 1..65536`},
		{"queue_timeout zero", backendDoc(
			`[backend.limits]`,
			`queue_timeout = "0ms"`),
			`apex.toml:5: backend[0].limits.queue_timeout: duration "0ms" must be positive`},
		{"shed_status 500", backendDoc(
			`[backend.limits]`,
			`adaptive = true`,
			`shed_status = 500`),
			`apex.toml:6: backend[0].limits.shed_status: must be 503 or 429`},
		{"shed_status string", backendDoc(
			`[backend.limits]`,
			`shed_status = "503"`),
			`apex.toml:5: backend[0].limits.shed_status: expected an integer, got string "503"`},

		// [backend.retry]
		{"retry unknown key", backendDoc(
			`[backend.retry]`,
			`retries = 1`),
			`apex.toml:5: backend[0].retry.retries: unknown key (valid keys: attempts, budget)`},
		{"attempts zero", backendDoc(
			`[backend.retry]`,
			`attempts = 0`),
			`apex.toml:5: backend[0].retry.attempts: 0 out of range 1..10`},
		{"attempts too many", backendDoc(
			`[backend.retry]`,
			`attempts = 11`),
			`apex.toml:5: backend[0].retry.attempts: 11 out of range 1..10`},
		{"budget negative", backendDoc(
			`[backend.retry]`,
			`budget = -0.1`),
			`apex.toml:5: backend[0].retry.budget: -0.1 out of range 0..1`},
		{"budget as percent", backendDoc(
			`[backend.retry]`,
			`budget = 20`),
			`apex.toml:5: backend[0].retry.budget: 20 out of range 0..1`},
		{"budget inf", backendDoc(
			`[backend.retry]`,
			`budget = inf`),
			`apex.toml:5: backend[0].retry.budget: inf out of range 0..1`},
		{"budget string", backendDoc(
			`[backend.retry]`,
			`budget = "20%"`),
			`apex.toml:5: backend[0].retry.budget: expected a number, got string "20%"`},
		{"retry in second backend", backendDoc(
			`[[backend]]`,
			`name = "b"`,
			`servers = ["h:2"]`,
			`retry = { attempts = 2, budget = 2.0 }`),
			`apex.toml:7: backend[1].retry.budget: 2 out of range 0..1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("apex.toml", []byte(tt.doc))
			if err == nil {
				t.Fatalf("Parse succeeded, want error %s\ndocument:\n%s\nconfig: %+v", tt.want, tt.doc, c)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error:\n got  %s\n want %s\ndocument:\n%s", got, tt.want, tt.doc)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("error is a %T, want *Error", err)
			}
		})
	}
}

func TestApplyDefaultsPolicy(t *testing.T) {
	ms := func(n int) Duration { return Duration(time.Duration(n) * time.Millisecond) }
	for _, tt := range []struct {
		name     string
		in, want Backend
	}{
		{"zero sections are the defaults",
			Backend{},
			Backend{Balance: "p2c", Health: wantHealth, Circuit: wantCircuit, Limits: wantLimits, Retry: wantRetry}},
		{"a Limits with a field set keeps adaptive off",
			Backend{Limits: Limits{MaxLimit: 10}},
			Backend{Limits: Limits{Adaptive: false, MinLimit: 4, MaxLimit: 10, Queue: 256, QueueTimeout: ms(100), ShedStatus: 503}}},
		{"adaptive alone",
			Backend{Limits: Limits{Adaptive: true}},
			Backend{Limits: Limits{Adaptive: true, MinLimit: 4, MaxLimit: 1000, Queue: 256, QueueTimeout: ms(100), ShedStatus: 503}}},
		{"a Retry with attempts set keeps a zero budget",
			Backend{Retry: Retry{Attempts: 3}},
			Backend{Retry: Retry{Attempts: 3, Budget: 0}}},
		{"budget alone",
			Backend{Retry: Retry{Budget: 0.5}},
			Backend{Retry: Retry{Attempts: 2, Budget: 0.5}}},
		{"short interval",
			Backend{Health: Health{Interval: ms(200)}},
			Backend{Health: Health{Interval: ms(200), Timeout: ms(200), Rise: 2, Fall: 3}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &Config{Backends: []Backend{tt.in}}
			c.ApplyDefaults()
			got := c.Backends[0]
			// Only the policy settings are compared.
			if got.Balance != cmp.Or(tt.want.Balance, "p2c") ||
				got.Health != cmp.Or(tt.want.Health, wantHealth) ||
				got.Circuit != cmp.Or(tt.want.Circuit, wantCircuit) ||
				got.Limits != cmp.Or(tt.want.Limits, wantLimits) ||
				got.Retry != cmp.Or(tt.want.Retry, wantRetry) {
				t.Errorf("ApplyDefaults(%+v):\n got  %+v\n want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestHashKeyText(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want HashKey
		text string
	}{
		{"header:X-Forwarded-User", HashKey{HashKeyHeader, "x-forwarded-user"}, "header:x-forwarded-user"},
		{"cookie:JSESSIONID", HashKey{HashKeyCookie, "JSESSIONID"}, "cookie:JSESSIONID"},
		{"client_ip", HashKey{Kind: HashKeyClientIP}, "client_ip"},
	} {
		var k HashKey
		if err := k.UnmarshalText([]byte(tt.in)); err != nil || k != tt.want {
			t.Errorf("UnmarshalText(%q) = %+v, %v; want %+v", tt.in, k, err, tt.want)
		}
		if text, err := tt.want.MarshalText(); err != nil || string(text) != tt.text {
			t.Errorf("MarshalText(%+v) = %q, %v; want %q", tt.want, text, err, tt.text)
		}
	}
	var k HashKey
	if err := k.UnmarshalText([]byte("ip")); err == nil || !strings.Contains(err.Error(), "want header:NAME, cookie:NAME or client_ip") {
		t.Errorf(`UnmarshalText("ip") = %v`, err)
	}
	if s := (HashKey{}).String(); s != "" {
		t.Errorf("zero HashKey String() = %q, want empty", s)
	}
	if s := HashKeyKind(9).String(); s != "HashKeyKind(9)" {
		t.Errorf("HashKeyKind(9).String() = %q", s)
	}
}

// TestTOMLWritesPolicy checks that the policy sections are written out,
// defaults included, and that hash_key is left out when there is none.
func TestTOMLWritesPolicy(t *testing.T) {
	c, err := Parse("apex.toml", []byte(backendDoc()))
	if err != nil {
		t.Fatal(err)
	}
	text, err := c.TOML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"balance = 'p2c'",
		"[backend.health]\ninterval = '1s'\ntimeout = '500ms'\nrise = 2\nfall = 3\n",
		"[backend.circuit]\nconsecutive_failures = 5\nfailure_ratio = 0.5\n",
		"[backend.limits]\nadaptive = false\nmin_limit = 4\nmax_limit = 1000\nqueue = 256\nqueue_timeout = '100ms'\nshed_status = 503\n",
		"[backend.retry]\nattempts = 2\nbudget = 0.2\n",
	} {
		if !strings.Contains(string(text), want) {
			t.Errorf("TOML() lacks %q:\n%s", want, text)
		}
	}
	for _, absent := range []string{"hash_key", "path ="} {
		if strings.Contains(string(text), absent) {
			t.Errorf("TOML() has %q:\n%s", absent, text)
		}
	}
}
