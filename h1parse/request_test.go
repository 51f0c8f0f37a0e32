package h1parse

import (
	"bytes"
	"errors"
	"testing"
)

// reqChecks holds the field-level expectations of valid corpus cases.
var reqChecks = map[string]func(t *testing.T, r *Request){
	"get with query": func(t *testing.T, r *Request) {
		expect(t, string(r.Method), "GET")
		expect(t, string(r.Target), "/search?q=a+b&x=%20")
		expect(t, string(r.Host), "example.com")
		expect(t, r.Minor, 1)
		expect(t, r.ContentLength, int64(-1))
		expect(t, r.Close, false)
		k, n := r.Body()
		expect(t, k, BodyNone)
		expect(t, n, int64(0))
	},
	"absolute-form http": func(t *testing.T, r *Request) {
		expect(t, string(r.Target), "http://example.com:8080/a?b")
	},
	"options asterisk": func(t *testing.T, r *Request) {
		expect(t, string(r.Target), "*")
	},
	"connect authority-form": func(t *testing.T, r *Request) {
		expect(t, string(r.Method), "CONNECT")
		expect(t, string(r.Target), "example.com:443")
	},
	"http/1.0 without host": func(t *testing.T, r *Request) {
		expect(t, r.Minor, 0)
		expect(t, r.Host == nil, true)
		expect(t, r.Close, true)
	},
	"http/1.0 keep-alive": func(t *testing.T, r *Request) {
		expect(t, r.Close, false)
		expect(t, r.IsHopByHop([]byte("connection")), true)
	},
	"http/1.0 close":              func(t *testing.T, r *Request) { expect(t, r.Close, true) },
	"http/1.1 close":              func(t *testing.T, r *Request) { expect(t, r.Close, true) },
	"http/1.1 keep-alive default": func(t *testing.T, r *Request) { expect(t, r.Close, false) },
	"http/1.2 treated as 1.1":     func(t *testing.T, r *Request) { expect(t, r.Minor, 1) },
	"chunked post": func(t *testing.T, r *Request) {
		expect(t, r.Chunked, true)
		expect(t, r.ContentLength, int64(-1))
		k, n := r.Body()
		expect(t, k, BodyChunked)
		expect(t, n, int64(-1))
		expect(t, r.HeadLen, len("POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"))
		expect(t, r.IsHopByHop([]byte("TRANSFER-ENCODING")), true)
	},
	"chunked uppercase":           func(t *testing.T, r *Request) { expect(t, r.Chunked, true) },
	"chunked empty list elements": func(t *testing.T, r *Request) { expect(t, r.Chunked, true) },
	"content-length post": func(t *testing.T, r *Request) {
		k, n := r.Body()
		expect(t, k, BodyLength)
		expect(t, n, int64(5))
	},
	"content-length zero": func(t *testing.T, r *Request) {
		expect(t, r.ContentLength, int64(0))
		k, _ := r.Body()
		expect(t, k, BodyNone)
	},
	"content-length ows":       func(t *testing.T, r *Request) { expect(t, r.ContentLength, int64(12)) },
	"content-length 18 digits": func(t *testing.T, r *Request) { expect(t, r.ContentLength, int64(999999999999999999)) },
	"expect 100-continue":      func(t *testing.T, r *Request) { expect(t, r.Expect100, true) },
	"connection custom hop-by-hop": func(t *testing.T, r *Request) {
		for _, name := range []string{"x-secret", "X-SECRET", "keep-alive", "Connection", "X-Other", "te", "Upgrade", "Proxy-Connection", "Transfer-Encoding"} {
			if !r.IsHopByHop([]byte(name)) {
				t.Errorf("IsHopByHop(%q) = false", name)
			}
		}
		for _, name := range []string{"Host", "Trailer", "Proxy-Authorization", "X-Secre", "X-Secret2", "", "Content-Length"} {
			if r.IsHopByHop([]byte(name)) {
				t.Errorf("IsHopByHop(%q) = true", name)
			}
		}
		expect(t, r.Close, false)
	},
	"connection 16 options": func(t *testing.T, r *Request) {
		expect(t, r.IsHopByHop([]byte("X-OPTA")), true)
		expect(t, r.IsHopByHop([]byte("x-optp")), true)
		expect(t, r.IsHopByHop([]byte("x-optq")), false)
	},
	"http/1.0 expect and upgrade ignored": func(t *testing.T, r *Request) {
		expect(t, r.Expect100, false)
		expect(t, r.Upgrade, false)
		expect(t, r.IsHopByHop([]byte("Upgrade")), true)
	},
	"upgrade": func(t *testing.T, r *Request) {
		expect(t, r.Upgrade, true)
		expect(t, r.IsHopByHop([]byte("upgrade")), true)
	},
	"obs-text in value": func(t *testing.T, r *Request) {
		expect(t, string(r.Fields[1].Value), "caf\xc3\xa9 \xff\x80")
	},
	"leading crlf": func(t *testing.T, r *Request) {
		expect(t, string(r.Method), "GET")
		expect(t, r.HeadLen, len("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"))
	},
	"two leading crlf": func(t *testing.T, r *Request) {
		expect(t, r.HeadLen, len("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"))
	},
	"empty host": func(t *testing.T, r *Request) {
		expect(t, r.Host != nil && len(r.Host) == 0, true)
	},
	"host ipv6": func(t *testing.T, r *Request) { expect(t, string(r.Host), "[::1]:80") },
	"empty value and ows": func(t *testing.T, r *Request) {
		expect(t, len(r.Fields), 4)
		expect(t, string(r.Fields[1].Value), "")
		expect(t, string(r.Fields[2].Value), "v  w")
		expect(t, string(r.Fields[3].Value), "v")
	},
	"field name case preserved": func(t *testing.T, r *Request) {
		expect(t, string(r.Fields[1].Name), "x-LoWeR-uPPer")
	},
	"trailing bytes after head": func(t *testing.T, r *Request) {
		expect(t, r.HeadLen, len(get("")))
	},
	"pipelined smuggle text": func(t *testing.T, r *Request) {
		expect(t, r.HeadLen, len(get("Content-Length: 0\r\n")))
		expect(t, r.ContentLength, int64(0))
	},
	"connection nominates framing": func(t *testing.T, r *Request) {
		expect(t, r.IsHopByHop([]byte("content-length")), false)
		expect(t, r.IsHopByHop([]byte("HOST")), false)
		expect(t, r.IsHopByHop([]byte("X-Forwarded-For")), true)
		expect(t, r.ContentLength, int64(5))
	},
	"TE underscore name": func(t *testing.T, r *Request) { expect(t, r.Chunked, false) },
	"TE leading sp ok":   func(t *testing.T, r *Request) { expect(t, r.Chunked, true) },
	"TE leading tab ok":  func(t *testing.T, r *Request) { expect(t, r.Chunked, true) },
	"TE trailing ows ok": func(t *testing.T, r *Request) { expect(t, r.Chunked, true) },
	"TE no space ok":     func(t *testing.T, r *Request) { expect(t, r.Chunked, true) },
	"CL leading zero ok": func(t *testing.T, r *Request) { expect(t, r.ContentLength, int64(5)) },
}

