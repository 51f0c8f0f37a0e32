package config

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// Parse decodes a configuration document, applies the defaults and
// validates the result. name is the document's file name: it starts every
// error message and becomes the Config's Source.
//
// Any problem in the document is reported as an *Error. When a document
// has several, Parse reports the first by line, except that problems
// between entries (duplicate backend names, routes to unknown backends)
// are only looked for once every entry is valid by itself, so that one
// typo does not also show up as its consequences.
func Parse(name string, data []byte) (*Config, error) {
	ix := newIndex(data)

	// go-toml decodes into generic values, and the typing is done here
	// rather than by go-toml decoding into structs: that way every error,
	// unknown keys and wrong types included, names the full key path with
	// array indexes, and a Duration only accepts a string (go-toml would
	// store an integer into it as nanoseconds).
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		return nil, ix.tomlError(name, err)
	}
	if ix.errMsg != "" {
		// go-toml decodes with the same parser that built the index, so
		// this cannot happen; should it, the document is still invalid.
		return nil, ix.syntaxError(name, ix.errOff, ix.errMsg)
	}

	d := &decoder{file: name, ix: ix}
	c := d.document(doc)
	if err := d.err(); err != nil {
		return nil, err
	}
	c.ApplyDefaults()
	d.crossCheck(c)
	if err := d.err(); err != nil {
		return nil, err
	}
	c.Source = name
	return c, nil
}

// decoder converts go-toml's generic values to a Config, collecting
// errors located with the index.
type decoder struct {
	file string
	ix   *index
	errs []*Error
}

func (d *decoder) errorf(path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: d.ix.line(path), Key: path, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) typeError(path, want string, got any) {
	d.errorf(path, "expected %s, got %s", want, describe(got))
}

// err returns the error with the lowest line among those collected, the
// first collected among equals, or nil.
func (d *decoder) err() error {
	if len(d.errs) == 0 {
		return nil
	}
	first := d.errs[0]
	for _, e := range d.errs[1:] {
		if e.Line < first.Line {
			first = e
		}
	}
	return first
}

var (
	topKeys     = []string{"server", "admin", "log", "backend", "route"}
	serverKeys  = []string{"listen", "loops", "header_timeout", "idle_timeout", "body_timeout", "shutdown_grace", "max_request_line", "max_header_bytes", "max_header_fields", "max_body_bytes", "output_buffer"}
	adminKeys   = []string{"listen"}
	logKeys     = []string{"level", "access", "format"}
	backendKeys = []string{"name", "servers", "conns", "queue", "pipeline", "splice", "owner", "connect_timeout", "response_timeout", "idle_timeout",
		"balance", "hash_key", "health", "circuit", "limits", "retry"}
	serverAddrKeys = []string{"addr", "weight"} // a server written as a table
	healthKeys     = []string{"path", "interval", "timeout", "rise", "fall"}
	circuitKeys    = []string{"consecutive_failures", "failure_ratio", "window", "min_requests", "cool_down", "half_open_trials"}
	limitsKeys     = []string{"adaptive", "min_limit", "max_limit", "queue", "queue_timeout", "shed_status"}
	retryKeys      = []string{"attempts", "budget"}
	routeKeys      = []string{"host", "path_prefix", "backend", "return", "body"}
)

// document decodes the whole document and checks every entry by itself.
func (d *decoder) document(doc map[string]any) *Config {
	c := new(Config)
	m := d.table("", doc, topKeys)
	if v, ok := m["server"]; ok {
		d.server("server", v, &c.Server)
	}
	if v, ok := m["admin"]; ok {
		d.admin("admin", v, &c.Admin)
	}
	if v, ok := m["log"]; ok {
		d.log("log", v, &c.Log)
	}
	if v, ok := m["backend"]; ok {
		elems := d.tables("backend", v)
		if len(elems) > 0 {
			c.Backends = make([]Backend, len(elems))
		}
		for i, el := range elems {
			d.backend(indexKey("backend", i), el, &c.Backends[i])
		}
	}
	if v, ok := m["route"]; ok {
		elems := d.tables("route", v)
		if len(elems) > 0 {
			c.Routes = make([]Route, len(elems))
		}
		for i, el := range elems {
			d.route(indexKey("route", i), el, &c.Routes[i])
		}
	}
	return c
}

