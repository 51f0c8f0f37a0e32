package config

import (
	"fmt"
	"strings"
	"time"
)

// This file holds a backend's policy settings (Phase 2): how servers are
// chosen, judged healthy, cut off when failing, protected from overload,
// and how requests are retried. Backend in config.go holds the mechanics
// (addresses, connections, timeouts). The proxy reads all of them once,
// when it starts or reloads, never per request: HashKey, for one, is
// parsed here so that the hot path need not look at its text.

// Health configures how a backend's servers are judged up or down, TOML
// [backend.health]. A Config from Parse always has it filled in, whether
// or not the section is written, because passive health is always on.
//
// Passive health counts the outcomes of proxied requests as checks: a
// connect error or timeout, a connection reset or closed before the
// response head, or a response timeout fails one; any response passes
// one. With Path set, active health checks also run: a GET of Path to
// each server every Interval, passing on a 2xx or 3xx status within
// Timeout. A server is marked down after Fall consecutive failed checks
// and up again after Rise consecutive passed ones; a server that is down
// gets no requests. Without Path, the checks that can bring a server back
// are the trial requests it gets once Circuit.CoolDown has passed, as
// when a circuit half-opens.
type Health struct {
	// Path is the request target of active health checks, TOML "path". It
	// must start with "/" and contain no space or control character; a
	// query is allowed ("/healthz?deep=1"). Default and zero (""): no
	// active checks, passive health only.
	Path string `toml:"path,omitempty"`

	// Interval is the time between two active checks of one server, TOML
	// "interval", 100ms..1h. Unused without Path. Default 1s; zero means
	// the default.
	Interval Duration `toml:"interval"`

	// Timeout bounds one active check, TOML "timeout": it must be positive
	// and at most Interval, so that a server never has two checks in
	// flight (a check still running when the next is due has failed).
	// Default 500ms, or Interval if that is shorter; zero means the
	// default.
	Timeout Duration `toml:"timeout"`

	// Rise is the number of consecutive passed checks that mark a down
	// server up, TOML "rise", 1..100. Default 2; zero means the default.
	Rise int `toml:"rise"`

	// Fall is the number of consecutive failed checks that mark an up
	// server down, TOML "fall", 1..100. Default 3; zero means the
	// default.
	Fall int `toml:"fall"`
}

// Circuit configures the circuit breaker kept for each server of a
// backend, TOML [backend.circuit]. Every field has a default, so the
// breaker is always on.
//
// A request fails, for the breaker, when it gets no response (as for
// passive health) or a 5xx response from the server. The circuit opens
// when ConsecutiveFailures requests in a row fail, or when, within the
// last Window, at least MinRequests requests were sent and the fraction
// that failed is at least FailureRatio. An open circuit sends the server
// no requests for CoolDown; then it half-opens and lets HalfOpenTrials
// requests through: if they all succeed it closes, and if any fails it
// opens again for another CoolDown.
type Circuit struct {
	// ConsecutiveFailures is the number of failed requests in a row that
	// open the circuit, TOML "consecutive_failures", 1..1000. Default 5;
	// zero means the default.
	ConsecutiveFailures int `toml:"consecutive_failures"`

	// FailureRatio is the fraction of failed requests within Window that
	// opens the circuit, TOML "failure_ratio", greater than 0 and at most
	// 1 (1: only when every request fails). Default 0.5; zero means the
	// default.
	FailureRatio float64 `toml:"failure_ratio"`

	// Window is the span of recent requests FailureRatio is measured over,
	// TOML "window", 100ms..1h. Default 10s; zero means the default.
	Window Duration `toml:"window"`

	// MinRequests is the fewest requests within Window for FailureRatio to
	// apply, TOML "min_requests", 1..1000000, so that two failures out of
	// three requests on a quiet server do not open its circuit. Default
	// 20; zero means the default.
	MinRequests int `toml:"min_requests"`

	// CoolDown is how long an open circuit stays open before it
	// half-opens, TOML "cool_down", 100ms..1h. Default 5s; zero means the
	// default.
	CoolDown Duration `toml:"cool_down"`

	// HalfOpenTrials is the number of requests let through a half-open
	// circuit, all of which must succeed to close it, TOML
	// "half_open_trials", 1..1000. Default 3; zero means the default.
	HalfOpenTrials int `toml:"half_open_trials"`
}