func expect[T comparable](t *testing.T, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

func allRequestCases() []reqCase {
	return append(append([]reqCase(nil), policyRequests...), hostileRequests...)
}

func TestRequestPolicy(t *testing.T) {
	for _, tc := range allRequestCases() {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			var r Request
			err := r.Parse(in, tc.lim)
			if got := statusOf(err); got != tc.status {
				t.Fatalf("status %d (%v), want %d", got, err, tc.status)
			}
			if tc.status > 0 && !isPackageErr(err, &reqErr) {
				t.Fatalf("error %p is not a package variable", err)
			}
			if tc.status == ok {
				checkRequest(t, in, &r)
			}
			if check := reqChecks[tc.name]; check != nil {
				check(t, &r)
			}
			// Sticky: asking again gives the same answer.
			if err2 := r.Parse(in, tc.lim); err2 != err {
				t.Fatalf("second Parse: %v, first %v", err2, err)
			}
		})
	}
	for name := range reqChecks {
		found := false
		for _, tc := range allRequestCases() {
			found = found || tc.name == name
		}
		if !found {
			t.Errorf("check for unknown case %q", name)
		}
	}
}

// TestRequestSplit feeds every corpus case split at every byte position,
// byte by byte, and byte by byte with a reallocated buffer each time; the
// outcome must equal parsing the input whole.
func TestRequestSplit(t *testing.T) {
	for _, tc := range allRequestCases() {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			r, err := feedReq(in, nil, tc.lim, false)
			want := reqSummary(r, err)
			if len(in) > 4096 {
				r, err = feedReq(in, everyByte(len(in)), tc.lim, false)
				if got := reqSummary(r, err); got != want {
					t.Fatalf("byte by byte:\n%s\nwant\n%s", got, want)
				}
				return
			}
			for i := 0; i <= len(in); i++ {
				r, err := feedReq(in, []int{i}, tc.lim, i%2 == 0)
				if got := reqSummary(r, err); got != want {
					t.Fatalf("split at %d:\n%s\nwant\n%s", i, got, want)
				}
			}
			for _, fresh := range []bool{false, true} {
				r, err := feedReq(in, everyByte(len(in)), tc.lim, fresh)
				if got := reqSummary(r, err); got != want {
					t.Fatalf("byte by byte (fresh=%v):\n%s\nwant\n%s", fresh, got, want)
				}
			}
		})
	}
}