func (d *decoder) server(path string, v any, s *Server) {
	m := d.table(path, v, serverKeys)
	if v, ok := m["listen"]; ok {
		s.Listen = d.listen(joinKey(path, "listen"), v)
	}
	d.intField(m, path, "loops", 0, maxLoops, &s.Loops)
	d.durationField(m, path, "header_timeout", &s.HeaderTimeout)
	d.durationField(m, path, "idle_timeout", &s.IdleTimeout)
	d.durationField(m, path, "body_timeout", &s.BodyTimeout)
	d.durationField(m, path, "shutdown_grace", &s.ShutdownGrace)
	d.intField(m, path, "max_request_line", minRequestLine, maxRequestLine, &s.MaxRequestLine)
	d.intField(m, path, "max_header_bytes", minHeaderBytes, maxHeaderBytes, &s.MaxHeaderBytes)
	d.intField(m, path, "max_header_fields", minHeaderFields, maxHeaderFields, &s.MaxHeaderFields)
	if v, ok := m["max_body_bytes"]; ok {
		if n, ok := d.integer(joinKey(path, "max_body_bytes"), v, 0, math.MaxInt64); ok {
			s.MaxBodyBytes = n
		}
	}
	d.intField(m, path, "output_buffer", minOutputBuffer, maxOutputBuffer, &s.OutputBuffer)
}

// listen decodes server.listen, a string or a list of strings.
func (d *decoder) listen(path string, v any) []string {
	switch v := v.(type) {
	case string:
		if d.address(path, v, false) {
			return []string{v}
		}
	case []any:
		if len(v) == 0 {
			d.errorf(path, "at least one listen address is required")
			return nil
		}
		out := make([]string, 0, len(v))
		for i, el := range v {
			p := indexKey(path, i)
			if s, ok := d.str(p, el); ok && d.address(p, s, false) {
				out = append(out, s)
			}
		}
		return out
	default:
		d.typeError(path, "a string or a list of strings", v)
	}
	return nil
}

func (d *decoder) admin(path string, v any, a *Admin) {
	m := d.table(path, v, adminKeys)
	if v, ok := m["listen"]; ok {
		p := joinKey(path, "listen")
		if s, ok := d.str(p, v); ok && (s == "" || d.address(p, s, false)) {
			a.Listen = s
		}
	}
}

func (d *decoder) log(path string, v any, l *Log) {
	m := d.table(path, v, logKeys)
	d.enumField(m, path, "level", &l.Level, "debug", "info", "warn", "error")
	if v, ok := m["access"]; ok {
		p := joinKey(path, "access")
		if s, ok := d.str(p, v); ok {
			if s == "" {
				d.errorf(p, `must be "off", "stdout" or a file path`)
			}
			l.Access = s
		}
	}
	d.enumField(m, path, "format", &l.Format, "json", "combined")
}

func (d *decoder) backend(path string, v any, b *Backend) {
	m := d.table(path, v, backendKeys)
	if m == nil {
		return
	}
	p := joinKey(path, "name")
	if v, ok := m["name"]; !ok {
		d.errorf(p, "required key is missing; every backend needs a name")
	} else if s, ok := d.str(p, v); ok {
		if msg := nameProblem(s); msg != "" {
			d.errorf(p, "invalid backend name %s: %s", quote(s), msg)
		}
		b.Name = s
	}

	p = joinKey(path, "servers")
	switch v := m["servers"].(type) {
	case nil:
		d.errorf(p, "required key is missing; a backend needs at least one server")
	case []any:
		if len(v) == 0 {
			d.errorf(p, "at least one server is required")
		}
		for i, el := range v {
			if sa, ok := d.serverAddr(indexKey(p, i), el); ok {
				b.Servers = append(b.Servers, sa)
			}
		}
	default:
		d.typeError(p, "a list of strings or tables", v)
	}

	d.intField(m, path, "conns", minConns, maxConns, &b.Conns)
	d.intField(m, path, "queue", minQueue, maxQueue, &b.Queue)
	d.intField(m, path, "pipeline", minPipeline, maxPipeline, &b.Pipeline)
	if on, ok := d.boolField(m, path, "splice"); ok {
		b.Splice = &on
	}
	d.enumField(m, path, "owner", &b.Owner, "goroutine", "loop")
	d.durationField(m, path, "connect_timeout", &b.ConnectTimeout)
	d.durationField(m, path, "response_timeout", &b.ResponseTimeout)
	d.durationField(m, path, "idle_timeout", &b.IdleTimeout)

	d.balance(m, path, b)
	if v, ok := m["health"]; ok {
		d.health(joinKey(path, "health"), v, &b.Health)
	}
	if v, ok := m["circuit"]; ok {
		d.circuit(joinKey(path, "circuit"), v, &b.Circuit)
	}
	// Limits and Retry start from their defaults, not from zero: see
	// defaultLimits.
	b.Limits = defaultLimits
	if v, ok := m["limits"]; ok {
		d.limits(joinKey(path, "limits"), v, &b.Limits)
	}
	b.Retry = defaultRetry
	if v, ok := m["retry"]; ok {
		d.retry(joinKey(path, "retry"), v, &b.Retry)
	}
}