// Limits protects a backend from overload, TOML [backend.limits]: each
// server has a limit on the requests in flight to it, and requests that
// find every usable server at its limit wait in one queue per backend,
// bounded in length and in time; requests beyond either bound are shed
// with ShedStatus.
//
// The backend's "queue" key (Backend.Queue) is a different bound and
// stays: it is the hand-off queue of each upstream connection owner, in
// front of the connections; Limits.Queue is the admission queue in front
// of the per-server limits, before a request is given to any connection.
//
// The zero Limits, as a whole, means the defaults: see ApplyDefaults.
type Limits struct {
	// Adaptive makes each server's concurrency limit follow the server's
	// latency, between MinLimit and MaxLimit: it grows while latency stays
	// near the server's no-load latency and shrinks when requests start
	// to queue inside the server. TOML "adaptive". With false, the limit
	// is fixed at MaxLimit. Default false, like Envoy's adaptive
	// concurrency filter: opt in for backends that degrade when
	// overloaded (docs/adr/0003 has the measurement behind the default).
	Adaptive bool `toml:"adaptive"`

	// MinLimit is the floor of the adaptive limit, TOML "min_limit",
	// 1..100000 and at most MaxLimit. It is only a floor: the limit never
	// goes below it, whatever the algorithm does, but it is not the level
	// the limit starts at or drops to when the algorithm probes for the
	// no-load latency. Unused when Adaptive is false. Default 4; zero
	// means the default.
	MinLimit int `toml:"min_limit"`

	// MaxLimit is the ceiling of the adaptive limit, or the fixed limit
	// when Adaptive is false, TOML "max_limit", 1..100000 and at least
	// MinLimit. A limit above what the connections can carry (Conns ×
	// Pipeline per server, per loop with owner = "loop") never binds.
	// Default 1000; zero means the default.
	MaxLimit int `toml:"max_limit"`

	// Queue is the number of requests that may wait per backend for a
	// server under its limit before further requests are shed, TOML
	// "queue" in [backend.limits], 1..65536. Default 256; zero means the
	// default.
	Queue int `toml:"queue"`

	// QueueTimeout is the longest a request waits in Queue before it is
	// shed, TOML "queue_timeout"; it must be positive. Default 100ms;
	// zero means the default.
	QueueTimeout Duration `toml:"queue_timeout"`

	// ShedStatus is the status of a shed request's response, TOML
	// "shed_status": 503 (Service Unavailable) or 429 (Too Many
	// Requests). The response carries Retry-After (RFC 9110, section
	// 10.2.3). Default 503; zero means the default.
	ShedStatus int `toml:"shed_status"`
}

// Retry configures the retrying of failed requests, TOML
// [backend.retry]. Which failures may be retried, and on which server,
// is the proxy's rule (only requests that are safe to send again); Retry
// sets how many times and how often.
//
// The zero Retry, as a whole, means the defaults: see ApplyDefaults. A
// Retry with Attempts set keeps Budget as it is, zero included.
type Retry struct {
	// Attempts is the most times one request is sent, the first try
	// included, TOML "attempts", 1..10: 1 means no retries, and the
	// default 2 means at most one retry. Zero means the default.
	Attempts int `toml:"attempts"`

	// Budget caps retries as a fraction of the backend's requests over a
	// recent window, TOML "budget", 0..1: the default 0.2 lets retries
	// add at most 20% to the load, so that a failing backend does not get
	// Attempts times its traffic. 0 means no retries, like attempts = 1;
	// 1 means no cap beyond Attempts. Zero means no retries, except in a
	// zero Retry (see the type).
	Budget float64 `toml:"budget"`
}