// TestRequestResumes checks white-box that a partial head is never
// rescanned: after ErrNeedMore the scan offset is at the end of the input.
func TestRequestResumes(t *testing.T) {
	in := []byte("GET /some/path HTTP/1.1\r\nHost: example.com\r\nUser-Agent: x\r\nAccept: */*\r\n\r\n")
	var r Request
	for i := 1; i < len(in); i++ {
		err := r.Parse(in[:i], nil)
		if err != ErrNeedMore {
			t.Fatalf("prefix %d: %v", i, err)
		}
		if r.h.scan != i && in[i-1] != '\r' {
			t.Fatalf("prefix %d: scan offset %d", i, r.h.scan)
		}
		if r.h.off > r.h.scan || r.h.scan > i {
			t.Fatalf("prefix %d: invariant off %d <= scan %d <= len violated", i, r.h.off, r.h.scan)
		}
	}
	if err := r.Parse(in, nil); err != nil {
		t.Fatal(err)
	}
	expect(t, r.HeadLen, len(in))
	expect(t, len(r.Fields), 3)
}

// TestRequestEarlyLimit: over-long lines fail without waiting for CRLF.
func TestRequestEarlyLimit(t *testing.T) {
	var r Request
	line := append([]byte("GET /"), bytes.Repeat([]byte("a"), DefaultMaxRequestLine)...)
	if err := r.Parse(line[:100], nil); err != ErrNeedMore {
		t.Fatal(err)
	}
	if err := r.Parse(line, nil); statusOf(err) != 414 {
		t.Fatalf("got %v, want 414", err)
	}
	r.Reset()
	head := append([]byte("GET / HTTP/1.1\r\nHost: a\r\nX: "), bytes.Repeat([]byte("v"), DefaultMaxHeaderBytes)...)
	if err := r.Parse(head[:DefaultMaxHeaderBytes-1], nil); err != ErrNeedMore {
		t.Fatal(err)
	}
	if err := r.Parse(head[:DefaultMaxHeaderBytes], nil); statusOf(err) != 431 {
		t.Fatalf("got %v, want 431", err)
	}
}

func TestRequestReset(t *testing.T) {
	var r Request
	a := []byte("POST /a HTTP/1.1\r\nHost: a\r\nConnection: x-a, close\r\nContent-Length: 3\r\nExpect: 100-continue\r\nUpgrade: h2c\r\n\r\n")
	if err := r.Parse(a, nil); err != nil {
		t.Fatal(err)
	}
	c := cap(r.Fields)
	r.Reset()
	expect(t, cap(r.Fields), c)
	expect(t, len(r.Fields), 0)
	b := []byte("GET / HTTP/1.1\r\nHost: b\r\n\r\n")
	if err := r.Parse(b, nil); err != nil {
		t.Fatal(err)
	}
	expect(t, r.ContentLength, int64(-1))
	expect(t, r.Close || r.Expect100 || r.Upgrade || r.Chunked, false)
	expect(t, r.IsHopByHop([]byte("x-a")), false)
	expect(t, string(r.Host), "b")

	// A zero Request (never Reset) works too.
	var z Request
	if err := z.Parse(b, nil); err != nil {
		t.Fatal(err)
	}
	expect(t, z.ContentLength, int64(-1))

	// Failure is sticky until Reset.
	r.Reset()
	if err := r.Parse([]byte("GET / HTTP/9.9\r\n\r\n"), nil); statusOf(err) != 505 {
		t.Fatal(err)
	}
	if err := r.Parse(b, nil); statusOf(err) != 505 {
		t.Fatal(err)
	}
	r.Reset()
	if err := r.Parse(b, nil); err != nil {
		t.Fatal(err)
	}
}