// serverAddr decodes one entry of a backend's servers: a string
// "host:port [weight=N]" or a table {addr = "host:port", weight = N}.
func (d *decoder) serverAddr(path string, v any) (ServerAddr, bool) {
	switch v := v.(type) {
	case string:
		sa, err := parseServer(v)
		if err != nil {
			d.errorf(path, "%v", err)
			return ServerAddr{}, false
		}
		return sa, true
	case map[string]any:
		m := d.table(path, v, serverAddrKeys)
		sa := ServerAddr{Weight: defaultWeight}
		ok := true
		p := joinKey(path, "addr")
		if v, found := m["addr"]; !found {
			d.errorf(p, `required key is missing; a server table needs addr = "host:port"`)
			ok = false
		} else if s, isStr := d.str(p, v); !isStr || !d.address(p, s, true) {
			ok = false
		} else {
			sa.Addr = s
		}
		if v, found := m["weight"]; found {
			n, valid := d.integer(joinKey(path, "weight"), v, minWeight, maxWeight)
			ok = ok && valid
			sa.Weight = int(n)
		}
		return sa, ok
	default:
		d.typeError(path, `a string "host:port [weight=N]" or a table {addr = "host:port", weight = N}`, v)
		return ServerAddr{}, false
	}
}

// balance decodes a backend's balance and hash_key, which go together:
// hash_key is required with balance = "hash" and an error without it. The
// checks are on the keys written, as for a route's backend and return.
func (d *decoder) balance(m map[string]any, path string, b *Backend) {
	d.enumField(m, path, "balance", &b.Balance, "p2c", "round_robin", "hash")
	_, hasBalance := m["balance"]
	v, hasKey := m["hash_key"]
	pk := joinKey(path, "hash_key")
	if hasKey {
		if s, ok := d.str(pk, v); ok {
			k, err := parseHashKey(s)
			if err != nil {
				d.errorf(pk, "%v", err)
			}
			b.HashKey = k
		}
	}
	switch {
	case hasBalance && b.Balance == "":
		// An invalid balance, already reported.
	case hasKey && b.Balance != "hash":
		d.errorf(pk, `hash_key is only allowed with balance = "hash" (balance is %q)`, cmp.Or(b.Balance, defaultBalance))
	case !hasKey && b.Balance == "hash":
		d.errorf(joinKey(path, "balance"), `balance = "hash" needs hash_key (header:NAME, cookie:NAME or client_ip)`)
	}
}

func (d *decoder) health(path string, v any, h *Health) {
	m := d.table(path, v, healthKeys)
	if v, ok := m["path"]; ok {
		p := joinKey(path, "path")
		if s, ok := d.str(p, v); ok {
			// A check path is sent as an origin-form request target (RFC
			// 9112, section 3.2.1), which has the rules of a route's prefix.
			if msg := pathPrefixProblem(s); msg != "" {
				d.errorf(p, "invalid path %s: %s", quote(s), msg)
			}
			h.Path = s
		}
	}
	d.periodField(m, path, "interval", &h.Interval)
	d.durationField(m, path, "timeout", &h.Timeout)
	d.intField(m, path, "rise", minRiseFall, maxRiseFall, &h.Rise)
	d.intField(m, path, "fall", minRiseFall, maxRiseFall, &h.Fall)
}

func (d *decoder) circuit(path string, v any, c *Circuit) {
	m := d.table(path, v, circuitKeys)
	d.intField(m, path, "consecutive_failures", minConsecutive, maxConsecutive, &c.ConsecutiveFailures)
	d.ratioField(m, path, "failure_ratio", false, &c.FailureRatio)
	d.periodField(m, path, "window", &c.Window)
	d.intField(m, path, "min_requests", minMinRequests, maxMinRequests, &c.MinRequests)
	d.periodField(m, path, "cool_down", &c.CoolDown)
	d.intField(m, path, "half_open_trials", minHalfOpenTrials, maxHalfOpenTrials, &c.HalfOpenTrials)
}

