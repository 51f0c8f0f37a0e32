// Package config turns Apex's TOML configuration file into validated values.
//
// Decoding is strict. An unknown key, a value of the wrong type, a malformed
// address or duration, a value out of range, a duplicate backend name or a
// route to a backend that does not exist is an error, not a warning: a proxy
// that quietly ignores a typo serves traffic differently from what its
// operator wrote, and nobody notices until production does. Every such error
// is an *Error whose text is "FILE:LINE: KEY: message", so that an editor or
// an operator can jump straight to the offending line.
//
// A key that is absent gets its default after decoding; each field below
// documents its default and what its zero value means. A key that is present
// must hold a valid value: writing a zero where zero is not allowed (say
// conns = 0) is an error, not a request for the default, because it is far
// more likely a mistake than an intention.
package config

import (
	_ "embed"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is a complete, validated Apex configuration.
//
// A Config returned by Parse, Load or Default has every default filled in,
// so its users never need to interpret zero values; the zero meanings
// documented on the fields matter only for a Config built by hand, and
// ApplyDefaults turns those into the same values Parse would produce.
type Config struct {
	// Source is the file the configuration was read from: the path given to
	// Load, the name given to Parse, or "<default>" for Default. It is not a
	// TOML key. Zero ("") means the Config was built in Go code.
	Source string `toml:"-"`

	Server Server `toml:"server"`
	Admin  Admin  `toml:"admin"`
	Log    Log    `toml:"log"`

	// Backends are the upstream server groups, TOML [[backend]], in document
	// order. Default none: a configuration whose routes all use "return"
	// needs no backend. Zero (nil) means no backends.
	Backends []Backend `toml:"backend,omitempty"`

	// Routes map requests to backends, TOML [[route]], in document order.
	// There is no default: at least one route is required, because a proxy
	// without routes can only answer 404.
	Routes []Route `toml:"route"`
}

// Server configures the client-facing side of the proxy, TOML [server].
type Server struct {
	// Listen holds the addresses to accept client connections on, TOML
	// "listen", written either as one string or as a list of strings. Each
	// is host:port with a numeric port 1..65535; the host may be an IP
	// address, a name such as "localhost", a bracketed IPv6 address such as
	// "[::1]", or empty for all interfaces (":8080"). Addresses must be
	// unique. Default ["127.0.0.1:8080"], loopback only, so that a fresh
	// install is not reachable from the network. Zero (empty) means the
	// default.
	Listen []string `toml:"listen"`

	// Loops is the number of event loops, TOML "loops", 0..1024. Default 0,
	// and zero means one loop per GOMAXPROCS as the process started (Apex
	// may raise GOMAXPROCS by one, see README), which is right unless the
	// proxy shares the machine with other busy processes.
	Loops int `toml:"loops"`

	// HeaderTimeout bounds the time to receive a complete request head,
	// TOML "header_timeout" (like haproxy's timeout http-request). It is the
	// defence against slowloris clients. Default 10s; zero means the
	// default.
	HeaderTimeout Duration `toml:"header_timeout"`

	// IdleTimeout is how long a keep-alive client connection may sit idle
	// between requests before it is closed, TOML "idle_timeout".
	// Default 60s; zero means the default.
	IdleTimeout Duration `toml:"idle_timeout"`

	// BodyTimeout is the longest wait between two reads of a request body,
	// TOML "body_timeout". It bounds slow uploads without limiting large
	// ones. Default 60s; zero means the default.
	BodyTimeout Duration `toml:"body_timeout"`

	// ShutdownGrace is how long a graceful shutdown waits for in-flight
	// requests before closing their connections, TOML "shutdown_grace".
	// Default 30s; zero means the default.
	ShutdownGrace Duration `toml:"shutdown_grace"`

	// MaxRequestLine is the largest request line accepted, in bytes, TOML
	// "max_request_line", 256..1048576; longer lines get 414. Default 8192,
	// the common limit of servers behind proxies. Zero means the default.
	MaxRequestLine int `toml:"max_request_line"`

	// MaxHeaderBytes is the largest request head accepted, in bytes,
	// request line included, TOML "max_header_bytes", 1024..1048576 and at
	// least MaxRequestLine; larger heads get 431. Default 32768. Zero means
	// the default.
	MaxHeaderBytes int `toml:"max_header_bytes"`

	// MaxHeaderFields is the largest number of header fields accepted, TOML
	// "max_header_fields", 1..10000; more get 431. Default 100. Zero means
	// the default.
	MaxHeaderFields int `toml:"max_header_fields"`

	// MaxBodyBytes limits the size of a request body, TOML
	// "max_body_bytes", >= 0; a larger body gets 413. Default 0, and zero
	// means unlimited, because the proxy streams bodies and need not hold
	// them.
	MaxBodyBytes int64 `toml:"max_body_bytes"`

	// OutputBuffer bounds the output pending on one client connection, in
	// bytes, TOML "output_buffer", 4096..67108864. When a slow client lets
	// it fill up, the proxy stops reading from the upstream instead of
	// buffering without limit. Default 262144. Zero means the default.
	OutputBuffer int `toml:"output_buffer"`
}

// Admin configures the administrative HTTP endpoint, TOML [admin].
type Admin struct {
	// Listen is the host:port of the admin endpoint, TOML "listen". Default
	// "", and zero ("") means the endpoint is off: it exposes the running
	// configuration, so it must be asked for.
	Listen string `toml:"listen"`
}

// Log configures logging, TOML [log].
type Log struct {
	// Level is the least severe level logged, TOML "level": "debug",
	// "info", "warn" or "error". Default "info"; zero ("") means the
	// default.
	Level string `toml:"level"`

	// Access is where access-log lines go, TOML "access": "off", "stdout",
	// or the path of a file to append to. Default "off", because access
	// logging costs throughput and is better enabled deliberately. Zero
	// ("") means the default.
	Access string `toml:"access"`

	// Format is the access-log line format, TOML "format": "json" or
	// "combined" (the Apache/nginx combined format). Default "json"; zero
	// ("") means the default.
	Format string `toml:"format"`
}

// Backend is a named group of upstream servers, one TOML [[backend]].
type Backend struct {
	// Name identifies the backend to routes, TOML "name": required, unique,
	// made of the characters A-Z a-z 0-9 _ . - so that it can appear
	// unquoted in logs and metrics. There is no default; zero ("") is
	// invalid.
	Name string `toml:"name"`

	// Servers are the upstream addresses, TOML "servers", in one of two
	// forms, which may be mixed in one list:
	//
	//	servers = ["10.0.0.1:9000", "10.0.0.2:9000 weight=2"]
	//	servers = [{addr = "10.0.0.1:9000"}, {addr = "10.0.0.2:9000", weight = 2}]
	//
	// A string is "host:port", optionally followed by " weight=N"; a table
	// has the keys "addr" (host:port, required) and "weight" (optional).
	// The tables may also be written as [[backend.servers]] sections. Both
	// forms give the same ServerAddr, and TOML() writes the string form.
	// At least one server is required. Zero (empty) is invalid.
	Servers []ServerAddr `toml:"servers"`

	// Conns is the number of upstream connections kept per server, TOML
	// "conns", 1..4096: per loop with owner = "loop", per backend (one
	// owner goroutine each) with owner = "goroutine". Default 16. Zero
	// means the default.
	Conns int `toml:"conns"`

	// Queue is the number of requests that may wait per upstream
	// connection before further requests are shed (503; limits.shed_status
	// with owner = "loop"), TOML "queue", 1..65536:
	// per owner goroutine, or Conns × Queue per loop and server with
	// owner = "loop". The bound turns an
	// overloaded upstream into fast failures rather than unbounded memory
	// and latency. Default 64. Zero means the default.
	//
	// This is the hand-off queue of the connection owners, behind the
	// admission control of Limits; it is not [backend.limits] queue
	// (Limits.Queue), which bounds the requests waiting per backend for a
	// server under its concurrency limit.
	Queue int `toml:"queue"`

	// Pipeline is the most requests Apex sends on one upstream connection
	// before their responses return (HTTP/1.1 pipelining, RFC 9112
	// §9.3.2), TOML "pipeline", 1..64. Only with owner = "loop", and only
	// for replayable requests (idempotent method or Idempotency-Key, no
	// streamed body): requests that arrive in the same loop turn share one
	// upstream write, which is what brings the CPU cost per request below
	// one read and one write per side. Once all Conns connections are open
	// and busy, requests also go behind those in flight on the least busy
	// one instead of queueing, so Conns × Pipeline may be in flight per
	// server and loop (ADR 0005). Enable it only for backends known
	// to handle pipelining correctly. Default 1, and 1 means no pipelining;
	// zero means the default.
	Pipeline int `toml:"pipeline"`

	// Splice moves large response bodies (Content-Length, 8 KiB or more
	// left after the read that held the head) from the upstream socket to
	// the client's with splice(2), without copying them through Apex, TOML
	// "splice"; like HAProxy's "option splice-response", but on by
	// default. Only with owner = "loop". Default true; nil means the
	// default.
	Splice *bool `toml:"splice"`

	// Owner selects what drives the upstream connections, TOML "owner":
	// "loop" (each event loop owns its own connections to each server, on
	// its own epoll: no goroutine hop per request) or "goroutine" (the
	// design card's Phase 1 owner: one goroutine per upstream connection,
	// fed over a bounded queue). With "loop", Conns applies per loop, and
	// each loop queues up to Conns × Queue requests per server. Default "loop", the faster one (docs/adr/0002-owner-mode.md);
	// zero ("") means the default.
	Owner string `toml:"owner"`

	// ConnectTimeout bounds establishing an upstream connection, TOML
	// "connect_timeout". Default 5s; zero means the default.
	ConnectTimeout Duration `toml:"connect_timeout"`

	// ResponseTimeout bounds the wait for the first response byte and
	// between two reads of the response, TOML "response_timeout".
	// Default 60s; zero means the default.
	ResponseTimeout Duration `toml:"response_timeout"`

	// IdleTimeout is how long an idle keep-alive upstream connection is
	// kept before it is closed, TOML "idle_timeout". It should be shorter
	// than the upstream's own idle timeout, so that the proxy never sends a
	// request on a connection the upstream is closing. Default 60s; zero
	// means the default.
	IdleTimeout Duration `toml:"idle_timeout"`

	// Balance is how a request's server is chosen, TOML "balance": "p2c"
	// (power of two choices: of two servers drawn at random, weighted by
	// Weight, the one with fewer requests in flight), "round_robin" (the
	// servers in turn, in proportion to Weight) or "hash" (by HashKey,
	// which it requires). Default "p2c"; zero ("") means the default.
	Balance string `toml:"balance"`

	// HashKey is what balance = "hash" hashes on, TOML "hash_key":
	// "header:NAME", "cookie:NAME" or "client_ip". It is required with
	// balance = "hash" and an error otherwise. There is no default; zero
	// means none.
	HashKey HashKey `toml:"hash_key,omitzero"`

	// Health judges the servers up or down, TOML [backend.health].
	// Passive health is always on; active checks need Health.Path.
	Health Health `toml:"health"`

	// Circuit is the per-server circuit breaker, TOML [backend.circuit].
	Circuit Circuit `toml:"circuit"`

	// Limits are the per-server concurrency limits and the per-backend
	// wait queue, TOML [backend.limits].
	Limits Limits `toml:"limits"`

	// Retry sets how failed requests are retried, TOML [backend.retry].
	Retry Retry `toml:"retry"`
}

// ServerAddr is one upstream server of a Backend. In TOML it is a string,
// "host:port" or "host:port weight=N", or a table with the keys "addr"
// and "weight"; TOML() writes the string form.
type ServerAddr struct {
	// Addr is the server's host:port, with a non-empty host and a numeric
	// port 1..65535. There is no default; zero ("") is invalid.
	Addr string

	// Weight is the server's share of the backend's requests relative to
	// the other servers, 1..1000. Default 1; zero means the default.
	Weight int
}

// Route sends matching requests to a backend, or answers them itself, one
// TOML [[route]].
type Route struct {
	// Host is the request host the route applies to, TOML "host": exact and
	// case-insensitive, any ":port" ignored. It is stored in lower case
	// without the port (a bracketed IPv6 address keeps its brackets, as in
	// a Host header), so that matching needs only to do the same to the
	// request's host. Default and zero (""): any host.
	Host string `toml:"host,omitempty"`

	// PathPrefix is the prefix the request path must start with, TOML
	// "path_prefix"; it must itself start with "/". Default "/", which
	// matches every path. Zero ("") means the default.
	PathPrefix string `toml:"path_prefix"`

	// Backend is the Name of the backend that serves the route, TOML
	// "backend". Exactly one of Backend and Return must be set. Zero ("")
	// means not set.
	Backend string `toml:"backend,omitempty"`

	// Return, when set, makes the proxy itself answer with this status
	// (like nginx's "return"), TOML "return", 100..599. Zero means not set.
	Return int `toml:"return,omitzero"`

	// Body is the response body sent with Return, TOML "body"; it is only
	// allowed together with "return". Default and zero (""): an empty body.
	Body string `toml:"body,omitempty"`
}

// Duration is a time.Duration that decodes from a TOML string such as
// "10s", "250ms" or "1m30s" (the syntax of time.ParseDuration). A
// configured duration must be positive: a zero or negative timeout has no
// useful meaning, and accepting it would hide a typo.
//
// Duration implements encoding.TextMarshaler and encoding.TextUnmarshaler,
// so it is written back as the same kind of string it is read from.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like time.Duration.String, e.g. "1m30s".
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler. It rejects anything
// time.ParseDuration rejects, and zero or negative durations.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := parseDuration(string(text))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

func parseDuration(s string) (Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want e.g. \"10s\", \"250ms\" or \"1m30s\")", s)
	}
	if v <= 0 {
		return 0, fmt.Errorf("duration %q must be positive", s)
	}
	return Duration(v), nil
}