// HashKeyKind is what a hash balancer hashes on, the part of a HashKey
// before the colon.
type HashKeyKind uint8

const (
	// HashKeyNone is the zero HashKeyKind: no key, the backend's balance
	// is not "hash".
	HashKeyNone HashKeyKind = iota
	// HashKeyHeader hashes the value of the request header HashKey.Name.
	HashKeyHeader
	// HashKeyCookie hashes the value of the request cookie HashKey.Name.
	HashKeyCookie
	// HashKeyClientIP hashes the client's IP address: the peer address of
	// the client connection, without its port, not a forwarded-for
	// header.
	HashKeyClientIP
)

// String returns the kind as written in TOML: "header", "cookie",
// "client_ip", or "" for HashKeyNone.
func (k HashKeyKind) String() string {
	switch k {
	case HashKeyHeader:
		return "header"
	case HashKeyCookie:
		return "cookie"
	case HashKeyClientIP:
		return "client_ip"
	case HashKeyNone:
		return ""
	}
	return fmt.Sprintf("HashKeyKind(%d)", uint8(k))
}

// HashKey is what balance = "hash" hashes on, TOML "hash_key", parsed:
// "header:NAME", "cookie:NAME" or "client_ip".
//
// Requests with the same key go to the same server while the set of
// usable servers does not change. A request without the header or cookie
// is balanced as with "p2c".
type HashKey struct {
	// Kind is what is hashed. Zero (HashKeyNone) means no key.
	Kind HashKeyKind

	// Name is the header name in lower case (header names are
	// case-insensitive, RFC 9110 section 5.1) or the cookie name as
	// written (cookie names are not). Both are tokens (RFC 9110 section
	// 5.6.2). It is "" for HashKeyClientIP and HashKeyNone.
	Name string
}

// String returns k as written in TOML, e.g. "header:x-user", or "" for
// the zero HashKey.
func (k HashKey) String() string {
	if k.Name == "" {
		return k.Kind.String()
	}
	return k.Kind.String() + ":" + k.Name
}