func (d *decoder) limits(path string, v any, l *Limits) {
	m := d.table(path, v, limitsKeys)
	if a, ok := d.boolField(m, path, "adaptive"); ok {
		l.Adaptive = a
	}
	d.intField(m, path, "min_limit", minConcurrencyLimit, maxConcurrencyLimit, &l.MinLimit)
	d.intField(m, path, "max_limit", minConcurrencyLimit, maxConcurrencyLimit, &l.MaxLimit)
	d.intField(m, path, "queue", minLimitsQueue, maxLimitsQueue, &l.Queue)
	d.durationField(m, path, "queue_timeout", &l.QueueTimeout)
	if v, ok := m["shed_status"]; ok {
		p := joinKey(path, "shed_status")
		if n, ok := d.integer(p, v, math.MinInt64, math.MaxInt64); ok {
			if n != 503 && n != 429 {
				d.errorf(p, "must be 503 or 429")
			} else {
				l.ShedStatus = int(n)
			}
		}
	}
}

func (d *decoder) retry(path string, v any, r *Retry) {
	m := d.table(path, v, retryKeys)
	d.intField(m, path, "attempts", minAttempts, maxAttempts, &r.Attempts)
	d.ratioField(m, path, "budget", true, &r.Budget)
}

func (d *decoder) route(path string, v any, r *Route) {
	m := d.table(path, v, routeKeys)
	if m == nil {
		return
	}
	if v, ok := m["host"]; ok {
		p := joinKey(path, "host")
		if s, ok := d.str(p, v); ok {
			h, msg := normalizeHost(s)
			if msg != "" {
				d.errorf(p, "invalid host %s: %s", quote(s), msg)
			}
			r.Host = h
		}
	}
	if v, ok := m["path_prefix"]; ok {
		p := joinKey(path, "path_prefix")
		if s, ok := d.str(p, v); ok {
			if msg := pathPrefixProblem(s); msg != "" {
				d.errorf(p, "invalid path_prefix %s: %s", quote(s), msg)
			}
			r.PathPrefix = s
		}
	}
	if v, ok := m["backend"]; ok {
		p := joinKey(path, "backend")
		if s, ok := d.str(p, v); ok {
			if msg := nameProblem(s); msg != "" {
				d.errorf(p, "invalid backend name %s: %s", quote(s), msg)
			}
			r.Backend = s
		}
	}
	if v, ok := m["return"]; ok {
		if n, ok := d.integer(joinKey(path, "return"), v, minReturnStatus, maxReturnStatus); ok {
			r.Return = int(n)
		}
	}
	if v, ok := m["body"]; ok {
		if s, ok := d.str(joinKey(path, "body"), v); ok {
			r.Body = s
		}
	}

	// A route either proxies or answers; the checks are on the keys
	// written, so they hold even when a value was rejected above.
	_, hasBackend := m["backend"]
	_, hasReturn := m["return"]
	_, hasBody := m["body"]
	switch {
	case hasBackend && hasReturn:
		// Blame whichever key comes second: the route was complete
		// before it.
		b, ret := joinKey(path, "backend"), joinKey(path, "return")
		if d.ix.offset(b) > d.ix.offset(ret) {
			d.errorf(b, "a route has either backend or return, not both (return is at line %d)", d.ix.line(ret))
		} else {
			d.errorf(ret, "a route has either backend or return, not both (backend is at line %d)", d.ix.line(b))
		}
	case !hasBackend && !hasReturn:
		d.errorf(path, "a route needs either backend (to proxy) or return (to answer itself)")
	case hasBody && !hasReturn:
		d.errorf(joinKey(path, "body"), "body is only allowed with return")
	case r.Body != "" && r.Return != 0 && !statusAllowsBody(r.Return):
		d.errorf(joinKey(path, "body"), "a %d response cannot have a body", r.Return)
	}
}

// statusAllowsBody reports whether a response with the status may carry a
// body (RFC 9110, section 6.4.1); it assumes a status in 100..599.
func statusAllowsBody(status int) bool {
	return status >= 200 && status != 204 && status != 304
}