// TestRequestShorterBuffer: a buffer shorter than what was scanned is not
// a continuation; Parse starts over instead of misbehaving.
func TestRequestShorterBuffer(t *testing.T) {
	var r Request
	if err := r.Parse([]byte("GET /aaaaaaaaaaaaa HTTP/1.1\r\nHost: x\r\n"), nil); err != ErrNeedMore {
		t.Fatal(err)
	}
	if err := r.Parse([]byte("GET / HTTP/1.0\r\n\r\n"), nil); err != nil {
		t.Fatal(err)
	}
	expect(t, string(r.Target), "/")
	expect(t, len(r.Fields), 0)
}

func TestErrorString(t *testing.T) {
	expect(t, ErrCLWithTE.Error(), "h1parse: 400 content-length with transfer-encoding")
	for i, e := range respErr {
		if reqErr[i] != nil && (e == nil || e.Status != 502) {
			t.Errorf("respErr[%d] = %v", i, e)
		}
	}
}

func TestEqualFold(t *testing.T) {
	expect(t, EqualFold([]byte("Content-LENGTH"), "content-length"), true)
	expect(t, EqualFold([]byte("content-lengt"), "content-length"), false)
	expect(t, EqualFold([]byte("\xc3\xa9"), "\xc3\x89"), false)
	expect(t, EqualFold([]byte("a[b"), "A{B"), false) // '[' and '{' differ by 0x20 but are not letters
	expect(t, EqualFold(nil, ""), true)
}

func TestBodyKindString(t *testing.T) {
	expect(t, BodyUntilClose.String(), "until-close")
	expect(t, BodyKind(9).String(), "invalid")
}

func TestAuthority(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"GET / HTTP/1.1\r\nHost: a.example:80\r\n\r\n", "a.example:80"},
		{"GET http://b.example:8080/x?y HTTP/1.1\r\nHost: a\r\n\r\n", "b.example:8080"},
		{"GET https://c.example?q HTTP/1.1\r\nHost: a\r\n\r\n", "c.example"},
		{"GET http://d.example HTTP/1.1\r\nHost: a\r\n\r\n", "d.example"},
		{"CONNECT e.example:443 HTTP/1.1\r\nHost: e.example:443\r\n\r\n", "e.example:443"},
		{"OPTIONS * HTTP/1.1\r\nHost: f\r\n\r\n", "f"},
		{"GET / HTTP/1.0\r\n\r\n", ""},
	} {
		var r Request
		if err := r.Parse([]byte(tc.in), nil); err != nil {
			t.Fatal(err)
		}
		expect(t, string(r.Authority()), tc.want)
	}
	var r Request
	if a := testing.AllocsPerRun(100, func() { _ = r.Authority() }); a != 0 {
		t.Fatalf("%v allocs", a)
	}
}

func TestErrorIs(t *testing.T) {
	var r Response
	err := r.Parse([]byte("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"), nil)
	if !errors.Is(err, ErrCLWithTE) || errors.Is(err, ErrDupCL) || statusOf(err) != 502 {
		t.Fatalf("%v", err)
	}
	if errors.Is(ErrNeedMore, ErrCLWithTE) || errors.Is(ErrCLWithTE, ErrNeedMore) {
		t.Fatal("ErrNeedMore matches *Error")
	}
}

func TestValidIPLiteral(t *testing.T) {
	for s, want := range map[string]bool{
		"::": true, "::1": true, "1::": true, "2001:db8::1": true, "1:2:3:4:5:6:7:8": true,
		"1:2:3:4:5:6:7::": true, "::ffff:192.0.2.1": true, "1:2:3:4:5:6:1.2.3.4": true,
		"fe80::1:2": true, "v1.x": true, "V1f.a:b!": true, "ABCD:ef01::": true,
		"": false, ":": false, ":1": false, "1:": false, "1:::2": false, "1::2::3": false,
		"1:2:3:4:5:6:7": false, "1:2:3:4:5:6:7:8:9": false, "12345::": false, "0000000": false,
		"1:2:3:4:5:6:7:1.2.3.4": false, "::1.2.3": false, "::1.2.3.256": false, "::01.2.3.4": false,
		"::1.2.3.4:5": false, "fe80::1%eth0": false, "g::": false, "v.x": false, "v1.": false, "v1x": false,
	} {
		if got := validIPLiteral([]byte(s)); got != want {
			t.Errorf("validIPLiteral(%q) = %v", s, got)
		}
	}
}
