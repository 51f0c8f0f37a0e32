package h1parse

import (
	"bytes"
	"strings"
	"testing"
)

// smallGET is a typical small GET with 8 header fields.
var smallGET = []byte("GET /api/v1/users/12345?fields=name,email HTTP/1.1\r\n" +
	"Host: api.example.com\r\n" +
	"User-Agent: curl/8.5.0\r\n" +
	"Accept: application/json\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Accept-Language: en-US,en;q=0.9\r\n" +
	"Connection: keep-alive\r\n" +
	"X-Request-Id: 7f3c2a9e-1b4d-4c8e-9f6a-2d5b8e1c0a7f\r\n" +
	"Cache-Control: no-cache\r\n" +
	"\r\n")

// browserGET is a larger, browser-like head with a long cookie.
var browserGET = []byte("GET /static/app.3f9a1c.js HTTP/1.1\r\n" +
	"Host: www.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Accept-Language: en-US,en;q=0.9,fr;q=0.8\r\n" +
	"Referer: https://www.example.com/products/widgets?page=2&sort=price\r\n" +
	"Cookie: session=" + strings.Repeat("a1b2c3d4", 40) + "; theme=dark; _ga=GA1.2.123456789.1700000000\r\n" +
	"Sec-Fetch-Dest: script\r\n" +
	"Sec-Fetch-Mode: no-cors\r\n" +
	"Sec-Fetch-Site: same-origin\r\n" +
	"If-None-Match: \"33a64df551425fcc55e4d42a148795d9f25f89d4\"\r\n" +
	"Connection: keep-alive\r\n" +
	"\r\n")

var smallResponse = []byte("HTTP/1.1 200 OK\r\n" +
	"Date: Mon, 27 Jul 2009 12:28:53 GMT\r\n" +
	"Server: Apache\r\n" +
	"Last-Modified: Wed, 22 Jul 2009 19:15:56 GMT\r\n" +
	"ETag: \"34aa387-d-1568eb00\"\r\n" +
	"Accept-Ranges: bytes\r\n" +
	"Content-Length: 51\r\n" +
	"Vary: Accept-Encoding\r\n" +
	"Content-Type: text/plain\r\n" +
	"\r\n")

// chunkedBody is 64 KiB of payload in 16 chunks of 4 KiB, with extensions
// on a few size lines and a trailer.
var chunkedBody = func() []byte {
	var b []byte
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 256)
	for i := range 16 {
		b = AppendChunkHeader(b, len(chunk))
		if i%4 == 0 {
			b = append(b[:len(b)-2], ";ext=\"v\"\r\n"...)
		}
		b = append(b, chunk...)
		b = AppendChunkEnd(b)
	}
	return AppendLastChunk(b, []byte("X-Checksum: abc\r\n"))
}()

func BenchmarkParseRequest(b *testing.B) {
	var r Request
	b.SetBytes(int64(len(smallGET)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset()
		if err := r.Parse(smallGET, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseRequestBrowser(b *testing.B) {
	var r Request
	b.SetBytes(int64(len(browserGET)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset()
		if err := r.Parse(browserGET, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseRequestSplit feeds the small GET in 4 reads.
func BenchmarkParseRequestSplit(b *testing.B) {
	var r Request
	n := len(smallGET)
	cuts := []int{n / 4, n / 2, 3 * n / 4, n}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset()
		var err error
		for _, c := range cuts {
			err = r.Parse(smallGET[:c], nil)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseResponse(b *testing.B) {
	var r Response
	b.SetBytes(int64(len(smallResponse)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset()
		if err := r.Parse(smallResponse, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChunkedDecode(b *testing.B) {
	var d ChunkedDecoder
	b.SetBytes(int64(len(chunkedBody)))
	b.ReportAllocs()
	for b.Loop() {
		d.Reset()
		in := chunkedBody
		for len(in) > 0 && !d.Done() {
			n, _, err := d.Decode(in)
			if err != nil {
				b.Fatal(err)
			}
			in = in[n:]
		}
		if !d.Done() {
			b.Fatal("not done")
		}
	}
}

// BenchmarkChunkedDecodeSmall: many tiny chunks, framing dominates.
func BenchmarkChunkedDecodeSmall(b *testing.B) {
	var body []byte
	for range 256 {
		body = AppendChunkHeader(body, 16)
		body = append(body, "0123456789abcdef"...)
		body = AppendChunkEnd(body)
	}
	body = AppendLastChunk(body, nil)
	var d ChunkedDecoder
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		d.Reset()
		in := body
		for len(in) > 0 && !d.Done() {
			n, _, err := d.Decode(in)
			if err != nil {
				b.Fatal(err)
			}
			in = in[n:]
		}
	}
}

func BenchmarkIsHopByHop(b *testing.B) {
	var r Request
	if err := r.Parse(smallGET, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, f := range r.Fields {
			_ = r.IsHopByHop(f.Name)
		}
	}
}