// crossCheck checks the relations between entries, after the defaults are
// applied.
func (d *decoder) crossCheck(c *Config) {
	// Checked here rather than with the entries, because the error has no
	// line of its own (it is put on line 1 unless "route = []" is written)
	// and should not hide an error that has one.
	if len(c.Routes) == 0 {
		d.errorf("route", "at least one [[route]] is required")
	}

	seen := make(map[string]int)
	for i, a := range c.Server.Listen {
		k := canonicalAddr(a)
		if j, ok := seen[k]; ok {
			d.errorf(indexKey("server.listen", i), "duplicate listen address %s (also at line %d)",
				quote(a), d.ix.line(indexKey("server.listen", j)))
			continue
		}
		seen[k] = i
	}

	if s := c.Server; s.MaxHeaderBytes < s.MaxRequestLine {
		key := "server.max_header_bytes"
		if !d.ix.has(key) {
			key = "server.max_request_line"
		}
		d.errorf(key, "max_header_bytes (%d) must be at least max_request_line (%d), as the head includes the request line",
			s.MaxHeaderBytes, s.MaxRequestLine)
	}

	for i := range c.Backends {
		d.backendRelations(indexKey("backend", i), &c.Backends[i])
	}

	names := make(map[string]int)
	for i, b := range c.Backends {
		if j, ok := names[b.Name]; ok {
			d.errorf(joinKey(indexKey("backend", i), "name"), "duplicate backend name %s (first defined at line %d)",
				quote(b.Name), d.ix.line(joinKey(indexKey("backend", j), "name")))
			continue
		}
		names[b.Name] = i
	}
	for i, r := range c.Routes {
		if r.Backend == "" {
			continue
		}
		if _, ok := names[r.Backend]; !ok {
			d.errorf(joinKey(indexKey("route", i), "backend"), "unknown backend %s (%s)", quote(r.Backend), definedBackends(c))
		}
	}
}

// backendRelations checks the relations between the keys of one backend,
// after the defaults are applied. The error goes on the key written, so
// that a default never takes the blame.
func (d *decoder) backendRelations(path string, b *Backend) {
	if h := b.Health; h.Timeout > h.Interval {
		key := joinKey(joinKey(path, "health"), "timeout")
		if !d.ix.has(key) {
			key = joinKey(joinKey(path, "health"), "interval")
		}
		d.errorf(key, "timeout (%s) must be at most interval (%s), so that a server never has two checks in flight",
			h.Timeout, h.Interval)
	}
	if l := b.Limits; l.MaxLimit < l.MinLimit {
		key := joinKey(joinKey(path, "limits"), "max_limit")
		if !d.ix.has(key) {
			key = joinKey(joinKey(path, "limits"), "min_limit")
		}
		d.errorf(key, "max_limit (%d) must be at least min_limit (%d)", l.MaxLimit, l.MinLimit)
	}
}

func definedBackends(c *Config) string {
	if len(c.Backends) == 0 {
		return "no [[backend]] is defined"
	}
	names := make([]string, len(c.Backends))
	for i, b := range c.Backends {
		names[i] = b.Name
	}
	return "defined: " + strings.Join(names, ", ")
}

// table checks that v is a table with no keys but known, and returns it;
// it returns nil if v is not a table. Unknown keys are reported in
// document order.
func (d *decoder) table(path string, v any, known []string) map[string]any {
	m, ok := v.(map[string]any)
	if !ok {
		d.typeError(path, "a table", v)
		return nil
	}
	var unknown []string
	for k := range m {
		if !slices.Contains(known, k) {
			unknown = append(unknown, joinKey(path, k))
		}
	}
	sort.Slice(unknown, func(i, j int) bool { return d.ix.offset(unknown[i]) < d.ix.offset(unknown[j]) })
	for _, p := range unknown {
		d.errorf(p, "unknown key (valid keys: %s)", strings.Join(known, ", "))
	}
	return m
}

// tables checks that v is an array (of tables, which table checks) and
// returns its elements.
func (d *decoder) tables(path string, v any) []any {
	a, ok := v.([]any)
	if !ok {
		d.typeError(path, fmt.Sprintf("an array of tables ([[%s]])", path), v)
	}
	return a
}

func (d *decoder) str(path string, v any) (string, bool) {
	s, ok := v.(string)
	if !ok {
		d.typeError(path, "a string", v)
	}
	return s, ok
}

func (d *decoder) integer(path string, v any, lo, hi int64) (int64, bool) {
	n, ok := v.(int64)
	switch {
	case !ok:
		d.typeError(path, "an integer", v)
	case n < lo && hi == math.MaxInt64:
		d.errorf(path, "%d must be at least %d", n, lo)
	case n < lo || n > hi:
		d.errorf(path, "%d out of range %d..%d", n, lo, hi)
	default:
		return n, true
	}
	return 0, false
}

