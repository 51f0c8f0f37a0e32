package backend

import (
	"testing"

	"github.com/apex-epoll/apex/h1parse"
)

var benchResp = []byte("HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Thu, 26 Nov 2026 04:00:00 GMT\r\n" +
	"Content-Type: text/plain\r\nContent-Length: 14\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\nhello, world!\n")

// The client-facing head drops hop-by-hop fields and keeps the rest.
func TestAppendClientHead(t *testing.T) {
	var r h1parse.Response
	r.Reset()
	if err := r.Parse(benchResp, &h1parse.Limits{}); err != nil {
		t.Fatal(err)
	}
	got := string(AppendClientHead(nil, &r, false))
	want := "HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Thu, 26 Nov 2026 04:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n"
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	got = string(AppendClientHead(nil, &r, true))
	if got != want+"Transfer-Encoding: chunked\r\n" {
		t.Fatalf("chunked: got %q", got)
	}
}

// BenchmarkResponseHead is the owner's per-response work on the head:
// parse and rewrite (0 allocs/op).
func BenchmarkResponseHead(b *testing.B) {
	var r h1parse.Response
	var lim h1parse.Limits
	dst := make([]byte, 0, 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchResp)))
	for i := 0; i < b.N; i++ {
		r.Reset()
		if err := r.Parse(benchResp, &lim); err != nil {
			b.Fatal(err)
		}
		dst = AppendClientHead(dst[:0], &r, false)
	}
}
