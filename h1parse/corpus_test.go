package h1parse

import "strings"

// Shared test corpora: the policy tables, the hostile corpus, and chunked
// bodies. They drive the table tests, the split-equivalence tests and the
// fuzz seeds.

type reqCase struct {
	name   string
	in     string
	status int // 0: success; -1: ErrNeedMore; else the *Error Status
	lim    *Limits
}

type respCase struct {
	name   string
	in     string
	status int // 0: success; -1: ErrNeedMore; else 502
	lim    *Limits
}

type chunkCase struct {
	name    string
	in      string
	status  int    // 0: done without error; -1: not done, no error; else 400
	payload string // decoded payload (before the error, if any)
	trailer string
}

const (
	ok       = 0
	needMore = -1
)

func get(fields string) string { return "GET / HTTP/1.1\r\nHost: a\r\n" + fields + "\r\n" }
func post(fields string) string {
	return "POST /p HTTP/1.1\r\nHost: a\r\n" + fields + "\r\n"
}

var smallLim = &Limits{MaxRequestLine: 32, MaxHeaderBytes: 128, MaxFields: 4}

func manyFields(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("X-F")
		b.WriteByte(byte('a' + i%26))
		b.WriteString(": v\r\n")
	}
	return b.String()
}

func manyConnOptions(n int) string {
	var b strings.Builder
	b.WriteString("Connection: ")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("x-opt")
		b.WriteByte(byte('a' + i))
	}
	b.WriteString("\r\n")
	return b.String()
}

