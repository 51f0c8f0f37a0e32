package h1parse

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httputil"
	"testing"
)

// FuzzRequestVsNetHTTP is a differential check: whatever this parser
// accepts, net/http must accept too and agree on the body framing. (The
// reverse does not hold: this parser is stricter.) Known, deliberate
// differences are skipped: net/http does not skip leading empty lines,
// rejects bad percent-encoding in the target, which is not ours to judge,
// and accepts only the exact Transfer-Encoding value "chunked", where RFC
// 9110 §5.6.1 lets a list carry empty elements and OWS.
func FuzzRequestVsNetHTTP(f *testing.F) {
	for _, tc := range allRequestCases() {
		if tc.lim == nil && len(tc.in) < 4096 {
			f.Add([]byte(tc.in))
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var r Request
		if r.Parse(in, nil) != nil || bytes.IndexByte(r.Target, '%') >= 0 {
			return
		}
		for _, f := range r.Fields {
			if EqualFold(f.Name, "transfer-encoding") && !EqualFold(f.Value, "chunked") {
				return
			}
		}
		head := in[:r.HeadLen]
		for bytes.HasPrefix(head, []byte("\r\n")) {
			head = head[2:]
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil {
			t.Fatalf("accepted here, net/http rejects: %v\n%q", err, head)
		}
		if r.Chunked != (len(req.TransferEncoding) > 0) {
			t.Fatalf("chunked %v, net/http %v: %q", r.Chunked, req.TransferEncoding, head)
		}
		if !r.Chunked && req.ContentLength != max(r.ContentLength, 0) {
			t.Fatalf("content-length %d, net/http %d: %q", r.ContentLength, req.ContentLength, head)
		}
	})
}

// FuzzResponseVsNetHTTP: the same for responses (to a GET).
func FuzzResponseVsNetHTTP(f *testing.F) {
	for _, tc := range policyResponses {
		if tc.lim == nil {
			f.Add([]byte(tc.in))
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var r Response
		if r.Parse(in, nil) != nil {
			return
		}
		for _, f := range r.Fields {
			if EqualFold(f.Name, "transfer-encoding") && !EqualFold(f.Value, "chunked") {
				return
			}
		}
		head := in[:r.HeadLen]
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(head)), nil)
		if err != nil {
			t.Fatalf("accepted here, net/http rejects: %v\n%q", err, head)
		}
		if r.Chunked != (len(resp.TransferEncoding) > 0) {
			t.Fatalf("chunked %v, net/http %v: %q", r.Chunked, resp.TransferEncoding, head)
		}
	})
}

// FuzzChunkedVsNetHTTP: a body this decoder completes decodes to the same
// payload with net/http/httputil's chunked reader. Skipped: size lines
// longer than the 4096 bytes that reader allows.
func FuzzChunkedVsNetHTTP(f *testing.F) {
	for _, tc := range chunkCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var d ChunkedDecoder
		payload, _, err := decodeAll(&d, in, nil)
		if err != nil || !d.Done() {
			return
		}
		for _, line := range bytes.Split(in, []byte("\n")) {
			if len(line) > 4000 {
				return
			}
		}
		got, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(in)))
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("net/http: %v %q, here %q\n%q", err, got, payload, in)
		}
	})
}