func (d *decoder) intField(m map[string]any, path, key string, lo, hi int, dst *int) {
	if v, ok := m[key]; ok {
		if n, ok := d.integer(joinKey(path, key), v, int64(lo), int64(hi)); ok {
			*dst = int(n)
		}
	}
}

// boolField returns m[key] and true when it is present and a boolean; a
// value of another type is reported as an error.
func (d *decoder) boolField(m map[string]any, path, key string) (v, ok bool) {
	raw, present := m[key]
	if !present {
		return false, false
	}
	if v, ok = raw.(bool); !ok {
		d.typeError(joinKey(path, key), "a boolean", raw)
	}
	return v, ok
}

func (d *decoder) durationField(m map[string]any, path, key string, dst *Duration) {
	v, ok := m[key]
	if !ok {
		return
	}
	p := joinKey(path, key)
	s, ok := v.(string)
	if !ok {
		d.typeError(p, `a duration string such as "10s"`, v)
		return
	}
	dur, err := parseDuration(s)
	if err != nil {
		d.errorf(p, "%v", err)
		return
	}
	*dst = dur
}

// periodField decodes a duration that sets a rhythm (a check interval, a
// window, a cool-down), 100ms..1h: shorter is a typo for a longer unit or
// a storm of work, longer is a typo or a setting that never takes effect.
func (d *decoder) periodField(m map[string]any, path, key string, dst *Duration) {
	var v Duration
	d.durationField(m, path, key, &v)
	switch {
	case v == 0:
		// Absent or already reported.
	case v < minPolicyPeriod || v > maxPolicyPeriod:
		d.errorf(joinKey(path, key), "%s out of range %s..%s", formatPeriod(v), formatPeriod(minPolicyPeriod), formatPeriod(maxPolicyPeriod))
	default:
		*dst = v
	}
}

// ratioField decodes a fraction, a float or an integer in 0..1; zeroOK
// says whether 0 itself is allowed.
func (d *decoder) ratioField(m map[string]any, path, key string, zeroOK bool, dst *float64) {
	v, ok := m[key]
	if !ok {
		return
	}
	p := joinKey(path, key)
	var f float64
	switch v := v.(type) {
	case float64:
		f = v
	case int64:
		f = float64(v)
	default:
		d.typeError(p, "a number", v)
		return
	}
	switch {
	case zeroOK && !(f >= 0 && f <= 1): // written so that NaN fails
		d.errorf(p, "%s out of range 0..1", formatFloat(f))
	case !zeroOK && !(f > 0 && f <= 1):
		d.errorf(p, "%s must be greater than 0 and at most 1", formatFloat(f))
	default:
		*dst = f
	}
}

// formatFloat formats a number from the document as TOML writes it.
func formatFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func (d *decoder) enumField(m map[string]any, path, key string, dst *string, allowed ...string) {
	v, ok := m[key]
	if !ok {
		return
	}
	p := joinKey(path, key)
	s, ok := d.str(p, v)
	if !ok {
		return
	}
	if !slices.Contains(allowed, s) {
		d.errorf(p, "invalid value %s (want one of: %s)", quote(s), strings.Join(allowed, ", "))
		return
	}
	*dst = s
}

// address reports whether s is a valid host:port, reporting the problem if
// it is not.
func (d *decoder) address(path, s string, needHost bool) bool {
	if msg := addrProblem(s, needHost); msg != "" {
		d.errorf(path, "invalid address %s: %s", quote(s), msg)
		return false
	}
	return true
}

// describe names the TOML type of a decoded value, with the value itself
// when it is short, for "expected X, got Y" messages.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		return "string " + quote(v)
	case int64:
		return fmt.Sprintf("integer %d", v)
	case float64:
		return fmt.Sprintf("float %v", v)
	case bool:
		return fmt.Sprintf("boolean %t", v)
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time, toml.LocalDate, toml.LocalTime, toml.LocalDateTime:
		return "a date/time"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// quote quotes a value from the document for an error message, shortened
// if it is long: the message is about the key, not a copy of the value.
func quote(s string) string {
	if len(s) > maxErrorValueBytes {
		return fmt.Sprintf("%q...", strings.ToValidUTF8(s[:maxErrorValueBytes], ""))
	}
	return fmt.Sprintf("%q", s)
}