// policyRequests covers every refusal of the Policy section of the contract
// plus the valid cases it names. Field-level checks of valid cases are in
// reqChecks.
var policyRequests = []reqCase{
	// --- valid ---
	{name: "get with query", in: "GET /search?q=a+b&x=%20 HTTP/1.1\r\nHost: example.com\r\n\r\n"},
	{name: "absolute-form http", in: "GET http://example.com:8080/a?b HTTP/1.1\r\nHost: example.com:8080\r\n\r\n"},
	{name: "absolute-form https no path", in: "GET HTTPS://Example.com HTTP/1.1\r\nHost: example.com\r\n\r\n"},
	{name: "absolute-form query only", in: "GET http://example.com?x HTTP/1.1\r\nHost: example.com\r\n\r\n"},
	{name: "options asterisk", in: "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"},
	{name: "options origin", in: "OPTIONS /x HTTP/1.1\r\nHost: a\r\n\r\n"},
	{name: "connect authority-form", in: "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"},
	{name: "connect ipv6", in: "CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n"},
	{name: "http/1.0 without host", in: "GET / HTTP/1.0\r\n\r\n"},
	{name: "http/1.0 keep-alive", in: "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"},
	{name: "http/1.0 close", in: "GET / HTTP/1.0\r\nConnection: close\r\n\r\n"},
	{name: "http/1.1 close", in: get("Connection: close\r\n")},
	{name: "http/1.1 keep-alive default", in: get("")},
	{name: "http/1.2 treated as 1.1", in: "GET / HTTP/1.2\r\nHost: a\r\n\r\n"},
	{name: "chunked post", in: post("Transfer-Encoding: chunked\r\n") + "5\r\nhello\r\n0\r\n\r\n"},
	{name: "chunked uppercase", in: post("Transfer-Encoding: CHUNKED\r\n")},
	{name: "chunked empty list elements", in: post("Transfer-Encoding: , chunked ,\r\n")},
	{name: "content-length post", in: post("Content-Length: 5\r\n") + "hello"},
	{name: "content-length zero", in: post("Content-Length: 0\r\n")},
	{name: "content-length ows", in: post("Content-Length: \t 12 \t\r\n")},
	{name: "content-length 18 digits", in: post("Content-Length: 999999999999999999\r\n")},
	{name: "expect 100-continue", in: post("Content-Length: 5\r\nExpect: 100-Continue\r\n")},
	{name: "connection custom hop-by-hop", in: get("Connection: X-Secret, keep-alive\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nConnection: x-other\r\n")},
	{name: "connection 16 options", in: get(manyConnOptions(16))},
	{name: "upgrade", in: get("Connection: Upgrade\r\nUpgrade: websocket\r\n")},
	{name: "http/1.0 expect and upgrade ignored", in: "POST / HTTP/1.0\r\nExpect: 100-continue\r\nUpgrade: websocket\r\nContent-Length: 1\r\n\r\n"},
	{name: "obs-text in value", in: get("X-Name: caf\xc3\xa9 \xff\x80\r\n")},
	{name: "leading crlf", in: "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"},
	{name: "two leading crlf", in: "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"},
	{name: "empty host", in: "GET / HTTP/1.1\r\nHost:\r\n\r\n"},
	{name: "host ipv4 port", in: "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"},
	{name: "host ipv6", in: "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"},
	{name: "host pct-encoded", in: "GET / HTTP/1.1\r\nHost: ex%41mple.com\r\n\r\n"},
	{name: "empty value and ows", in: get("X-Empty:\r\nX-Ows: \t v  w \t\r\nX-Tight:v\r\n")},
	{name: "field name case preserved", in: get("x-LoWeR-uPPer: v\r\n")},
	{name: "method token", in: "M-SEARCH! /x HTTP/1.1\r\nHost: a\r\n\r\n"},
	{name: "target odd but allowed chars", in: "GET /a|b{c}\"d\"<e>^`[f] HTTP/1.1\r\nHost: a\r\n\r\n"},
	{name: "trailing bytes after head", in: get("") + "GET / HTTP/1.1\r\n"},
	{name: "request line at limit", in: "GET /" + strings.Repeat("a", 18) + " HTTP/1.1\r\nHost: a\r\n\r\n", lim: smallLim},
	{name: "fields at limit", in: "GET / HTTP/1.1\r\nHost: a\r\n" + manyFields(3) + "\r\n", lim: smallLim},
	{name: "head at limit", in: "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("v", 128-32) + "\r\n\r\n", lim: smallLim},
	{name: "incomplete", in: "GET / HTTP/1.1\r\nHost: a\r\n", status: needMore},
	{name: "incomplete request line", in: "GET / HTTP/1.1", status: needMore},
	{name: "empty", in: "", status: needMore},

	// --- 400: framing ---
	{name: "cl with te", in: post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"), status: 400},
	{name: "te with cl", in: post("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"), status: 400},
	{name: "two cl same", in: post("Content-Length: 5\r\nContent-Length: 5\r\n"), status: 400},
	{name: "two cl different", in: post("Content-Length: 5\r\nContent-Length: 6\r\n"), status: 400},
	{name: "cl list same", in: post("Content-Length: 5, 5\r\n"), status: 400},
	{name: "cl list different", in: post("Content-Length: 5,6\r\n"), status: 400},
	{name: "cl plus", in: post("Content-Length: +5\r\n"), status: 400},
	{name: "cl minus", in: post("Content-Length: -1\r\n"), status: 400},
	{name: "cl trailing letter", in: post("Content-Length: 5a\r\n"), status: 400},
	{name: "cl inner space", in: post("Content-Length: 1 2\r\n"), status: 400},
	{name: "cl empty", in: post("Content-Length:\r\n"), status: 400},
	{name: "cl only ows", in: post("Content-Length:  \r\n"), status: 400},
	{name: "cl hex", in: post("Content-Length: 0x10\r\n"), status: 400},
	{name: "cl 19 digits", in: post("Content-Length: 1000000000000000000\r\n"), status: 400},
	{name: "cl overflow", in: post("Content-Length: 99999999999999999999999\r\n"), status: 400},
	{name: "te in http/1.0", in: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", status: 400},
	{name: "chunked twice one field", in: post("Transfer-Encoding: chunked, chunked\r\n"), status: 400},
	{name: "chunked twice two fields", in: post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), status: 400},
	{name: "te final not chunked", in: post("Transfer-Encoding: chunked, gzip\r\n"), status: 400},
	{name: "te final not chunked two fields", in: post("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n"), status: 400},
	{name: "te only gzip", in: post("Transfer-Encoding: gzip\r\n"), status: 400},
	{name: "te empty", in: post("Transfer-Encoding:\r\n"), status: 400},
	{name: "te only commas", in: post("Transfer-Encoding: , ,\r\n"), status: 400},
	{name: "te quoted", in: post("Transfer-Encoding: \"chunked\"\r\n"), status: 400},

	// --- 400: host ---
	{name: "http/1.1 without host", in: "GET / HTTP/1.1\r\n\r\n", status: 400},
	{name: "two hosts", in: "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", status: 400},
	{name: "two hosts case", in: "GET / HTTP/1.0\r\nHost: a\r\nhOST: b\r\n\r\n", status: 400},
	{name: "host space", in: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", status: 400},
	{name: "host slash", in: "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", status: 400},
	{name: "host at", in: "GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", status: 400},
	{name: "host backslash", in: "GET / HTTP/1.1\r\nHost: a\\b\r\n\r\n", status: 400},
	{name: "host question", in: "GET / HTTP/1.1\r\nHost: a?b\r\n\r\n", status: 400},
	{name: "host hash", in: "GET / HTTP/1.1\r\nHost: a#b\r\n\r\n", status: 400},
	{name: "host ctl", in: "GET / HTTP/1.1\r\nHost: a\x01b\r\n\r\n", status: 400},
	{name: "host tab inside", in: "GET / HTTP/1.1\r\nHost: a\tb\r\n\r\n", status: 400},
	{name: "host obs-text", in: "GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n", status: 400},
	{name: "host bad port", in: "GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", status: 400},
	{name: "host long port", in: "GET / HTTP/1.1\r\nHost: a:123456\r\n\r\n", status: 400},
	{name: "host two colons", in: "GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n", status: 400},
	{name: "host only port", in: "GET / HTTP/1.1\r\nHost: :80\r\n\r\n", status: 400},
	{name: "host unclosed bracket", in: "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", status: 400},
	{name: "host empty brackets", in: "GET / HTTP/1.1\r\nHost: []\r\n\r\n", status: 400},
	{name: "host bad ipv6", in: "GET / HTTP/1.1\r\nHost: [0000000]\r\n\r\n", status: 400},
	{name: "host ipv6 zone", in: "GET / HTTP/1.1\r\nHost: [fe80::1%25eth0]:80\r\n\r\n", status: 400},
	{name: "connect bad ipv6", in: "CONNECT [1:2]:443 HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "host bad pct", in: "GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", status: 400},

	// --- 400: field syntax ---
	{name: "space before colon", in: get("Content-Length : 5\r\n"), status: 400},
	{name: "tab before colon", in: get("X-A\t: 5\r\n"), status: 400},
	{name: "obs-fold space", in: get("X-A: a\r\n b\r\n"), status: 400},
	{name: "obs-fold tab", in: get("X-A: a\r\n\tb\r\n"), status: 400},
	{name: "space before first field", in: "GET / HTTP/1.1\r\n Host: a\r\n\r\n", status: 400},
	{name: "nul in value", in: get("X-A: a\x00b\r\n"), status: 400},
	{name: "bare cr in value", in: get("X-A: a\rb\r\n"), status: 400},
	{name: "bare cr end of value", in: get("X-A: ab\r\r\n"), status: 400},
	{name: "bare lf field line", in: "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", status: 400},
	{name: "bare lf final line", in: "GET / HTTP/1.1\r\nHost: a\r\n\n", status: 400},
	{name: "bare lf request line", in: "GET / HTTP/1.1\nHost: a\r\n\r\n", status: 400},
	{name: "ctl 0x01 in value", in: get("X-A: a\x01\r\n"), status: 400},
	{name: "ctl 0x0b in value", in: get("X-A: a\x0bb\r\n"), status: 400},
	{name: "ctl 0x1f in value", in: get("X-A: \x1f\r\n"), status: 400},
	{name: "esc in value", in: get("X-A: \x1b[31m\r\n"), status: 400},
	{name: "del in value", in: get("X-A: a\x7fb\r\n"), status: 400},
	{name: "empty field name", in: get(": v\r\n"), status: 400},
	{name: "field name at", in: get("X@Y: v\r\n"), status: 400},
	{name: "field name paren", in: get("X(Y): v\r\n"), status: 400},
	{name: "field name quote", in: get("X\"Y: v\r\n"), status: 400},
	{name: "field name slash", in: get("X/Y: v\r\n"), status: 400},
	{name: "field name obs-text", in: get("X\xc3\xa9: v\r\n"), status: 400},
	{name: "field name nul", in: get("X\x00: v\r\n"), status: 400},
	{name: "field without colon", in: get("X-A\r\n"), status: 400},
	{name: "field name with space", in: get("X A: v\r\n"), status: 400},

	// --- 400: request line ---
	{name: "bad method paren", in: "GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "bad method at", in: "G@T / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "bad method nul", in: "G\x00T / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "bad method tab", in: "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "target relative", in: "GET a HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "target asterisk with get", in: "GET * HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "target asterisk suffix", in: "OPTIONS *x HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "target authority with get", in: "GET example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "connect origin-form", in: "CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "connect without port", in: "CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "connect empty port", in: "CONNECT example.com: HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "connect absolute", in: "CONNECT http://example.com:80/ HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "absolute ftp", in: "GET ftp://example.com/ HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "absolute no authority", in: "GET http:// HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "absolute empty authority", in: "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "absolute userinfo", in: "GET http://u:p@example.com/ HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "absolute single slash", in: "GET http:/example.com/ HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "target fragment", in: "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "target backslash", in: "GET /a\\..\\b HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "target ctl", in: "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "target tab", in: "GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "target del", in: "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "target obs-text", in: "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "target nul", in: "GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "double sp after method", in: "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "double sp before version", in: "GET /  HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "leading sp", in: " GET / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "trailing sp", in: "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", status: 400},
	{name: "missing version", in: "GET /\r\nHost: a\r\n\r\n", status: 400},
	{name: "extra token", in: "GET / x HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "only empty lines", in: "\r\n\r\n", status: needMore},
	{name: "lowercase version", in: "GET / http/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "version two digit minor", in: "GET / HTTP/1.10\r\nHost: a\r\n\r\n", status: 400},
	{name: "version no minor", in: "GET / HTTP/1\r\nHost: a\r\n\r\n", status: 400},
	{name: "version letters", in: "GET / HTTP/a.b\r\nHost: a\r\n\r\n", status: 400},
	{name: "version two digit major", in: "GET / HTTP/11.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "bare cr before request line", in: "\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "bare lf before request line", in: "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "too many connection options", in: get(manyConnOptions(17)), status: 400},

	// --- 501 ---
	{name: "te gzip chunked", in: post("Transfer-Encoding: gzip, chunked\r\n"), status: 501},
	{name: "te gzip then chunked fields", in: post("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"), status: 501},
	{name: "te unknown chunked", in: post("Transfer-Encoding: foo, chunked\r\n"), status: 501},
	{name: "te identity chunked", in: post("Transfer-Encoding: identity, chunked\r\n"), status: 501},
	{name: "te param chunked", in: post("Transfer-Encoding: foo;q=1, chunked\r\n"), status: 501},

	// --- 505 ---
	{name: "http/2.0", in: "GET / HTTP/2.0\r\nHost: a\r\n\r\n", status: 505},
	{name: "http/0.9", in: "GET / HTTP/0.9\r\n\r\n", status: 505},
	{name: "http/3.0", in: "GET / HTTP/3.0\r\nHost: a\r\n\r\n", status: 505},
	{name: "h2 preface", in: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", status: 505},

	// --- 414 / 431 ---
	{name: "request line over limit", in: "GET /" + strings.Repeat("a", 19) + " HTTP/1.1\r\nHost: a\r\n\r\n", lim: smallLim, status: 414},
	{name: "request line over limit no crlf", in: "GET /" + strings.Repeat("a", 40), lim: smallLim, status: 414},
	{name: "request line over default", in: "GET /" + strings.Repeat("a", DefaultMaxRequestLine) + " HTTP/1.1\r\n", status: 414},
	{name: "head over limit", in: "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("v", 128-31) + "\r\n\r\n", lim: smallLim, status: 431},
	{name: "head over limit unfinished", in: "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("v", 200), lim: smallLim, status: 431},
	{name: "head over default", in: "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X-Long: "+strings.Repeat("v", 1000)+"\r\n", 33), status: 431},
	{name: "too many fields", in: "GET / HTTP/1.1\r\nHost: a\r\n" + manyFields(4) + "\r\n", lim: smallLim, status: 431},
	{name: "too many fields default", in: "GET / HTTP/1.1\r\nHost: a\r\n" + manyFields(100) + "\r\n", status: 431},
	{name: "leading crlf over head limit", in: strings.Repeat("\r\n", 70) + "GET / HTTP/1.1\r\n", lim: smallLim, status: 431},
}

// hostileRequests is the smuggling / robustness corpus.
var hostileRequests = []reqCase{
	{name: "CL.TE", in: post("Content-Length: 6\r\nTransfer-Encoding: chunked\r\n") + "0\r\n\r\nG", status: 400},
	{name: "TE.CL", in: post("Transfer-Encoding: chunked\r\nContent-Length: 4\r\n") + "5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n", status: 400},
	{name: "CL.CL same", in: post("Content-Length: 5\r\nContent-Length: 5\r\n"), status: 400},
	{name: "CL.CL different", in: post("Content-Length: 5\r\nContent-Length: 50\r\n"), status: 400},
	{name: "CL list", in: post("Content-Length: 5, 5\r\n"), status: 400},
	{name: "CL leading zero ok", in: post("Content-Length: 005\r\n")},
	{name: "TE chunked, chunked", in: post("Transfer-Encoding: chunked, chunked\r\n"), status: 400},
	{name: "TE xchunked", in: post("Transfer-Encoding: xchunked\r\n"), status: 400},
	{name: "TE chunkedx", in: post("Transfer-Encoding: chunkedx\r\n"), status: 400},
	{name: "TE chunk", in: post("Transfer-Encoding: chunk\r\n"), status: 400},
	{name: "TE chunked;", in: post("Transfer-Encoding: chunked;\r\n"), status: 400},
	{name: "TE chunked;x=1", in: post("Transfer-Encoding: chunked;x=1\r\n"), status: 400},
	{name: "TE leading sp ok", in: post("Transfer-Encoding:  chunked\r\n")},
	{name: "TE leading tab ok", in: post("Transfer-Encoding:\tchunked\r\n")},
	{name: "TE trailing ows ok", in: post("Transfer-Encoding: chunked \t\r\n")},
	{name: "TE no space ok", in: post("Transfer-Encoding:chunked\r\n")},
	{name: "TE vtab", in: post("Transfer-Encoding:\x0bchunked\r\n"), status: 400},
	{name: "TE formfeed", in: post("Transfer-Encoding: \x0cchunked\r\n"), status: 400},
	{name: "TE nul", in: post("Transfer-Encoding: chunked\x00\r\n"), status: 400},
	{name: "TE cr", in: post("Transfer-Encoding: chunked\r\r\n"), status: 400},
	{name: "TE space colon", in: post("Transfer-Encoding : chunked\r\n"), status: 400},
	{name: "TE tab colon", in: post("Transfer-Encoding\t: chunked\r\n"), status: 400},
	{name: "TE leading space line", in: post(" Transfer-Encoding: chunked\r\n"), status: 400},
	{name: "TE obs-fold value", in: post("Transfer-Encoding:\r\n chunked\r\n"), status: 400},
	{name: "TE obs-fold after other", in: post("X-A: b\r\n Transfer-Encoding: chunked\r\n"), status: 400},
	{name: "TE obs-fold tab", in: post("Transfer-Encoding: gzip,\r\n\tchunked\r\n"), status: 400},
	{name: "TE in 1.0", in: "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", status: 400},
	{name: "TE in 1.0 with CL", in: "POST / HTTP/1.0\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", status: 400},
	{name: "TE identity", in: post("Transfer-Encoding: identity\r\n"), status: 400},
	{name: "TE chunked, identity", in: post("Transfer-Encoding: chunked, identity\r\n"), status: 400},
	{name: "TE underscore name", in: post("Transfer_Encoding: chunked\r\n")},
	{name: "TE unicode k", in: post("Transfer-Encoding: chun\xe2\x84\xaaed\r\n"), status: 400},
	{name: "CL space colon", in: post("Content-Length : 5\r\n"), status: 400},
	{name: "CL obs-fold", in: post("Content-Length:\r\n 5\r\n"), status: 400},
	{name: "CL plus", in: post("Content-Length: +5\r\n"), status: 400},
	{name: "CL negative", in: post("Content-Length: -5\r\n"), status: 400},
	{name: "CL 0x", in: post("Content-Length: 0x5\r\n"), status: 400},
	{name: "CL overflow int64", in: post("Content-Length: 9223372036854775808\r\n"), status: 400},
	{name: "CL unicode digit", in: post("Content-Length: \xd9\xa5\r\n"), status: 400},
	{name: "bare CR in request line", in: "GET / HTTP/1.1\rHost: a\r\n\r\n", status: 400},
	{name: "bare CR line ending", in: "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", status: 400},
	{name: "bare LF only", in: "GET / HTTP/1.1\nHost: a\n\n", status: 400},
	{name: "LF in middle", in: get("X-A: a\nTransfer-Encoding: chunked\r\n"), status: 400},
	{name: "NUL in name", in: get("Transfer-Encoding\x00: chunked\r\n"), status: 400},
	{name: "NUL in target", in: "GET /\x00/admin HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "NUL in value", in: get("X-A: \x00\r\n"), status: 400},
	{name: "NUL in host", in: "GET / HTTP/1.1\r\nHost: a\x00.b\r\n\r\n", status: 400},
	{name: "two hosts", in: "GET / HTTP/1.1\r\nHost: a\r\nHost: evil\r\n\r\n", status: 400},
	{name: "host with path", in: "GET / HTTP/1.1\r\nHost: a/../evil\r\n\r\n", status: 400},
	{name: "absolute userinfo", in: "GET http://a@evil/ HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "request line over limit", in: "GET /" + strings.Repeat("%41", 30) + " HTTP/1.1\r\nHost: a\r\n\r\n", lim: smallLim, status: 414},
	{name: "field over head limit", in: get("Cookie: " + strings.Repeat("c", 200) + "\r\n"), lim: smallLim, status: 431},
	{name: "too many fields", in: get(manyFields(10)), lim: smallLim, status: 431},
	{name: "many empty connection elements", in: get("Connection: ,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,\r\n")},
	{name: "header injection via obs-fold", in: get("X-A: a\r\n\r\n\r\n")},
	{name: "pipelined smuggle text", in: get("Content-Length: 0\r\n") + "GET /admin HTTP/1.1\r\nHost: a\r\n\r\n"},
	{name: "http/1.1 in target", in: "GET / HTTP/1.1 HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "h2c preface", in: "PRI * HTTP/2.0\r\n\r\n", status: 505},
	{name: "connection nominates framing", in: post("Connection: Content-Length, Host, X-Forwarded-For\r\nContent-Length: 5\r\n") + "GET /"},
}

var policyResponses = []respCase{
	// --- valid ---
	{name: "200 ok cl", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"},
	{name: "empty reason with sp", in: "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n"},
	{name: "empty reason without sp", in: "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"},
	{name: "reason with spaces and obs-text", in: "HTTP/1.1 404 Not \xc3\xa9 Found\t\r\n\r\n"},
	{name: "chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"},
	{name: "until close", in: "HTTP/1.1 200 OK\r\n\r\n"},
	{name: "1.0 close", in: "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n"},
	{name: "1.0 keep-alive", in: "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\n"},
	{name: "1.1 close", in: "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"},
	{name: "100 continue", in: "HTTP/1.1 100 Continue\r\n\r\n"},
	{name: "101 switching", in: "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"},
	{name: "204", in: "HTTP/1.1 204 No Content\r\n\r\n"},
	{name: "304 with cl", in: "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"},
	{name: "999", in: "HTTP/1.1 999 Odd\r\n\r\n"},
	{name: "set-cookie fields", in: "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n"},
	{name: "incomplete", in: "HTTP/1.1 200 OK\r\n", status: needMore},

	// --- 502 ---
	{name: "leading crlf", in: "\r\nHTTP/1.1 200 OK\r\n\r\n", status: 502},
	{name: "two digit status", in: "HTTP/1.1 20 OK\r\n\r\n", status: 502},
	{name: "four digit status", in: "HTTP/1.1 2000 OK\r\n\r\n", status: 502},
	{name: "status 099", in: "HTTP/1.1 099 x\r\n\r\n", status: 502},
	{name: "status letters", in: "HTTP/1.1 2x0 OK\r\n\r\n", status: 502},
	{name: "double sp", in: "HTTP/1.1  200 OK\r\n\r\n", status: 502},
	{name: "no sp before reason", in: "HTTP/1.1 200OK\r\n\r\n", status: 502},
	{name: "lowercase version", in: "http/1.1 200 OK\r\n\r\n", status: 502},
	{name: "http/2.0", in: "HTTP/2.0 200 OK\r\n\r\n", status: 502},
	{name: "http/1.10", in: "HTTP/1.10 200 OK\r\n\r\n", status: 502},
	{name: "reason ctl", in: "HTTP/1.1 200 O\x01K\r\n\r\n", status: 502},
	{name: "reason nul", in: "HTTP/1.1 200 O\x00K\r\n\r\n", status: 502},
	{name: "reason bare cr", in: "HTTP/1.1 200 O\rK\r\n\r\n", status: 502},
	{name: "bare lf", in: "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", status: 502},
	{name: "cl with te", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", status: 502},
	{name: "two cl", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", status: 502},
	{name: "cl list", in: "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", status: 502},
	{name: "cl invalid", in: "HTTP/1.1 200 OK\r\nContent-Length: 5a\r\n\r\n", status: 502},
	{name: "te gzip", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", status: 502},
	{name: "te gzip chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", status: 502},
	{name: "te chunked twice", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", status: 502},
	{name: "te in 1.0", in: "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", status: 502},
	{name: "obs-fold", in: "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\n\r\n", status: 502},
	{name: "space before colon", in: "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n", status: 502},
	{name: "nul in value", in: "HTTP/1.1 200 OK\r\nX-A: \x00\r\n\r\n", status: 502},
	{name: "del in value", in: "HTTP/1.1 200 OK\r\nX-A: \x7f\r\n\r\n", status: 502},
	{name: "bad field name", in: "HTTP/1.1 200 OK\r\nX[A]: b\r\n\r\n", status: 502},
	{name: "status line too long", in: "HTTP/1.1 200 " + strings.Repeat("r", 40) + "\r\n\r\n", lim: smallLim, status: 502},
	{name: "head too large", in: "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("v", 200) + "\r\n\r\n", lim: smallLim, status: 502},
	{name: "too many fields", in: "HTTP/1.1 200 OK\r\n" + manyFields(5) + "\r\n", lim: smallLim, status: 502},
	{name: "too many connection options", in: "HTTP/1.1 200 OK\r\n" + manyConnOptions(17) + "\r\n", status: 502},
	{name: "http/0.9 style", in: "<html>\r\n\r\n", status: 502},
}

var chunkCases = []chunkCase{
	// --- valid ---
	{name: "empty body", in: "0\r\n\r\n"},
	{name: "one chunk", in: "5\r\nhello\r\n0\r\n\r\n", payload: "hello"},
	{name: "two chunks", in: "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", payload: "hello world"},
	{name: "uppercase hex", in: "A\r\n0123456789\r\n0\r\n\r\n", payload: "0123456789"},
	{name: "mixed hex", in: "1a\r\n" + strings.Repeat("x", 26) + "\r\n0\r\n\r\n", payload: strings.Repeat("x", 26)},
	{name: "leading zeros", in: "0005\r\nhello\r\n000\r\n\r\n", payload: "hello"},
	{name: "15 digits", in: "000000000000005\r\nhello\r\n0\r\n\r\n", payload: "hello"},
	{name: "ext name", in: "5;a\r\nhello\r\n0\r\n\r\n", payload: "hello"},
	{name: "ext name value", in: "5;a=b\r\nhello\r\n0\r\n\r\n", payload: "hello"},
	{name: "ext quoted", in: "5;a=\"b c;d=e\"\r\nhello\r\n0\r\n\r\n", payload: "hello"},
	{name: "ext quoted pair", in: "5;a=\"q\\\"x\\\\\"\r\nhello\r\n0\r\n\r\n", payload: "hello"},
	{name: "ext several", in: "5;a;b=c;d=\"e\"\r\nhello\r\n0;last=1\r\n\r\n", payload: "hello"},
	{name: "ext at limit", in: "1;" + strings.Repeat("e", MaxChunkExt-1) + "\r\nx\r\n0\r\n\r\n", payload: "x"},
	{name: "trailer", in: "5\r\nhello\r\n0\r\nX-Sum: abc\r\nX-Other:  v \r\n\r\n", payload: "hello", trailer: "X-Sum: abc\r\nX-Other:  v \r\n"},
	{name: "trailer obs-text", in: "0\r\nX: \xff\r\n\r\n", trailer: "X: \xff\r\n"},
	{name: "trailer at limit", in: "0\r\nX: " + strings.Repeat("t", MaxTrailer-5) + "\r\n\r\n", trailer: "X: " + strings.Repeat("t", MaxTrailer-5) + "\r\n"},
	{name: "trailing bytes ignored", in: "1\r\na\r\n0\r\n\r\nGET / HTTP/1.1\r\n", payload: "a"},
	{name: "unfinished data", in: "fffffffffffffff\r\nab", status: needMore, payload: "ab"},
	{name: "unfinished size", in: "5\r\nhello\r\n1", status: needMore, payload: "hello"},
	{name: "unfinished trailer", in: "0\r\nX: y", status: needMore},
	{name: "unfinished final cr", in: "0\r\n\r", status: needMore},

	// --- invalid ---
	{name: "size 0x10", in: "0x10\r\n" + strings.Repeat("a", 16) + "\r\n0\r\n\r\n", status: 400},
	{name: "size -1", in: "-1\r\na\r\n0\r\n\r\n", status: 400},
	{name: "size +1", in: "+1\r\na\r\n0\r\n\r\n", status: 400},
	{name: "size overflow 17", in: "fffffffffffffffff\r\n", status: 400},
	{name: "size overflow 16 zeros", in: "0000000000000001\r\na\r\n0\r\n\r\n", status: 400},
	{name: "size overflow wrap", in: "10000000000000000000000000000000005\r\nhello\r\n0\r\n\r\n", status: 400},
	{name: "size space ext", in: "1 ;ext\r\na\r\n0\r\n\r\n", status: 400},
	{name: "size trailing space", in: "1 \r\na\r\n0\r\n\r\n", status: 400},
	{name: "size trailing tab", in: "1\t\r\na\r\n0\r\n\r\n", status: 400},
	{name: "size leading space", in: " 1\r\na\r\n0\r\n\r\n", status: 400},
	{name: "ext space after semicolon", in: "1; ext\r\na\r\n0\r\n\r\n", status: 400},
	{name: "ext space before equals", in: "1;a =b\r\na\r\n0\r\n\r\n", status: 400},
	{name: "ext empty", in: "1;\r\na\r\n0\r\n\r\n", status: 400},
	{name: "ext empty name", in: "1;=b\r\na\r\n0\r\n\r\n", status: 400},
	{name: "ext empty value", in: "1;a=\r\na\r\n0\r\n\r\n", status: 400},
	{name: "ext double equals", in: "1;a=b=c\r\na\r\n0\r\n\r\n", status: 400},
	{name: "ext after quote", in: "1;a=\"b\"c\r\na\r\n0\r\n\r\n", status: 400},
	{name: "ext unterminated quote", in: "1;a=\"b\r\na\r\n0\r\n\r\n", status: 400},
	{name: "ext nul", in: "1;a\x00\r\na\r\n0\r\n\r\n", status: 400},
	{name: "ext too long", in: "1;" + strings.Repeat("e", MaxChunkExt) + "\r\nx\r\n0\r\n\r\n", status: 400},
	{name: "empty size", in: "\r\na\r\n0\r\n\r\n", status: 400},
	{name: "size not hex", in: "g\r\na\r\n0\r\n\r\n", status: 400},
	{name: "size bare lf", in: "1\na\r\n0\r\n\r\n", status: 400},
	{name: "size bare cr", in: "1\ra\r\n0\r\n\r\n", status: 400},
	{name: "size cr cr lf", in: "1\r\r\na\r\n0\r\n\r\n", status: 400},
	{name: "data not followed by crlf", in: "5\r\nhelloX\r\n0\r\n\r\n", status: 400, payload: "hello"},
	{name: "data too short", in: "5\r\nhell\r\n0\r\n\r\n", status: 400, payload: "hell\r"},
	{name: "data bare lf", in: "5\r\nhello\n0\r\n\r\n", status: 400, payload: "hello"},
	{name: "data bare cr", in: "5\r\nhello\r0\r\n\r\n", status: 400, payload: "hello"},
	{name: "last chunk bare lf", in: "0\n\r\n", status: 400},
	{name: "final bare lf", in: "0\r\n\n", status: 400},
	{name: "final cr garbage", in: "0\r\n\rx", status: 400},
	{name: "trailer obs-fold", in: "0\r\nX: a\r\n b\r\n\r\n", status: 400},
	{name: "trailer leading space", in: "0\r\n X: a\r\n\r\n", status: 400},
	{name: "trailer space before colon", in: "0\r\nX : a\r\n\r\n", status: 400},
	{name: "trailer no colon", in: "0\r\nXa\r\n\r\n", status: 400},
	{name: "trailer bad name", in: "0\r\nX Y: a\r\n\r\n", status: 400},
	{name: "trailer nul", in: "0\r\nX: a\x00\r\n\r\n", status: 400},
	{name: "trailer bare lf", in: "0\r\nX: a\nY: b\r\n\r\n", status: 400},
	{name: "trailer bare lf end", in: "0\r\nX: a\n\r\n", status: 400},
	{name: "trailer bare cr", in: "0\r\nX: a\rY: b\r\n\r\n", status: 400},
	{name: "trailer too large", in: "0\r\nX: " + strings.Repeat("t", MaxTrailer-4) + "\r\n\r\n", status: 400},
	{name: "trailer too large unfinished", in: "0\r\nX: " + strings.Repeat("t", MaxTrailer+10), status: 400},
	{name: "smuggled request after bad size", in: "5\r\nhello\r\nG\r\n", status: 400, payload: "hello"},
}
