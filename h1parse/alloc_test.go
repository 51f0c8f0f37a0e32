package h1parse

import (
	"testing"
)

// The hot path must not allocate once Fields has capacity.
func TestZeroAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("alloc counting")
	}
	bad := []byte("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
	n := len(smallGET)
	copyA := append([]byte(nil), smallGET...)
	copyB := append([]byte(nil), smallGET...)
	var (
		req  Request
		resp Response
		dec  ChunkedDecoder
		dst  = make([]byte, 0, 64)
	)
	cases := []struct {
		name string
		f    func()
	}{
		{"Request.Parse", func() {
			req.Reset()
			if req.Parse(browserGET, nil) != nil {
				panic("parse")
			}
		}},
		{"Request.Parse split", func() {
			req.Reset()
			_ = req.Parse(smallGET[:n/3], nil)
			_ = req.Parse(smallGET[:2*n/3], nil)
			if req.Parse(smallGET, nil) != nil {
				panic("parse")
			}
		}},
		{"Request.Parse split moved buffer", func() {
			req.Reset()
			_ = req.Parse(copyA[:n/2], nil)
			if req.Parse(copyB, nil) != nil {
				panic("parse")
			}
		}},
		{"Request.Parse error", func() {
			req.Reset()
			if req.Parse(bad, nil) == nil {
				panic("parse")
			}
		}},
		{"Request.IsHopByHop", func() {
			for _, f := range req.Fields {
				_ = req.IsHopByHop(f.Name)
			}
		}},
		{"Request.Body", func() { _, _ = req.Body() }},
		{"Response.Parse", func() {
			resp.Reset()
			if resp.Parse(smallResponse, nil) != nil {
				panic("parse")
			}
		}},
		{"Response.Parse error", func() {
			resp.Reset()
			if resp.Parse(bad, nil) == nil {
				panic("parse")
			}
		}},
		{"Response.IsHopByHop", func() { _ = resp.IsHopByHop([]byte("Keep-Alive")) }},
		{"ChunkedDecoder.Decode", func() {
			dec.Reset()
			in := chunkedBody
			for len(in) > 0 && !dec.Done() {
				k, _, err := dec.Decode(in)
				if err != nil {
					panic(err)
				}
				in = in[k:]
			}
		}},
		{"ChunkedDecoder.Decode bytewise", func() {
			dec.Reset()
			in := []byte("5;a=\"b\"\r\nhello\r\n0\r\nX: y\r\n\r\n")
			for i := range in {
				if _, _, err := dec.Decode(in[i : i+1]); err != nil {
					panic(err)
				}
			}
		}},
		{"ChunkedDecoder.Decode error", func() {
			dec.Reset()
			_, _, _ = dec.Decode([]byte("0x10\r\n"))
		}},
		{"Append", func() {
			d := AppendChunkHeader(dst[:0], 0xabcdef)
			d = AppendChunkEnd(d)
			_ = AppendLastChunk(d, []byte("A: b\r\n"))
		}},
		{"EqualFold", func() { _ = EqualFold([]byte("Content-Length"), "content-length") }},
	}
	for _, c := range cases {
		c.f() // warm up: Fields gets its capacity
		if a := testing.AllocsPerRun(100, c.f); a != 0 {
			t.Errorf("%s: %v allocs/op", c.name, a)
		}
	}
}
