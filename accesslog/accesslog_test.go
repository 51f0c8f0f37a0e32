package accesslog

import (
	"bytes"
	"encoding/json"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func sampleHead() *Head {
	return &Head{
		Time:      time.Date(2026, 11, 26, 7, 8, 9, 123e6, time.UTC).UnixNano(),
		Remote:    netip.MustParseAddrPort("127.0.0.1:5555"),
		Method:    []byte("GET"),
		Target:    []byte("/a?b=\"c\"\x01\xff"),
		Minor:     1,
		Host:      []byte("example.com"),
		UserAgent: []byte("curl/8"),
		Route:     "/",
		Backend:   "app",
	}
}

func TestJSONLineIsValid(t *testing.T) {
	rec, split := JSON.AppendHead(nil, sampleHead())
	line := JSON.AppendLine(nil, rec, split, &End{Status: 200, Bytes: 123, Duration: 1500e3, Upstream: 1e6})
	if !bytes.HasSuffix(line, []byte("}\n")) {
		t.Fatalf("line %q", line)
	}
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, line)
	}
	want := map[string]any{
		"time": "2026-11-26T07:08:09.123Z", "remote_addr": "127.0.0.1", "remote_port": 5555.0,
		"method": "GET", "uri": "/a?b=\"c\"\x01\u00ff", "protocol": "HTTP/1.1", "host": "example.com",
		"user_agent": "curl/8", "referer": "", "route": "/", "backend": "app",
		"status": 200.0, "bytes": 123.0, "duration_ms": 1.5, "upstream_ms": 1.0,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
	for _, c := range line[:len(line)-1] {
		if c < 0x20 || c >= 0x7f {
			t.Fatalf("raw byte %#x in line %q", c, line)
		}
	}
}

func TestCombinedLine(t *testing.T) {
	rec, split := Combined.AppendHead(nil, sampleHead())
	line := string(Combined.AppendLine(nil, rec, split, &End{Status: 404, Bytes: 7, Upstream: -1}))
	want := `127.0.0.1 - - [26/Nov/2026:07:08:09 +0000] "GET /a?b=\x22c\x22\x01\xff HTTP/1.1" 404 7 "-" "curl/8"` + "\n"
	if line != want {
		t.Fatalf("got  %q\nwant %q", line, want)
	}
	// A request refused before its head was parsed.
	rec, split = Combined.AppendHead(nil, &Head{Time: 0, Remote: netip.MustParseAddrPort("[::1]:80")})
	line = string(Combined.AppendLine(nil, rec, split, &End{Status: 400, Bytes: 90}))
	if !regexp.MustCompile(`^::1 - - \[01/Jan/1970:00:00:00 \+0000\] "-" 400 90 "-" "-"\n$`).MatchString(line) {
		t.Fatalf("minimal line %q", line)
	}
}

func TestLongFieldsAreCut(t *testing.T) {
	h := sampleHead()
	h.Target = bytes.Repeat([]byte("a"), 10*MaxField)
	rec, _ := JSON.AppendHead(nil, h)
	if len(rec) > 2*MaxField || !bytes.Contains(rec, []byte(`a...","protocol"`)) {
		t.Fatalf("target not cut: %d bytes", len(rec))
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLinesWrittenInOrder(t *testing.T) {
	var out syncBuf
	l := NewWriter(&out, Combined)
	for i := 0; i < 100; i++ {
		b := l.Get()
		if b == nil {
			t.Fatal("no free buffer")
		}
		l.Put(append(b, strings.Repeat("x", i%7)+"\n"...))
	}
	l.Close(5 * time.Second)
	if l.Lines() != 100 || l.Drops() != 0 || strings.Count(out.String(), "\n") != 100 {
		t.Fatalf("lines %d drops %d, %d newlines", l.Lines(), l.Drops(), strings.Count(out.String(), "\n"))
	}
}

// A sink that never drains: Get turns nil after the buffers are queued
// (drops counted) and never blocks.
func TestBlockedSinkDropsWithoutBlocking(t *testing.T) {
	pr, pw := io.Pipe()
	l := NewWriter(pw, JSON)
	line := bytes.Repeat([]byte("y"), 200)
	start := time.Now()
	got := 0
	for i := 0; i < 3*Slots; i++ {
		if b := l.Get(); b != nil {
			l.Put(append(append(b, line...), '\n'))
			got++
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("logging %d lines took %v", 3*Slots, d)
	}
	if l.Drops() == 0 || got+int(l.Drops()) != 3*Slots || got > Slots+int(64<<10/len(line))+2 {
		t.Fatalf("queued %d, dropped %d", got, l.Drops())
	}
	go io.Copy(io.Discard, pr) // unblock, so Close can finish
	l.Close(5 * time.Second)
	pw.Close()
}

func TestReopenAfterRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	l, err := Open(path, Combined)
	if err != nil {
		t.Fatal(err)
	}
	put := func(s string) {
		b := l.Get()
		l.Put(append(b, s...))
	}
	put("one\n")
	// Reopen flushes first, so "one" is in the file before it moves.
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	put("two\n")
	l.Close(5 * time.Second)
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if string(old) != "one\n" || string(cur) != "two\n" {
		t.Fatalf("rotated %q, current %q", old, cur)
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"": JSON, "json": JSON, "combined": Combined} {
		if f, err := ParseFormat(in); err != nil || f != want {
			t.Fatalf("%q: %v %v", in, f, err)
		}
	}
	if _, err := ParseFormat("common"); err == nil {
		t.Fatal("unknown format accepted")
	}
}
