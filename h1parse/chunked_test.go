package h1parse

import (
	"bytes"
	"strings"
	"testing"
)

func TestChunked(t *testing.T) {
	for _, tc := range chunkCases {
		t.Run(tc.name, func(t *testing.T) {
			var d ChunkedDecoder
			payload, consumed, err := decodeAll(&d, []byte(tc.in), nil)
			if got := chunkStatus(&d, err); got != tc.status {
				t.Fatalf("status %d (%v), want %d", got, err, tc.status)
			}
			if tc.status > 0 && !isPackageErr(err, &reqErr) {
				t.Fatalf("error %p is not a package variable", err)
			}
			expect(t, string(payload), tc.payload)
			if tc.status == ok {
				expect(t, string(d.Trailer()), tc.trailer)
				// Consumed ends exactly at the final CRLF.
				if !strings.HasSuffix(tc.in[:consumed], "\r\n\r\n") && tc.in[:consumed] != "0\r\n\r\n" {
					t.Fatalf("consumed %d: %q", consumed, tc.in[:consumed])
				}
				n, data, err := d.Decode([]byte("more"))
				if n != 0 || data != nil || err != nil {
					t.Fatalf("Decode after Done: %d %q %v", n, data, err)
				}
			}
			if tc.status > 0 {
				// Sticky.
				if _, _, err2 := d.Decode([]byte("0\r\n\r\n")); err2 != err {
					t.Fatalf("not sticky: %v", err2)
				}
			}
		})
	}
}

// TestChunkedSplit: every split position, and byte by byte, decodes to the
// same payload, trailer and status, and consumes the same number of bytes.
func TestChunkedSplit(t *testing.T) {
	for _, tc := range chunkCases {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			var d ChunkedDecoder
			wantP, wantN, err := decodeAll(&d, in, nil)
			wantS, wantT := chunkStatus(&d, err), string(d.Trailer())
			check := func(what string, cuts []int) {
				var d ChunkedDecoder
				p, n, err := decodeAll(&d, in, cuts)
				if s := chunkStatus(&d, err); s != wantS || !bytes.Equal(p, wantP) || string(d.Trailer()) != wantT {
					t.Fatalf("%s: status %d payload %q trailer %q; want %d %q %q", what, s, p, d.Trailer(), wantS, wantP, wantT)
				}
				if wantS == ok && n != wantN {
					t.Fatalf("%s: consumed %d, want %d", what, n, wantN)
				}
			}
			for i := 0; i <= len(in); i++ {
				check("split", []int{i})
			}
			check("byte by byte", everyByte(len(in)))
		})
	}
}

// TestChunkedPartialConsumed: ending mid-framing, everything is consumed.
func TestChunkedPartialConsumed(t *testing.T) {
	for _, in := range []string{"5", "5;", "5;a=\"x", "5\r", "5\r\nhel", "5\r\nhello", "5\r\nhello\r", "0\r\nX: y", "0\r\nX: y\r", "0\r\n\r"} {
		var d ChunkedDecoder
		n, _, err := d.Decode([]byte(in))
		if err != nil || n != len(in) || d.Done() {
			t.Errorf("%q: consumed %d err %v done %v", in, n, err, d.Done())
		}
	}
	var d ChunkedDecoder
	if _, _, err := d.Decode(nil); err != ErrNeedMore {
		t.Fatalf("empty input: %v", err)
	}
}

// TestChunkedOneRunPerCall: payload after framing is returned by a later
// call, so data is always one contiguous run of in.
func TestChunkedOneRunPerCall(t *testing.T) {
	in := []byte("3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n")
	var d ChunkedDecoder
	n, data, err := d.Decode(in)
	if err != nil || string(data) != "abc" || n != len("3\r\nabc\r\n2;x=y\r\n") {
		t.Fatalf("first: %d %q %v", n, data, err)
	}
	n2, data, err := d.Decode(in[n:])
	if err != nil || string(data) != "de" || n+n2 != len(in) || !d.Done() {
		t.Fatalf("second: %d %q %v %v", n2, data, err, d.Done())
	}
	expect(t, string(d.Trailer()), "T: 1\r\n")
	d.Reset()
	expect(t, d.Done(), false)
	expect(t, len(d.Trailer()), 0)
	if p, _, err := decodeAll(&d, []byte("1\r\nz\r\n0\r\n\r\n"), nil); err != nil || string(p) != "z" || !d.Done() {
		t.Fatalf("after Reset: %q %v", p, err)
	}
}

// TestChunkedErrorAfterData: payload before an error is delivered first.
func TestChunkedErrorAfterData(t *testing.T) {
	in := []byte("5\r\nhello\r\nzz\r\n")
	var d ChunkedDecoder
	n, data, err := d.Decode(in)
	if err != nil || string(data) != "hello" || n != len("5\r\nhello\r\n") {
		t.Fatalf("%d %q %v", n, data, err)
	}
	n, data, err = d.Decode(in[n:])
	if n != 0 || data != nil || err != ErrChunkSize {
		t.Fatalf("%d %q %v", n, data, err)
	}
}

func TestAppendChunk(t *testing.T) {
	var b []byte
	b = AppendChunkHeader(b, 0x1aF)
	b = append(b, bytes.Repeat([]byte("x"), 0x1af)...)
	b = AppendChunkEnd(b)
	b = AppendChunkHeader(b, 1)
	b = append(b, 'y')
	b = AppendChunkEnd(b)
	b = AppendLastChunk(b, []byte("A: b\r\n"))
	if !bytes.HasPrefix(b, []byte("1af\r\n")) || !bytes.HasSuffix(b, []byte("\r\n1\r\ny\r\n0\r\nA: b\r\n\r\n")) {
		t.Fatalf("%q", b)
	}
	var d ChunkedDecoder
	p, n, err := decodeAll(&d, b, nil)
	if err != nil || n != len(b) || len(p) != 0x1b0 || string(d.Trailer()) != "A: b\r\n" {
		t.Fatalf("%d %v %q", n, err, d.Trailer())
	}
	expect(t, string(AppendLastChunk(nil, nil)), "0\r\n\r\n")
	defer func() {
		if recover() == nil {
			t.Fatal("negative size did not panic")
		}
	}()
	AppendChunkHeader(nil, -1)
}
