package h1parse

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// statusOf maps a Parse/Decode result to a comparable status: 0 for nil,
// -1 for ErrNeedMore, the Status of an *Error, or -2 for anything else.
func statusOf(err error) int {
	if err == nil {
		return ok
	}
	if err == ErrNeedMore {
		return needMore
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return -2
}

// isPackageErr reports whether e is one of the package-level variables (the
// contract promises no freshly allocated errors).
func isPackageErr(e error, table *[numCodes]*Error) bool {
	for _, v := range table {
		if v != nil && v == e {
			return true
		}
	}
	return false
}

func reqSummary(r *Request, err error) string {
	if err != nil {
		return fmt.Sprintf("error %d %v", statusOf(err), err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%q %q 1.%d host=%q/%v cl=%d chunked=%v close=%v expect=%v upgrade=%v headlen=%d\n",
		r.Method, r.Target, r.Minor, r.Host, r.Host == nil, r.ContentLength, r.Chunked, r.Close,
		r.Expect100, r.Upgrade, r.HeadLen)
	for _, f := range r.Fields {
		fmt.Fprintf(&b, "%q: %q hop=%v\n", f.Name, f.Value, r.IsHopByHop(f.Name))
	}
	k, n := r.Body()
	fmt.Fprintf(&b, "body %v %d", k, n)
	return b.String()
}

func respSummary(r *Response, err error) string {
	if err != nil {
		return fmt.Sprintf("error %d %v", statusOf(err), err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "1.%d %d %q cl=%d chunked=%v close=%v headlen=%d\n",
		r.Minor, r.Status, r.Reason, r.ContentLength, r.Chunked, r.Close, r.HeadLen)
	for _, f := range r.Fields {
		fmt.Fprintf(&b, "%q: %q hop=%v\n", f.Name, f.Value, r.IsHopByHop(f.Name))
	}
	k, n := r.Body(false)
	hk, hn := r.Body(true)
	fmt.Fprintf(&b, "body %v %d head %v %d", k, n, hk, hn)
	return b.String()
}

// feedReq parses in as a growing sequence of prefixes ending at cuts and
// then at len(in). With fresh, every prefix is copied into a new backing
// array, as a caller that reallocates its buffer would do.
func feedReq(in []byte, cuts []int, lim *Limits, fresh bool) (*Request, error) {
	r := new(Request)
	var err error
	for i := 0; i <= len(cuts); i++ {
		end := len(in)
		if i < len(cuts) {
			end = cuts[i]
		}
		buf := in[:end]
		if fresh {
			buf = append(make([]byte, 0, end+i%3), buf...)
		}
		err = r.Parse(buf, lim)
	}
	return r, err
}

func feedResp(in []byte, cuts []int, lim *Limits, fresh bool) (*Response, error) {
	r := new(Response)
	var err error
	for i := 0; i <= len(cuts); i++ {
		end := len(in)
		if i < len(cuts) {
			end = cuts[i]
		}
		buf := in[:end]
		if fresh {
			buf = append(make([]byte, 0, end+i%3), buf...)
		}
		err = r.Parse(buf, lim)
	}
	return r, err
}

func everyByte(n int) []int {
	cuts := make([]int, n)
	for i := range cuts {
		cuts[i] = i
	}
	return cuts
}

// checkRequest verifies the invariants every successful parse must hold.
func checkRequest(t testing.TB, in []byte, r *Request) {
	t.Helper()
	if r.HeadLen < 4 || r.HeadLen > len(in) {
		t.Fatalf("HeadLen %d out of range (len %d)", r.HeadLen, len(in))
	}
	if string(in[r.HeadLen-4:r.HeadLen]) != "\r\n\r\n" {
		t.Fatalf("head does not end in CRLFCRLF: %q", in[:r.HeadLen])
	}
	if !isToken(r.Method) {
		t.Fatalf("method %q not a token", r.Method)
	}
	if len(r.Target) == 0 {
		t.Fatalf("empty target")
	}
	for _, c := range r.Target {
		if c <= ' ' || c >= 0x7f || c == '#' || c == '\\' {
			t.Fatalf("target %q has invalid byte %#x", r.Target, c)
		}
	}
	if r.Minor != 0 && r.Minor != 1 {
		t.Fatalf("minor %d", r.Minor)
	}
	if r.Minor == 1 && r.Host == nil {
		t.Fatalf("HTTP/1.1 without Host accepted")
	}
	if r.Chunked && r.ContentLength != -1 {
		t.Fatalf("chunked with content-length %d", r.ContentLength)
	}
	if r.Chunked && r.Minor == 0 {
		t.Fatalf("chunked HTTP/1.0 accepted")
	}
	if r.ContentLength < -1 {
		t.Fatalf("content-length %d", r.ContentLength)
	}
	checkFields(t, r.Fields)
	hosts, cls := 0, 0
	for _, f := range r.Fields {
		if EqualFold(f.Name, "host") {
			hosts++
		}
		if EqualFold(f.Name, "content-length") {
			cls++
		}
	}
	if hosts > 1 || cls > 1 {
		t.Fatalf("%d Host, %d Content-Length fields accepted", hosts, cls)
	}
}

func checkResponse(t testing.TB, in []byte, r *Response) {
	t.Helper()
	if r.HeadLen < 4 || r.HeadLen > len(in) {
		t.Fatalf("HeadLen %d out of range (len %d)", r.HeadLen, len(in))
	}
	if string(in[r.HeadLen-4:r.HeadLen]) != "\r\n\r\n" {
		t.Fatalf("head does not end in CRLFCRLF: %q", in[:r.HeadLen])
	}
	if r.Status < 100 || r.Status > 999 {
		t.Fatalf("status %d", r.Status)
	}
	if r.Chunked && r.ContentLength != -1 {
		t.Fatalf("chunked with content-length %d", r.ContentLength)
	}
	for _, c := range r.Reason {
		if c < ' ' && c != '\t' || c == 0x7f {
			t.Fatalf("reason %q has invalid byte", r.Reason)
		}
	}
	checkFields(t, r.Fields)
}

func checkFields(t testing.TB, fs []Field) {
	t.Helper()
	for _, f := range fs {
		if !isToken(f.Name) {
			t.Fatalf("field name %q not a token", f.Name)
		}
		for _, c := range f.Value {
			if c == '\r' || c == '\n' || c == 0 || c == 0x7f || (c < ' ' && c != '\t') {
				t.Fatalf("field %q value %q has invalid byte %#x", f.Name, f.Value, c)
			}
		}
		if v := f.Value; len(v) > 0 && (v[0] == ' ' || v[0] == '\t' || v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
			t.Fatalf("field %q value %q not trimmed", f.Name, v)
		}
	}
}

// isToken is an independent (table-free) tchar check, RFC 9110 §5.6.2.
func isToken(s []byte) bool {
	if len(s) == 0 {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// decodeAll feeds the segments of in (split at cuts) through d the way the
// contract tells callers to, collecting payload. It returns the payload,
// the total consumed, and the first error.
func decodeAll(d *ChunkedDecoder, in []byte, cuts []int) (payload []byte, consumed int, err error) {
	prev := 0
	for i := 0; i <= len(cuts) && !d.Done(); i++ {
		end := len(in)
		if i < len(cuts) {
			end = cuts[i]
		}
		if end < prev {
			continue
		}
		seg := in[prev:end]
		prev = end
		for len(seg) > 0 && !d.Done() {
			n, data, e := d.Decode(seg)
			if n < 0 || n > len(seg) {
				panic(fmt.Sprintf("consumed %d of %d", n, len(seg)))
			}
			if len(data) > n {
				panic("data longer than consumed span")
			}
			payload = append(payload, data...)
			consumed += n
			if e != nil {
				return payload, consumed, e
			}
			if n == 0 {
				panic("no progress without error")
			}
			seg = seg[n:]
		}
	}
	return payload, consumed, nil
}

func chunkStatus(d *ChunkedDecoder, err error) int {
	if err != nil {
		return statusOf(err)
	}
	if d.Done() {
		return ok
	}
	return needMore
}
