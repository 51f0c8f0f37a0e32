package h1parse

import (
	"bytes"
	"testing"
)

// Fuzz properties shared by the head parsers:
//   - never panic; errors are ErrNeedMore or package-level *Error values;
//   - success implies a consistent result (checkRequest / checkResponse);
//   - parsing in two pieces split at a fuzzed position (into a reallocated
//     buffer) gives exactly the whole-input outcome;
//   - on success, the head alone parses identically, and a re-serialized
//     head parses to the same fields.

func FuzzRequest(f *testing.F) {
	for _, tc := range allRequestCases() {
		if tc.lim == nil && len(tc.in) < 4096 {
			f.Add([]byte(tc.in), uint16(len(tc.in)/2))
		}
	}
	f.Add(smallGET, uint16(17))
	f.Add(browserGET, uint16(300))
	lim := &Limits{MaxRequestLine: 256, MaxHeaderBytes: 1024, MaxFields: 16}
	f.Fuzz(func(t *testing.T, in []byte, split uint16) {
		var r Request
		err := r.Parse(in, lim)
		want := reqSummary(&r, err)
		switch {
		case err == nil:
			checkRequest(t, in, &r)
			var r2 Request
			if err := r2.Parse(in[:r.HeadLen], lim); err != nil || reqSummary(&r2, nil) != want {
				t.Fatalf("head alone: %v\n%s\nwant\n%s", err, reqSummary(&r2, err), want)
			}
			checkReserialized(t, &r, lim)
		case err == ErrNeedMore:
		default:
			if !isPackageErr(err, &reqErr) {
				t.Fatalf("unexpected error %#v", err)
			}
		}
		cut := int(split) % (len(in) + 1)
		r2, err2 := feedReq(in, []int{cut}, lim, true)
		if got := reqSummary(r2, err2); got != want {
			t.Fatalf("split at %d:\n%s\nwant\n%s", cut, got, want)
		}
	})
}