// MarshalText implements encoding.TextMarshaler, in the form of String.
func (k HashKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler, accepting the forms
// of hash_key.
func (k *HashKey) UnmarshalText(text []byte) error {
	v, err := parseHashKey(string(text))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// parseHashKey parses a backend's hash_key.
func parseHashKey(s string) (HashKey, error) {
	const want = "want header:NAME, cookie:NAME or client_ip"
	if s == "client_ip" {
		return HashKey{Kind: HashKeyClientIP}, nil
	}
	kind, name, ok := strings.Cut(s, ":")
	var k HashKey
	switch {
	case ok && kind == "header":
		k = HashKey{Kind: HashKeyHeader, Name: strings.ToLower(name)}
	case ok && kind == "cookie":
		k = HashKey{Kind: HashKeyCookie, Name: name}
	default:
		return HashKey{}, fmt.Errorf("invalid hash_key %s; %s", quote(s), want)
	}
	if name == "" {
		return HashKey{}, fmt.Errorf("invalid hash_key %s: missing %s name after %q", quote(s), kind, kind+":")
	}
	if !isToken(name) {
		return HashKey{}, fmt.Errorf("invalid hash_key %s: %s name %s is not a token (RFC 9110 section 5.6.2)", quote(s), kind, quote(name))
	}
	return k, nil
}

// isToken reports whether s is a non-empty token, RFC 9110 section 5.6.2:
// the characters of header field names and of cookie names (RFC 6265
// section 4.1.1).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// Defaults of the policy settings, also documented on the fields they
// apply to; keep the two in step.
const (
	defaultBalance = "p2c"

	// Health: a check a second, a server down after 3 failures in a row
	// (about 3s with active checks) and up after 2 passes, as in haproxy's
	// defaults (inter 2s, rise 2, fall 3) with a shorter interval.
	defaultHealthInterval = Duration(time.Second)
	defaultHealthTimeout  = Duration(500 * time.Millisecond)
	defaultRise           = 2
	defaultFall           = 3

	defaultConsecutiveFailures = 5
	defaultFailureRatio        = 0.5
	defaultCircuitWindow       = Duration(10 * time.Second)
	defaultMinRequests         = 20
	defaultCoolDown            = Duration(5 * time.Second)
	defaultHalfOpenTrials      = 3

	defaultAdaptive     = false
	defaultMinLimit     = 4
	defaultMaxLimit     = 1000
	defaultLimitsQueue  = 256
	defaultQueueTimeout = Duration(100 * time.Millisecond)
	defaultShedStatus   = 503

	// Retry: one retry, within a budget of 20% extra load, as in Finagle's
	// RetryBudget (percentCanRetry 0.2).
	defaultAttempts = 2
	defaultBudget   = 0.2
)

// Limits of the policy values accepted, inclusive.
const (
	minPolicyPeriod     = Duration(100 * time.Millisecond) // interval, window, cool_down
	maxPolicyPeriod     = Duration(time.Hour)
	minRiseFall         = 1
	maxRiseFall         = 100
	minConsecutive      = 1
	maxConsecutive      = 1000
	minMinRequests      = 1
	maxMinRequests      = 1000000
	minHalfOpenTrials   = 1
	maxHalfOpenTrials   = 1000
	minConcurrencyLimit = 1
	maxConcurrencyLimit = 100000
	minLimitsQueue      = 1
	maxLimitsQueue      = 65536
	minAttempts         = 1
	maxAttempts         = 10
)

// defaultLimits and defaultRetry are the zero-free forms the decoder
// starts from: it decodes the keys written on top of them, so that a
// section that sets only adaptive = false or budget = 0 is not a zero
// struct that ApplyDefaults would take for "all defaults".
var (
	defaultLimits = Limits{
		Adaptive:     defaultAdaptive,
		MinLimit:     defaultMinLimit,
		MaxLimit:     defaultMaxLimit,
		Queue:        defaultLimitsQueue,
		QueueTimeout: defaultQueueTimeout,
		ShedStatus:   defaultShedStatus,
	}
	defaultRetry = Retry{Attempts: defaultAttempts, Budget: defaultBudget}
)

func (h *Health) applyDefaults() {
	setDuration(&h.Interval, defaultHealthInterval)
	setDuration(&h.Timeout, min(defaultHealthTimeout, h.Interval))
	setInt(&h.Rise, defaultRise)
	setInt(&h.Fall, defaultFall)
}

func (c *Circuit) applyDefaults() {
	setInt(&c.ConsecutiveFailures, defaultConsecutiveFailures)
	if c.FailureRatio == 0 {
		c.FailureRatio = defaultFailureRatio
	}
	setDuration(&c.Window, defaultCircuitWindow)
	setInt(&c.MinRequests, defaultMinRequests)
	setDuration(&c.CoolDown, defaultCoolDown)
	setInt(&c.HalfOpenTrials, defaultHalfOpenTrials)
}

func (l *Limits) applyDefaults() {
	if *l == (Limits{}) {
		*l = defaultLimits
		return
	}
	setInt(&l.MinLimit, defaultMinLimit)
	setInt(&l.MaxLimit, defaultMaxLimit)
	setInt(&l.Queue, defaultLimitsQueue)
	setDuration(&l.QueueTimeout, defaultQueueTimeout)
	setInt(&l.ShedStatus, defaultShedStatus)
}

func (r *Retry) applyDefaults() {
	if *r == (Retry{}) {
		*r = defaultRetry
		return
	}
	setInt(&r.Attempts, defaultAttempts)
}

// formatPeriod formats a duration bound for an error message, without
// the trailing zero units of Duration.String ("1h", not "1h0m0s").
func formatPeriod(d Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
