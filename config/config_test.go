package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// doc joins lines into a document, one per line, so that the line numbers
// expected by the tests can be counted in the source.
func doc(lines ...string) string {
	return strings.Join(lines, "\n") + "\n"
}

// tail is a valid backend and route, appended to documents whose error is
// elsewhere; it comes last so that it does not move the lines before it.
var tail = []string{
	`[[backend]]`,
	`name = "app"`,
	`servers = ["127.0.0.1:9000"]`,
	`[[route]]`,
	`backend = "app"`,
}

func withTail(lines ...string) string {
	return doc(append(lines, tail...)...)
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string // the whole error text
	}{
		// Unknown keys: strict decoding.
		{"unknown key", withTail(
			`[server]`,
			`listen = "127.0.0.1:8080"`,
			`lisen = "127.0.0.1:8081"`),
			`apex.toml:3: server.lisen: unknown key (valid keys: listen, loops, header_timeout, idle_timeout, body_timeout, shutdown_grace, max_request_line, max_header_bytes, max_header_fields, max_body_bytes, output_buffer)`},
		{"unknown key in second backend", doc(
			`[[backend]]`,
			`name = "a"`,
			`servers = ["h:1"]`,
			``,
			`[[backend]]`,
			`name = "b"`,
			`servers = ["h:2"]`,
			`wieght = 2`,
			`[[route]]`,
			`backend = "a"`),
			`apex.toml:8: backend[1].wieght: unknown key (valid keys: name, servers, conns, queue, pipeline, splice, owner, connect_timeout, response_timeout, idle_timeout, balance, hash_key, health, circuit, limits, retry)`},
		{"splice not a boolean", doc(
			`[[backend]]`,
			`name = "app"`,
			`servers = ["h:1"]`,
			`splice = "on"`,
			`[[route]]`,
			`backend = "app"`),
			`apex.toml:4: backend[0].splice: expected a boolean, got string "on"`},
		{"unknown nested table", doc(
			`[[backend]]`,
			`name = "app"`,
			`servers = ["h:1"]`,
			`[backend.tls]`,
			`verify = true`,
			`[[route]]`,
			`backend = "app"`),
			`apex.toml:4: backend[0].tls: unknown key (valid keys: name, servers, conns, queue, pipeline, splice, owner, connect_timeout, response_timeout, idle_timeout, balance, hash_key, health, circuit, limits, retry)`},
		{"unknown nested array of tables", doc(
			`[[backend]]`,
			`name = "app"`,
			`servers = ["h:1"]`,
			`[[backend]]`,
			`name = "b"`,
			`servers = ["h:1"]`,
			`[[backend.check]]`,
			`path = "/healthz"`,
			`[[route]]`,
			`backend = "app"`),
			`apex.toml:7: backend[1].check: unknown key (valid keys: name, servers, conns, queue, pipeline, splice, owner, connect_timeout, response_timeout, idle_timeout, balance, hash_key, health, circuit, limits, retry)`},
		{"unknown top-level table", withTail(
			`[tls]`,
			`cert = "x.pem"`),
			`apex.toml:1: tls: unknown key (valid keys: server, admin, log, backend, route)`},
		{"unknown key in inline table", doc(
			`backend = [`,
			`  { name = "app", servers = ["h:1"] },`,
			`  { name = "b", servers = ["h:1"], foo = 1 },`,
			`]`,
			`[[route]]`,
			`backend = "app"`),
			`apex.toml:3: backend[1].foo: unknown key (valid keys: name, servers, conns, queue, pipeline, splice, owner, connect_timeout, response_timeout, idle_timeout, balance, hash_key, health, circuit, limits, retry)`},
		{"unknown quoted key", withTail(
			`[server]`,
			`"max body" = 1`),
			`apex.toml:2: server."max body": unknown key (valid keys: listen, loops, header_timeout, idle_timeout, body_timeout, shutdown_grace, max_request_line, max_header_bytes, max_header_fields, max_body_bytes, output_buffer)`},
		{"unknown keys reported in document order", withTail(
			`[server]`,
			`zzz = 1`,
			`aaa = 1`),
			`apex.toml:2: server.zzz: unknown key (valid keys: listen, loops, header_timeout, idle_timeout, body_timeout, shutdown_grace, max_request_line, max_header_bytes, max_header_fields, max_body_bytes, output_buffer)`},

		// Wrong types.
		{"string for integer", withTail(
			`[server]`,
			`loops = "two"`),
			`apex.toml:2: server.loops: expected an integer, got string "two"`},
		{"float for integer", withTail(
			`[server]`,
			`loops = 2.5`),
			`apex.toml:2: server.loops: expected an integer, got float 2.5`},
		{"boolean for string", withTail(
			`[log]`,
			`level = true`),
			`apex.toml:2: log.level: expected a string, got boolean true`},
		{"date for duration", withTail(
			`[server]`,
			`idle_timeout = 1979-05-27`),
			`apex.toml:2: server.idle_timeout: expected a duration string such as "10s", got a date/time`},
		{"integer for duration", withTail(
			`[server]`,
			`header_timeout = 10`),
			`apex.toml:2: server.header_timeout: expected a duration string such as "10s", got integer 10`},
		{"integer for listen", withTail(
			`[server]`,
			`listen = 8080`),
			`apex.toml:2: server.listen: expected a string or a list of strings, got integer 8080`},
		{"integer in listen list", withTail(
			`[server]`,
			`listen = [`,
			`  "127.0.0.1:8080",`,
			`  8081,`,
			`]`),
			`apex.toml:4: server.listen[1]: expected a string, got integer 8081`},
		{"string for servers", doc(
			`[[backend]]`,
			`name = "app"`,
			`servers = "127.0.0.1:9000"`,
			`[[route]]`,
			`backend = "app"`),
			`apex.toml:3: backend[0].servers: expected a list of strings or tables, got string "127.0.0.1:9000"`},
		{"table for backend", doc(
			`[backend]`,
			`name = "app"`,
			`servers = ["h:1"]`,
			`[[route]]`,
			`backend = "app"`),
			`apex.toml:1: backend: expected an array of tables ([[backend]]), got a table`},
		{"value for table", withTail(
			`server = "127.0.0.1:8080"`),
			`apex.toml:1: server: expected a table, got string "127.0.0.1:8080"`},
		{"dotted key", withTail(
			`server.loops = "x"`),
			`apex.toml:1: server.loops: expected an integer, got string "x"`},
		{"inline table", withTail(
			`server = { listen = "127.0.0.1:8080", loops = "x" }`),
			`apex.toml:1: server.loops: expected an integer, got string "x"`},
		{"integer for backend name", withTail(
			`[[route]]`,
			`backend = 5`),
			`apex.toml:2: route[0].backend: expected a string, got integer 5`},

		{"nested array in listen", withTail(
			`[server]`,
			`listen = ["127.0.0.1:8080", [], ["127.0.0.1:8081"]]`),
			`apex.toml:2: server.listen[1]: expected a string, got an array`},
		{"integer for backend table", doc(
			`backend = [1]`,
			`[[route]]`,
			`return = 200`),
			`apex.toml:1: backend[0]: expected a table, got integer 1`},
		{"first error by line wins", doc(
			`[log]`,
			`level = "loud"`,
			`[server]`,
			`loops = "many"`),
			`apex.toml:2: log.level: invalid value "loud" (want one of: debug, info, warn, error)`},

		// Durations.
		{"bad duration unit", withTail(
			`[server]`,
			`header_timeout = "10 parsecs"`),
			`apex.toml:2: server.header_timeout: invalid duration "10 parsecs" (want e.g. "10s", "250ms" or "1m30s")`},
		{"duration without unit", withTail(
			`[server]`,
			`idle_timeout = "10"`),
			`apex.toml:2: server.idle_timeout: invalid duration "10" (want e.g. "10s", "250ms" or "1m30s")`},
		{"negative duration", withTail(
			`[server]`,
			`body_timeout = "-1s"`),
			`apex.toml:2: server.body_timeout: duration "-1s" must be positive`},
		{"zero duration", withTail(
			`[server]`,
			`shutdown_grace = "0s"`),
			`apex.toml:2: server.shutdown_grace: duration "0s" must be positive`},
		{"bad backend duration", doc(
			`[[backend]]`,
			`name = "app"`,
			`servers = ["h:1"]`,
			`connect_timeout = "5 s"`,
			`[[route]]`,
			`backend = "app"`),
			`apex.toml:4: backend[0].connect_timeout: invalid duration "5 s" (want e.g. "10s", "250ms" or "1m30s")`},

		// Addresses.
		{"listen missing port", withTail(
			`[server]`,
			`listen = "127.0.0.1"`),
			`apex.toml:2: server.listen: invalid address "127.0.0.1": missing port`},
		{"server missing port", doc(
			`[[backend]]`,
			`name = "app"`,
			`servers = [`,
			`  "127.0.0.1:9000",`,
			`  "127.0.0.1",`,
			`]`,
			`[[route]]`,
			`backend = "app"`),
			`apex.toml:5: backend[0].servers[1]: invalid address "127.0.0.1": missing port`},
		{"upstream port 0", withTail(
			`[[backend]]`,
			`name = "zero"`,
			`servers = ["127.0.0.1:0"]`),
			`apex.toml:3: backend[0].servers[0]: invalid address "127.0.0.1:0": port 0 out of range 1..65535`},
		{"port 70000", withTail(
			`[server]`,
			`listen = ["127.0.0.1:8080", "127.0.0.1:70000"]`),
			`apex.toml:2: server.listen[1]: invalid address "127.0.0.1:70000": port 70000 out of range 0..65535`},
		{"huge port", withTail(
			`[server]`,
			`listen = "127.0.0.1:99999999999999999999"`),
			`apex.toml:2: server.listen: invalid address "127.0.0.1:99999999999999999999": port 99999999999999999999 out of range 0..65535`},
		{"non-numeric port", doc(
			`[[backend]]`,
			`name = "app"`,
			`servers = ["app.internal:http"]`,
			`[[route]]`,
			`backend = "app"`),
			`apex.toml:3: backend[0].servers[0]: invalid address "app.internal:http": non-numeric port "http"`},
		{"signed port", withTail(
			`[server]`,
			`listen = "127.0.0.1:+80"`),
			`apex.toml:2: server.listen: invalid address "127.0.0.1:+80": non-numeric port "+80"`},
		{"empty port", withTail(
			`[server]`,
			`listen = "127.0.0.1:"`),
			`apex.toml:2: server.listen: invalid address "127.0.0.1:": missing port`},
		{"empty listen", withTail(
			`[server]`,
			`listen = ""`),
			`apex.toml:2: server.listen: invalid address "": empty; want host:port`},
		{"empty listen list", withTail(
			`[server]`,
			`listen = []`),
			`apex.toml:2: server.listen: at least one listen address is required`},
		{"unbracketed IPv6", withTail(
			`[server]`,
			`listen = "::1:8080"`),
			`apex.toml:2: server.listen: invalid address "::1:8080": too many colons; write an IPv6 address in brackets, like [::1]:8080`},
		{"bad IPv6", withTail(
			`[server]`,
			`listen = "[::g]:8080"`),
			`apex.toml:2: server.listen: invalid address "[::g]:8080": invalid IPv6 address "::g"`},
		{"bad host", withTail(
			`[server]`,
			`listen = "local host:8080"`),
			`apex.toml:2: server.listen: invalid address "local host:8080": invalid host "local host"`},
		{"server without host", doc(
			`[[backend]]`,
			`name = "app"`,
			`servers = [":9000"]`,
			`[[route]]`,
			`backend = "app"`),
			`apex.toml:3: backend[0].servers[0]: invalid address ":9000": missing host`},
		{"admin missing port", withTail(
			`[admin]`,
			`listen = "localhost"`),
			`apex.toml:2: admin.listen: invalid address "localhost": missing port`},
		{"duplicate listen", withTail(
			`[server]`,
			`listen = [`,
			`  "127.0.0.1:8080",`,
			`  "[::1]:8080",`,
			`  "127.0.0.1:08080",`,
			`]`),
			`apex.toml:5: server.listen[2]: duplicate listen address "127.0.0.1:08080" (also at line 3)`},

		// Weights.
		{"weight 0", doc(
			`[[backend]]`,
			`name = "app"`,
			`servers = ["h:1", "h:2 weight=0"]`,
			`[[route]]`,
			`backend = "app"`),
			`apex.toml:3: backend[0].servers[1]: weight 0 out of range 1..1000`},
		{"weight 1001", doc(
			`[[backend]]`,
			`name = "app"`,
			`servers = ["h:1 weight=1001"]`,
			`[[route]]`,
			`backend = "app"`),
			`apex.toml:3: backend[0].servers[0]: weight 1001 out of range 1..1000`},
		{"non-numeric weight", doc(
			`[[backend]]`,
			`name = "app"`,
			`servers = ["h:1 weight=heavy"]`,
			`[[route]]`,
			`backend = "app"`),
			`apex.toml:3: backend[0].servers[0]: invalid weight "weight=heavy"; want "host:port" or "host:port weight=N"`},
		{"misspelt weight", doc(
			`[[backend]]`,
			`name = "app"`,
			`servers = ["h:1 w=2"]`,
			`[[route]]`,
			`backend = "app"`),
			`apex.toml:3: backend[0].servers[0]: invalid weight "w=2"; want "host:port" or "host:port weight=N"`},
		{"junk after weight", doc(
			`[[backend]]`,
			`name = "app"`,
			`servers = ["h:1 weight=2 backup"]`,
			`[[route]]`,
			`backend = "app"`),
			`apex.toml:3: backend[0].servers[0]: unexpected "backup" after weight; want "host:port" or "host:port weight=N"`},
		{"empty server", doc(
			`[[backend]]`,
			`name = "app"`,
			`servers = [" "]`,
			`[[route]]`,
			`backend = "app"`),
			`apex.toml:3: backend[0].servers[0]: empty server; want "host:port" or "host:port weight=N"`},

		// Backends.
		{"duplicate backend name", doc(
			`[[backend]]`,
			`name = "app"`,
			`servers = ["127.0.0.1:9000"]`,
			``,
			`[[backend]]`,
			`servers = ["127.0.0.1:9001"]`,
			`name = "app"`,
			`[[route]]`,
			`backend = "app"`),
			`apex.toml:7: backend[1].name: duplicate backend name "app" (first defined at line 2)`},
		{"invalid backend name", doc(
			`[[backend]]`,
			`name = "my app"`,
			`servers = ["h:1"]`,
			`[[route]]`,
			`backend = "app"`),
			`apex.toml:2: backend[0].name: invalid backend name "my app": use only the characters A-Z a-z 0-9 _ . -`},
		{"empty backend name", doc(
			`[[backend]]`,
			`name = ""`,
			`servers = ["h:1"]`,
			`[[route]]`,
			`backend = "app"`),
			`apex.toml:2: backend[0].name: invalid backend name "": must not be empty`},
		{"missing backend name", doc(
			`[[route]]`,
			`backend = "app"`,
			``,
			`[[backend]]`,
			`servers = ["h:1"]`),
			`apex.toml:4: backend[0].name: required key is missing; every backend needs a name`},
		{"missing servers", doc(
			`[[backend]]`,
			`name = "app"`,
			`[[backend]]`,
			`name = "b"`,
			`[[route]]`,
			`backend = "app"`),
			`apex.toml:1: backend[0].servers: required key is missing; a backend needs at least one server`},
		{"empty servers", doc(
			`[[backend]]`,
			`name = "app"`,
			`servers = []`,
			`[[route]]`,
			`backend = "app"`),
			`apex.toml:3: backend[0].servers: at least one server is required`},
		{"bad owner", doc(
			`[[backend]]`,
			`name = "app"`,
			`servers = ["h:1"]`,
			`owner = "thread"`,
			`[[route]]`,
			`backend = "app"`),
			`apex.toml:4: backend[0].owner: invalid value "thread" (want one of: goroutine, loop)`},

		// Routes.
		{"route to unknown backend", doc(
			`[[backend]]`,
			`name = "app"`,
			`servers = ["h:1"]`,
			`[[backend]]`,
			`name = "static"`,
			`servers = ["h:2"]`,
			`[[route]]`,
			`backend = "app"`,
			`[[route]]`,
			`path_prefix = "/s/"`,
			`backend = "statik"`),
			`apex.toml:11: route[1].backend: unknown backend "statik" (defined: app, static)`},
		{"route without backends", doc(
			`[[route]]`,
			`backend = "app"`),
			`apex.toml:2: route[0].backend: unknown backend "app" (no [[backend]] is defined)`},
		{"route with backend and return", withTail(
			`[[route]]`,
			`backend = "app"`,
			`return = 404`),
			`apex.toml:3: route[0].return: a route has either backend or return, not both (backend is at line 2)`},
		{"route with return and backend", withTail(
			`[[route]]`,
			`return = 404`,
			`backend = "app"`),
			`apex.toml:3: route[0].backend: a route has either backend or return, not both (return is at line 2)`},
		{"route with neither", withTail(
			`[[route]]`,
			`host = "example.test"`),
			`apex.toml:1: route[0]: a route needs either backend (to proxy) or return (to answer itself)`},
		{"inline route with neither", doc(
			`route = [`,
			`  { return = 200 },`,
			`  { path_prefix = "/x" },`,
			`]`),
			`apex.toml:3: route[1]: a route needs either backend (to proxy) or return (to answer itself)`},
		{"path_prefix without slash", withTail(
			`[[route]]`,
			`path_prefix = "api/"`,
			`backend = "app"`),
			`apex.toml:2: route[0].path_prefix: invalid path_prefix "api/": must start with "/"`},
		{"empty path_prefix", withTail(
			`[[route]]`,
			`path_prefix = ""`,
			`backend = "app"`),
			`apex.toml:2: route[0].path_prefix: invalid path_prefix "": must start with "/"`},
		{"path_prefix with space", withTail(
			`[[route]]`,
			`path_prefix = "/a b"`,
			`backend = "app"`),
			`apex.toml:2: route[0].path_prefix: invalid path_prefix "/a b": contains a space or control character`},
		{"host with scheme", withTail(
			`[[route]]`,
			`host = "http://example.test/"`,
			`backend = "app"`),
			`apex.toml:2: route[0].host: invalid host "http://example.test/": want a host name, without scheme, path or spaces`},
		{"host with bad port", withTail(
			`[[route]]`,
			`host = "example.test:http"`,
			`backend = "app"`),
			`apex.toml:2: route[0].host: invalid host "example.test:http": invalid port "http"`},
		{"host with unbracketed IPv6", withTail(
			`[[route]]`,
			`host = "::1"`,
			`backend = "app"`),
			`apex.toml:2: route[0].host: invalid host "::1": write an IPv6 address in brackets, like [::1]`},
		{"host with empty label", withTail(
			`[[route]]`,
			`host = "example..test"`,
			`backend = "app"`),
			`apex.toml:2: route[0].host: invalid host "example..test": want a host name such as example.com, or an IP address`},
		{"return out of range", withTail(
			`[[route]]`,
			`return = 600`),
			`apex.toml:2: route[0].return: 600 out of range 100..599`},
		{"body without return", withTail(
			`[[route]]`,
			`backend = "app"`,
			`body = "hello"`),
			`apex.toml:3: route[0].body: body is only allowed with return`},
		{"body with 204", withTail(
			`[[route]]`,
			`return = 204`,
			`body = "hello"`),
			`apex.toml:3: route[0].body: a 204 response cannot have a body`},
		{"no route", doc(
			`[server]`,
			`listen = "127.0.0.1:8080"`),
			`apex.toml:1: route: at least one [[route]] is required`},
		{"route list inside [server]", doc(
			`[server]`,
			`listen = "127.0.0.1:8080"`,
			`route = []`),
			`apex.toml:3: server.route: unknown key (valid keys: listen, loops, header_timeout, idle_timeout, body_timeout, shutdown_grace, max_request_line, max_header_bytes, max_header_fields, max_body_bytes, output_buffer)`},
		{"empty top-level route list", doc(
			`route = []`,
			`[server]`,
			`listen = "127.0.0.1:8080"`),
			`apex.toml:1: route: at least one [[route]] is required`},
		{"empty document", "",
			`apex.toml:1: route: at least one [[route]] is required`},
		{"missing route does not hide a located error", doc(
			`[server]`,
			`loops = -1`),
			`apex.toml:2: server.loops: -1 out of range 0..1024`},

		// Log.
		{"bad log level", withTail(
			`[log]`,
			`level = "verbose"`),
			`apex.toml:2: log.level: invalid value "verbose" (want one of: debug, info, warn, error)`},
		{"bad log format", withTail(
			`[log]`,
			`format = "text"`),
			`apex.toml:2: log.format: invalid value "text" (want one of: json, combined)`},
		{"empty access log", withTail(
			`[log]`,
			`access = ""`),
			`apex.toml:2: log.access: must be "off", "stdout" or a file path`},

		// Integer ranges.
		{"loops too large", withTail(
			`[server]`,
			`loops = 5000`),
			`apex.toml:2: server.loops: 5000 out of range 0..1024`},
		{"max_request_line too small", withTail(
			`[server]`,
			`max_request_line = 100`),
			`apex.toml:2: server.max_request_line: 100 out of range 256..1048576`},
		{"max_header_bytes too large", withTail(
			`[server]`,
			`max_header_bytes = 2_000_000`),
			`apex.toml:2: server.max_header_bytes: 2000000 out of range 1024..1048576`},
		{"max_header_fields zero", withTail(
			`[server]`,
			`max_header_fields = 0`),
			`apex.toml:2: server.max_header_fields: 0 out of range 1..10000`},
		{"negative max_body_bytes", withTail(
			`[server]`,
			`max_body_bytes = -1`),
			`apex.toml:2: server.max_body_bytes: -1 must be at least 0`},
		{"output_buffer too small", withTail(
			`[server]`,
			`output_buffer = 1024`),
			`apex.toml:2: server.output_buffer: 1024 out of range 4096..67108864`},
		{"conns zero", doc(
			`[[backend]]`,
			`name = "app"`,
			`servers = ["h:1"]`,
			`conns = 0`,
			`[[route]]`,
			`backend = "app"`),
			`apex.toml:4: backend[0].conns: 0 out of range 1..4096`},
		{"queue too large", doc(
			`[[backend]]`,
			`name = "app"`,
			`servers = ["h:1"]`,
			`queue = 0x10001`,
			`[[route]]`,
			`backend = "app"`),
			`apex.toml:4: backend[0].queue: 65537 out of range 1..65536`},
		{"integer overflow", withTail(
			`[server]`,
			`loops = 99999999999999999999`),
			`apex.toml:2: server.loops: invalid TOML: decimal number is too large to fit in a 64-bit signed integer`},
		{"header bytes below request line (default)", withTail(
			`[server]`,
			`max_request_line = 65536`),
			`apex.toml:2: server.max_request_line: max_header_bytes (32768) must be at least max_request_line (65536), as the head includes the request line`},
		{"header bytes below request line", withTail(
			`[server]`,
			`max_request_line = 65536`,
			`max_header_bytes = 32768`),
			`apex.toml:3: server.max_header_bytes: max_header_bytes (32768) must be at least max_request_line (65536), as the head includes the request line`},

		// TOML syntax, with the line from the parser.
		{"unclosed table header", doc(
			`[server`,
			`listen = "127.0.0.1:8080"`),
			`apex.toml:1: server: invalid TOML: expected ']' to close table name`},
		{"unclosed array table header", withTail(
			`[server]`,
			`listen = "127.0.0.1:8080"`,
			`[[backend]`),
			`apex.toml:3: backend: invalid TOML: expected ']]' to close array table name`},
		{"missing value", withTail(
			`[server]`,
			`# the loops`,
			`loops =`),
			`apex.toml:3: server.loops: invalid TOML: unexpected character U+000A at start of value`},
		{"missing value in second backend", doc(
			`[[backend]]`,
			`name = "a"`,
			`[[backend]]`,
			`name = "b" # comment`,
			``,
			`conns = `,
			`servers = []`),
			`apex.toml:6: backend[1].conns: invalid TOML: unexpected character U+000A at start of value`},
		{"missing comma in multi-line array", withTail(
			`[server]`,
			`listen = [`,
			`  "127.0.0.1:8080"`,
			`  "127.0.0.1:8081",`,
			`]`),
			`apex.toml:4: server.listen: invalid TOML: expected ',' or ']' after array value`},
		{"bad inline table", withTail(
			`server = { loops = }`),
			`apex.toml:1: server: invalid TOML: unexpected character U+007D '}' at start of value`},
		{"key with space", withTail(
			`[server]`,
			`max body = 1`),
			`apex.toml:2: server: invalid TOML: expected '=' after key`},
		{"unterminated string", withTail(
			`[log]`,
			`access = "/var/log/apex.log`),
			`apex.toml:2: log.access: invalid TOML: basic strings cannot have new lines`},
		{"two expressions on a line", withTail(
			`[server] loops = 1`),
			`apex.toml:1: server: invalid TOML: expected newline but got U+006C 'l'`},
		{"duplicate key", withTail(
			`[server]`,
			`loops = 1`,
			`loops = 2`),
			`apex.toml:3: server.loops: invalid TOML: key loops is already defined`},
		{"duplicate table", withTail(
			`[server]`,
			`loops = 1`,
			`[server]`,
			`loops = 2`),
			`apex.toml:3: server: invalid TOML: table server already exists`},
		{"missing key", withTail(
			`[server]`,
			`=`),
			`apex.toml:2: server: invalid TOML: invalid character at start of key: U+003D '='`},
		{"CRLF line endings", strings.ReplaceAll(withTail(
			`[server]`,
			`listen = "127.0.0.1:8080"`,
			`loops = "x"`), "\n", "\r\n"),
			`apex.toml:3: server.loops: expected an integer, got string "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("apex.toml", []byte(tt.doc))
			if err == nil {
				t.Fatalf("Parse succeeded, want error %s\ndocument:\n%s\nconfig: %+v", tt.want, tt.doc, c)
			}
			if c != nil {
				t.Errorf("Parse returned a Config with an error")
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

func TestErrorFields(t *testing.T) {
	_, err := Parse("conf/apex.toml", []byte(withTail(
		`[[route]]`,
		`backend = "nope"`)))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %T %v, want *Error", err, err)
	}
	want := Error{File: "conf/apex.toml", Line: 2, Key: "route[0].backend", Msg: `unknown backend "nope" (defined: app)`}
	if *e != want {
		t.Errorf("got %+v, want %+v", *e, want)
	}
	if got, want := (&Error{File: "f", Line: 3, Msg: "m"}).Error(), "f:3: m"; got != want {
		t.Errorf("Error without key: got %q, want %q", got, want)
	}
}

func TestLongValueShortenedInError(t *testing.T) {
	long := strings.Repeat("x", 100)
	_, err := Parse("apex.toml", []byte(withTail(`[log]`, `level = "`+long+`"`)))
	want := `apex.toml:2: log.level: invalid value "` + strings.Repeat("x", 64) + `"... (want one of: debug, info, warn, error)`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

// minimalTOML is the smallest useful configuration, as in the package's
// example.
const minimalTOML = `
[server]
listen = "127.0.0.1:8080"        # a string or a list of strings

[[backend]]
name = "app"
servers = ["127.0.0.1:9000"]

[[route]]
host = "example.test"            # optional
path_prefix = "/"                # optional
backend = "app"
`

// full sets every key to a value other than its default.
const full = `
[server]
listen = ["127.0.0.1:8080", "[::1]:8443", ":9090"]
loops = 4
header_timeout = "5s"
idle_timeout = "2m"
body_timeout = "30s"
shutdown_grace = "1m30s"
max_request_line = 4096
max_header_bytes = 65536
max_header_fields = 50
max_body_bytes = 10_485_760
output_buffer = 131072

[admin]
listen = "127.0.0.1:9901"

[log]
level = "debug"
access = "/var/log/apex/access.log"
format = "combined"

[[backend]]
name = "app"
servers = ["10.0.0.1:9000 weight=3", "app-2.internal:9000"]
conns = 32
queue = 128
splice = false
owner = "loop"
connect_timeout = "250ms"
response_timeout = "15s"
idle_timeout = "45s"
balance = "hash"
hash_key = "header:X-User"

[backend.health]
path = "/healthz?deep=1"
interval = "2s"
timeout = "2s"
rise = 5
fall = 1

[backend.circuit]
consecutive_failures = 10
failure_ratio = 0.25
window = "30s"
min_requests = 100
cool_down = "1m"
half_open_trials = 1

[backend.limits]
adaptive = false
min_limit = 1
max_limit = 64
queue = 1024
queue_timeout = "1s"
shed_status = 429

[backend.retry]
attempts = 3
budget = 0

[[backend]]
name = "static.v2"
servers = ["[fd00::1]:80"]

[[route]]
host = "API.Example.TEST:8443"
path_prefix = "/v1/"
backend = "app"

[[route]]
host = "[FD00::2]:80"
backend = "static.v2"

[[route]]
path_prefix = "/healthz"
return = 200
body = "ok\n"

[[route]]
return = 404
`

// The policy sections of a backend that writes none of them, spelt out
// rather than taken from the package's defaults, so that a changed
// default shows up here.
var (
	wantHealth = Health{
		Path:     "", // passive health only
		Interval: Duration(time.Second),
		Timeout:  Duration(500 * time.Millisecond),
		Rise:     2,
		Fall:     3,
	}
	wantCircuit = Circuit{
		ConsecutiveFailures: 5,
		FailureRatio:        0.5,
		Window:              Duration(10 * time.Second),
		MinRequests:         20,
		CoolDown:            Duration(5 * time.Second),
		HalfOpenTrials:      3,
	}
	wantLimits = Limits{
		Adaptive:     false,
		MinLimit:     4,
		MaxLimit:     1000,
		Queue:        256,
		QueueTimeout: Duration(100 * time.Millisecond),
		ShedStatus:   503,
	}
	wantRetry = Retry{Attempts: 2, Budget: 0.2}
)

func fullConfig(source string) *Config {
	return &Config{
		Source: source,
		Server: Server{
			Listen:          []string{"127.0.0.1:8080", "[::1]:8443", ":9090"},
			Loops:           4,
			HeaderTimeout:   Duration(5 * time.Second),
			IdleTimeout:     Duration(2 * time.Minute),
			BodyTimeout:     Duration(30 * time.Second),
			ShutdownGrace:   Duration(90 * time.Second),
			MaxRequestLine:  4096,
			MaxHeaderBytes:  65536,
			MaxHeaderFields: 50,
			MaxBodyBytes:    10 << 20,
			OutputBuffer:    128 << 10,
		},
		Admin: Admin{Listen: "127.0.0.1:9901"},
		Log:   Log{Level: "debug", Access: "/var/log/apex/access.log", Format: "combined"},
		Backends: []Backend{
			{
				Name:    "app",
				Servers: []ServerAddr{{"10.0.0.1:9000", 3}, {"app-2.internal:9000", 1}},
				Conns:   32,
				Queue:   128, Pipeline: 1,
				Splice:          new(bool),
				Owner:           "loop",
				ConnectTimeout:  Duration(250 * time.Millisecond),
				ResponseTimeout: Duration(15 * time.Second),
				IdleTimeout:     Duration(45 * time.Second),
				Balance:         "hash",
				HashKey:         HashKey{Kind: HashKeyHeader, Name: "x-user"},
				Health: Health{
					Path:     "/healthz?deep=1",
					Interval: Duration(2 * time.Second),
					Timeout:  Duration(2 * time.Second),
					Rise:     5,
					Fall:     1,
				},
				Circuit: Circuit{
					ConsecutiveFailures: 10,
					FailureRatio:        0.25,
					Window:              Duration(30 * time.Second),
					MinRequests:         100,
					CoolDown:            Duration(time.Minute),
					HalfOpenTrials:      1,
				},
				Limits: Limits{
					Adaptive:     false,
					MinLimit:     1,
					MaxLimit:     64,
					Queue:        1024,
					QueueTimeout: Duration(time.Second),
					ShedStatus:   429,
				},
				Retry: Retry{Attempts: 3, Budget: 0},
			},
			{
				Name:    "static.v2",
				Servers: []ServerAddr{{"[fd00::1]:80", 1}},
				Conns:   16,
				Queue:   64, Pipeline: 1,
				Owner:           "loop",
				ConnectTimeout:  Duration(5 * time.Second),
				ResponseTimeout: Duration(60 * time.Second),
				IdleTimeout:     Duration(60 * time.Second),
				Balance:         "p2c",
				Health:          wantHealth,
				Circuit:         wantCircuit,
				Limits:          wantLimits,
				Retry:           wantRetry,
			},
		},
		Routes: []Route{
			{Host: "api.example.test", PathPrefix: "/v1/", Backend: "app"},
			{Host: "[fd00::2]", PathPrefix: "/", Backend: "static.v2"},
			{PathPrefix: "/healthz", Return: 200, Body: "ok\n"},
			{PathPrefix: "/", Return: 404},
		},
	}
}

func TestParseFull(t *testing.T) {
	c, err := Parse("full.toml", []byte(full))
	if err != nil {
		t.Fatal(err)
	}
	if want := fullConfig("full.toml"); !reflect.DeepEqual(c, want) {
		t.Errorf("Parse:\n got  %+v\n want %+v", c, want)
	}
}

func TestListenForms(t *testing.T) {
	for _, tt := range []struct {
		listen string
		want   []string
	}{
		{`"127.0.0.1:8080"`, []string{"127.0.0.1:8080"}},
		{`["127.0.0.1:8080"]`, []string{"127.0.0.1:8080"}},
		{`["localhost:80", "[::1]:80", "0.0.0.0:443"]`, []string{"localhost:80", "[::1]:80", "0.0.0.0:443"}},
		{`":8080"`, []string{":8080"}},
	} {
		c, err := Parse("apex.toml", []byte(withTail(`[server]`, `listen = `+tt.listen)))
		if err != nil {
			t.Errorf("listen = %s: %v", tt.listen, err)
			continue
		}
		if !reflect.DeepEqual(c.Server.Listen, tt.want) {
			t.Errorf("listen = %s: got %q, want %q", tt.listen, c.Server.Listen, tt.want)
		}
	}
}

func TestRouteHost(t *testing.T) {
	for _, tt := range []struct{ host, want string }{
		{"", ""},
		{"example.test", "example.test"},
		{"Example.TEST", "example.test"},
		{"example.test:8080", "example.test"},
		{"127.0.0.1:80", "127.0.0.1"},
		{"[::1]", "[::1]"},
		{"[::1]:8080", "[::1]"},
		{"my_host-1.internal", "my_host-1.internal"},
	} {
		c, err := Parse("apex.toml", []byte(withTail(`[[route]]`, `host = "`+tt.host+`"`, `backend = "app"`)))
		if err != nil {
			t.Errorf("host %q: %v", tt.host, err)
			continue
		}
		if got := c.Routes[0].Host; got != tt.want {
			t.Errorf("host %q: got %q, want %q", tt.host, got, tt.want)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	minimal, err := Parse("minimal.toml", []byte(minimalTOML))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Config{Default(), fullConfig("full.toml"), minimal} {
		t.Run(c.Source, func(t *testing.T) {
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
			again, err := back.TOML()
			if err != nil {
				t.Fatal(err)
			}
			if string(again) != string(text) {
				t.Errorf("TOML is not stable:\n%s\nthen\n%s", text, again)
			}
		})
	}
}

func TestTOMLWritesDefaults(t *testing.T) {
	text, err := Default().TOML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"header_timeout = '10s'",
		"max_header_bytes = 32768",
		"output_buffer = 262144",
		"level = 'info'",
		"[[route]]",
		"return = 200",
	} {
		if !strings.Contains(string(text), want) {
			t.Errorf("TOML() lacks %q:\n%s", want, text)
		}
	}
}

func TestDefault(t *testing.T) {
	c := Default()
	if c.Source != "<default>" {
		t.Errorf("Source = %q, want <default>", c.Source)
	}
	if !reflect.DeepEqual(c.Server.Listen, []string{"127.0.0.1:8080"}) {
		t.Errorf("Listen = %q", c.Server.Listen)
	}
	if len(c.Backends) != 0 {
		t.Errorf("Backends = %+v, want none", c.Backends)
	}
	if len(c.Routes) != 1 {
		t.Fatalf("Routes = %+v, want one", c.Routes)
	}
	r := c.Routes[0]
	if r.Host != "" || r.PathPrefix != "/" || r.Backend != "" || r.Return != 200 ||
		!strings.HasPrefix(r.Body, "Apex is running.") || !strings.HasSuffix(r.Body, "\n") {
		t.Errorf("route = %+v", r)
	}
	// Each call returns a fresh Config: changing one must not change
	// the next.
	c.Server.Listen[0] = "changed"
	c.Routes[0].Return = 500
	if d := Default(); d.Server.Listen[0] != "127.0.0.1:8080" || d.Routes[0].Return != 200 {
		t.Errorf("Default shares state between calls: %+v", d)
	}
}

func TestApplyDefaults(t *testing.T) {
	c := &Config{
		Source:   "minimal.toml",
		Backends: []Backend{{Name: "app", Servers: []ServerAddr{{Addr: "127.0.0.1:9000"}}}},
		Routes:   []Route{{Host: "example.test", Backend: "app"}},
	}
	c.ApplyDefaults()
	want, err := Parse("minimal.toml", []byte(minimalTOML))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("ApplyDefaults:\n got  %+v\n want %+v", c, want)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "apex.toml")
	if err := os.WriteFile(path, []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := fullConfig(path); !reflect.DeepEqual(c, want) {
		t.Errorf("Load:\n got  %+v\n want %+v", c, want)
	}

	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[server]\nloops = \"x\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bad); err == nil || !strings.HasPrefix(err.Error(), bad+":2: server.loops: ") {
		t.Errorf("Load(bad) = %v, want an error at %s:2", err, bad)
	}

	if _, err := Load(filepath.Join(dir, "missing.toml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestDurationText(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "10s", want: 10 * time.Second},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "1m30s", want: 90 * time.Second},
		{in: "1h", want: time.Hour},
		{in: "", err: `invalid duration "" (want e.g. "10s", "250ms" or "1m30s")`},
		{in: "10", err: `invalid duration "10" (want e.g. "10s", "250ms" or "1m30s")`},
		{in: "0s", err: `duration "0s" must be positive`},
		{in: "-5m", err: `duration "-5m" must be positive`},
	} {
		var d Duration
		err := d.UnmarshalText([]byte(tt.in))
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("UnmarshalText(%q) = %v, want error %s", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || d.D() != tt.want {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", tt.in, d.D(), err, tt.want)
			continue
		}
		text, err := d.MarshalText()
		if err != nil || string(text) != tt.want.String() || d.String() != tt.want.String() {
			t.Errorf("MarshalText(%v) = %q, %v", d.D(), text, err)
		}
	}
}

func TestServerAddrText(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want ServerAddr
		text string
	}{
		{"127.0.0.1:9000", ServerAddr{"127.0.0.1:9000", 1}, "127.0.0.1:9000"},
		{"  app:80   weight=7 ", ServerAddr{"app:80", 7}, "app:80 weight=7"},
		{"[::1]:80 weight=1", ServerAddr{"[::1]:80", 1}, "[::1]:80"},
	} {
		var s ServerAddr
		if err := s.UnmarshalText([]byte(tt.in)); err != nil || s != tt.want {
			t.Errorf("UnmarshalText(%q) = %+v, %v; want %+v", tt.in, s, err, tt.want)
		}
		if text, err := tt.want.MarshalText(); err != nil || string(text) != tt.text {
			t.Errorf("MarshalText(%+v) = %q, %v; want %q", tt.want, text, err, tt.text)
		}
	}
	var s ServerAddr
	if err := s.UnmarshalText([]byte("app")); err == nil || err.Error() != `invalid address "app": missing port` {
		t.Errorf(`UnmarshalText("app") = %v`, err)
	}
}

// FuzzParse checks that Parse never panics, that an error names its
// file, line and (mostly) key, and that whatever Parse accepts survives a
// round trip through TOML.
func FuzzParse(f *testing.F) {
	f.Add(full)
	f.Add(minimalTOML)
	f.Add(string(defaultTOML))
	f.Add(withTail(`[server]`, `listen = [`, `  "127.0.0.1:8080"`, `  "x"]`))
	f.Add(doc(`x = {a = 1, b = }`))
	f.Add(doc(`[[backend]`, `name = 1`))
	f.Add("[server]\r\nloops = 1\r\nloops = 2\r\n")
	f.Add(doc(`[[backend]]`, `name = "a"`, `servers = ["h:1", {addr = "h:2", weight = 2}]`, `balance = "hash"`,
		`hash_key = "cookie:sid"`, `limits = {adaptive = false}`, `retry.budget = 0.0`, `[[route]]`, `backend = "a"`))
	f.Add(doc(`[[backend]]`, `name = "a"`, `[[backend.servers]]`, `addr = "h:1"`, `[backend.health]`, `interval = "150ms"`,
		`[backend.circuit]`, `failure_ratio = 1e-3`, `[[route]]`, `backend = "a"`))
	f.Fuzz(func(t *testing.T, text string) {
		c, err := Parse("f.toml", []byte(text))
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v is not an *Error", err, err)
			}
			if e.File != "f.toml" || e.Line < 1 || e.Line > strings.Count(text, "\n")+1 {
				t.Fatalf("bad position in %v", err)
			}
			return
		}
		out, err := c.TOML()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse("f.toml", out)
		if err != nil {
			t.Fatalf("Parse(TOML()): %v\n%s", err, out)
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip changed the config:\n got  %+v\n want %+v", back, c)
		}
	})
}

func TestSpliceDefaultsOn(t *testing.T) {
	c, err := Parse("minimal.toml", []byte(minimalTOML))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Backends[0].SpliceOn() {
		t.Error("splice is off by default")
	}
	if full := fullConfig("full.toml"); full.Backends[0].SpliceOn() {
		t.Error("splice = false left splicing on")
	}
}