// checkReserialized rebuilds the head from the parsed result and checks the
// parser reads it back the same way (canonical OWS: one SP after the colon).
func checkReserialized(t *testing.T, r *Request, lim *Limits) {
	t.Helper()
	var b []byte
	b = append(b, r.Method...)
	b = append(b, ' ')
	b = append(b, r.Target...)
	b = append(b, " HTTP/1."...)
	b = append(b, byte('0'+r.Minor))
	b = append(b, "\r\n"...)
	for _, f := range r.Fields {
		b = append(b, f.Name...)
		b = append(b, ": "...)
		b = append(b, f.Value...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	var r2 Request
	if err := r2.Parse(b, lim); err != nil {
		t.Fatalf("re-serialized head fails: %v\n%q", err, b)
	}
	if len(r2.Fields) != len(r.Fields) || r2.ContentLength != r.ContentLength || r2.Chunked != r.Chunked ||
		r2.Close != r.Close || r2.Expect100 != r.Expect100 || r2.Upgrade != r.Upgrade ||
		!bytes.Equal(r2.Host, r.Host) || !bytes.Equal(r2.Target, r.Target) || !bytes.Equal(r2.Method, r.Method) {
		t.Fatalf("re-serialized head differs:\n%s\nwant\n%s", reqSummary(&r2, nil), reqSummary(r, nil))
	}
	for i := range r.Fields {
		if !bytes.Equal(r.Fields[i].Name, r2.Fields[i].Name) || !bytes.Equal(r.Fields[i].Value, r2.Fields[i].Value) {
			t.Fatalf("field %d differs", i)
		}
	}
}

func FuzzResponse(f *testing.F) {
	for _, tc := range policyResponses {
		if tc.lim == nil {
			f.Add([]byte(tc.in), uint16(len(tc.in)/2))
		}
	}
	f.Add(smallResponse, uint16(40))
	lim := &Limits{MaxRequestLine: 256, MaxHeaderBytes: 1024, MaxFields: 16}
	f.Fuzz(func(t *testing.T, in []byte, split uint16) {
		var r Response
		err := r.Parse(in, lim)
		want := respSummary(&r, err)
		switch {
		case err == nil:
			checkResponse(t, in, &r)
			var r2 Response
			if err := r2.Parse(in[:r.HeadLen], lim); err != nil || respSummary(&r2, nil) != want {
				t.Fatalf("head alone: %v", err)
			}
		case err == ErrNeedMore:
		default:
			if !isPackageErr(err, &respErr) {
				t.Fatalf("unexpected error %#v", err)
			}
		}
		cut := int(split) % (len(in) + 1)
		r2, err2 := feedResp(in, []int{cut}, lim, true)
		if got := respSummary(r2, err2); got != want {
			t.Fatalf("split at %d:\n%s\nwant\n%s", cut, got, want)
		}
	})
}

// FuzzChunked: never panic; consumed and data stay within in; a split at a
// fuzzed position (and byte-by-byte feeding) decodes identically; a decoded
// body re-encoded with the Append helpers decodes to the same payload and
// trailer.
func FuzzChunked(f *testing.F) {
	for _, tc := range chunkCases {
		if len(tc.in) < 4096 {
			f.Add([]byte(tc.in), uint16(len(tc.in)/2))
		}
	}
	f.Add(chunkedBody[:5000], uint16(4100))
	f.Fuzz(func(t *testing.T, in []byte, split uint16) {
		var d ChunkedDecoder
		payload, consumed, err := decodeAll(&d, in, nil)
		status, trailer := chunkStatus(&d, err), string(d.Trailer())
		if err != nil && !isPackageErr(err, &reqErr) {
			t.Fatalf("unexpected error %#v", err)
		}
		if consumed > len(in) {
			t.Fatalf("consumed %d > %d", consumed, len(in))
		}
		cut := int(split) % (len(in) + 1)
		for _, cuts := range [][]int{{cut}, everyByte(min(len(in), 512))} {
			var d2 ChunkedDecoder
			p2, c2, err2 := decodeAll(&d2, in, cuts)
			if s2 := chunkStatus(&d2, err2); s2 != status || !bytes.Equal(p2, payload) || string(d2.Trailer()) != trailer {
				t.Fatalf("split %v: status %d payload %q trailer %q; want %d %q %q", cuts[:min(len(cuts), 3)], s2, p2, d2.Trailer(), status, payload, trailer)
			}
			if status == ok && c2 != consumed {
				t.Fatalf("split: consumed %d, want %d", c2, consumed)
			}
		}
		if status != ok {
			return
		}
		checkFieldsRaw(t, d.Trailer())
		// Re-encode in pieces of a fuzzed size and decode again.
		step := int(split)%97 + 1
		var enc []byte
		for p := payload; len(p) > 0; {
			n := min(step, len(p))
			enc = AppendChunkHeader(enc, n)
			enc = append(enc, p[:n]...)
			enc = AppendChunkEnd(enc)
			p = p[n:]
		}
		enc = AppendLastChunk(enc, d.Trailer())
		var d3 ChunkedDecoder
		p3, c3, err3 := decodeAll(&d3, enc, nil)
		if err3 != nil || !d3.Done() || c3 != len(enc) || !bytes.Equal(p3, payload) || string(d3.Trailer()) != trailer {
			t.Fatalf("re-encoded: %v done=%v consumed %d/%d payload %q trailer %q", err3, d3.Done(), c3, len(enc), p3, d3.Trailer())
		}
	})
}

// checkFieldsRaw checks raw trailer lines: each "name: value" CRLF with a
// token name and clean value.
func checkFieldsRaw(t *testing.T, raw []byte) {
	t.Helper()
	for len(raw) > 0 {
		i := bytes.Index(raw, []byte("\r\n"))
		if i < 0 {
			t.Fatalf("trailer line without CRLF: %q", raw)
		}
		line := raw[:i]
		raw = raw[i+2:]
		c := bytes.IndexByte(line, ':')
		if c < 0 {
			t.Fatalf("trailer line without colon: %q", line)
		}
		checkFields(t, []Field{{Name: line[:c], Value: trimOWS(line[c+1:])}})
	}
}