// String returns s as written in TOML: "host:port", followed by
// " weight=N" when the weight is not the default 1.
func (s ServerAddr) String() string {
	if s.Weight == 0 || s.Weight == 1 {
		return s.Addr
	}
	return s.Addr + " weight=" + strconv.Itoa(s.Weight)
}

// MarshalText implements encoding.TextMarshaler, in the form of String.
func (s ServerAddr) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler: it accepts
// "host:port" or "host:port weight=N" and applies the default weight.
func (s *ServerAddr) UnmarshalText(text []byte) error {
	v, err := parseServer(string(text))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// parseServer parses one entry of a backend's "servers".
func parseServer(s string) (ServerAddr, error) {
	const want = `want "host:port" or "host:port weight=N"`
	f := strings.Fields(s)
	switch {
	case len(f) == 0:
		return ServerAddr{}, fmt.Errorf("empty server; %s", want)
	case len(f) > 2:
		return ServerAddr{}, fmt.Errorf("unexpected %q after weight; %s", strings.Join(f[2:], " "), want)
	}
	if msg := addrProblem(f[0], true); msg != "" {
		return ServerAddr{}, fmt.Errorf("invalid address %q: %s", f[0], msg)
	}
	sa := ServerAddr{Addr: f[0], Weight: defaultWeight}
	if len(f) == 2 {
		n, ok := strings.CutPrefix(f[1], "weight=")
		if !ok || !isDigits(n) {
			return ServerAddr{}, fmt.Errorf("invalid weight %q; %s", f[1], want)
		}
		w, err := strconv.Atoi(n)
		if err != nil || w < minWeight || w > maxWeight {
			return ServerAddr{}, fmt.Errorf("weight %s out of range %d..%d", n, minWeight, maxWeight)
		}
		sa.Weight = w
	}
	return sa, nil
}

// Defaults, also documented on the fields they apply to; keep the two in
// step.
const (
	defaultSource          = "<default>"
	defaultListen          = "127.0.0.1:8080"
	defaultHeaderTimeout   = Duration(10 * time.Second)
	defaultIdleTimeout     = Duration(60 * time.Second)
	defaultBodyTimeout     = Duration(60 * time.Second)
	defaultShutdownGrace   = Duration(30 * time.Second)
	defaultMaxRequestLine  = 8192
	defaultMaxHeaderBytes  = 32768
	defaultMaxHeaderFields = 100
	defaultOutputBuffer    = 256 << 10
	defaultLogLevel        = "info"
	defaultLogAccess       = "off"
	defaultLogFormat       = "json"
	defaultConns           = 16
	defaultQueue           = 64
	defaultPipeline        = 1
	defaultOwner           = "loop"
	defaultConnectTimeout  = Duration(5 * time.Second)
	defaultResponseTimeout = Duration(60 * time.Second)
	defaultUpstreamIdle    = Duration(60 * time.Second)
	defaultWeight          = 1
	defaultPathPrefix      = "/"
)

// Limits of the values accepted, inclusive.
const (
	maxLoops        = 1024
	minRequestLine  = 256
	maxRequestLine  = 1 << 20
	minHeaderBytes  = 1024
	maxHeaderBytes  = 1 << 20
	minHeaderFields = 1
	maxHeaderFields = 10000
	minOutputBuffer = 4 << 10
	maxOutputBuffer = 64 << 20
	minConns        = 1
	maxConns        = 4096
	minQueue        = 1
	maxQueue        = 65536
	minPipeline     = 1
	maxPipeline     = 64
	minWeight       = 1
	maxWeight       = 1000
	minReturnStatus = 100
	maxReturnStatus = 599
	minPort         = 1
	maxPort         = 65535

	maxBackendNameLen = 255 // bytes
	maxHostNameLen    = 253 // bytes, as in DNS
	maxHostLabelLen   = 63  // bytes, as in DNS

	// maxErrorValueBytes is how much of a value an error message quotes.
	maxErrorValueBytes = 64
)

// ApplyDefaults sets every field whose zero value means "the default" to
// that default, as Parse does after decoding. It is exported for Configs
// built in Go code (tests, embedding programs); it does not validate.
//
// Retry.Budget has a default that is not its zero value (0.2, where 0 is
// valid): ApplyDefaults sets it only when the whole Retry is zero, that
// is, when the Go code did not set that section at all.
func (c *Config) ApplyDefaults() {
	s := &c.Server
	if len(s.Listen) == 0 {
		s.Listen = []string{defaultListen}
	}
	setDuration(&s.HeaderTimeout, defaultHeaderTimeout)
	setDuration(&s.IdleTimeout, defaultIdleTimeout)
	setDuration(&s.BodyTimeout, defaultBodyTimeout)
	setDuration(&s.ShutdownGrace, defaultShutdownGrace)
	setInt(&s.MaxRequestLine, defaultMaxRequestLine)
	setInt(&s.MaxHeaderBytes, defaultMaxHeaderBytes)
	setInt(&s.MaxHeaderFields, defaultMaxHeaderFields)
	setInt(&s.OutputBuffer, defaultOutputBuffer)

	setString(&c.Log.Level, defaultLogLevel)
	setString(&c.Log.Access, defaultLogAccess)
	setString(&c.Log.Format, defaultLogFormat)

	for i := range c.Backends {
		b := &c.Backends[i]
		for j := range b.Servers {
			setInt(&b.Servers[j].Weight, defaultWeight)
		}
		setInt(&b.Conns, defaultConns)
		setInt(&b.Queue, defaultQueue)
		setInt(&b.Pipeline, defaultPipeline)
		setString(&b.Owner, defaultOwner)
		setDuration(&b.ConnectTimeout, defaultConnectTimeout)
		setDuration(&b.ResponseTimeout, defaultResponseTimeout)
		setDuration(&b.IdleTimeout, defaultUpstreamIdle)
		setString(&b.Balance, defaultBalance)
		b.Health.applyDefaults()
		b.Circuit.applyDefaults()
		b.Limits.applyDefaults()
		b.Retry.applyDefaults()
	}
	for i := range c.Routes {
		setString(&c.Routes[i].PathPrefix, defaultPathPrefix)
	}
}

func setInt(p *int, def int) {
	if *p == 0 {
		*p = def
	}
}

func setString(p *string, def string) {
	if *p == "" {
		*p = def
	}
}

func setDuration(p *Duration, def Duration) {
	if *p == 0 {
		*p = def
	}
}

// Load reads the file at path and parses it with Parse, naming errors
// after path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

//go:embed default.toml
var defaultTOML []byte

// Default returns the built-in configuration, the embedded default.toml,
// with Source "<default>". It answers every request on 127.0.0.1:8080 with
// a fixed page instead of proxying, so that Apex runs on a fresh machine
// with nothing else running. It panics if the embedded file is invalid,
// which a test rules out.
func Default() *Config {
	c, err := Parse(defaultSource, defaultTOML)
	if err != nil {
		panic("config: embedded default.toml is invalid: " + err.Error())
	}
	return c
}

// SpliceOn reports whether the backend splices response bodies (Splice,
// default true).
func (b *Backend) SpliceOn() bool { return b.Splice == nil || *b.Splice }
