package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apex-epoll/apex/config"
)

// testLogger is quiet unless APEX_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("APEX_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startProxy runs Apex on 127.0.0.1:0 with the given TOML (without a
// [server] listen line; extra server keys may be passed in serverExtra).
func startProxy(t *testing.T, serverExtra, body string) (*Server, string) {
	return startProxyB(t, serverExtra, body)
}

func startProxyB(t testing.TB, serverExtra, body string) (*Server, string) {
	t.Helper()
	doc := "[server]\nlisten = \"127.0.0.1:0\"\n" + serverExtra + "\n" + body
	cfg, err := config.Parse("test.toml", []byte(doc))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, doc)
	}
	s, err := New(cfg, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s, s.Addrs()[0].String()
}

// ownerMode is the backend owner every test backend uses; TestMain runs
// the whole suite once per mode, so both owners pass the same tests.
var ownerMode = "goroutine"

func TestMain(m *testing.M) {
	if os.Getenv(fdChildEnv) != "" {
		runFDLimitChild() // a child process of TestFDExhaustion
		return
	}
	code := 0
	for _, mode := range []string{"goroutine", "loop"} {
		ownerMode = mode
		fmt.Fprintf(os.Stderr, "=== proxy tests with owner = %q\n", mode)
		if c := m.Run(); c != 0 {
			fmt.Fprintf(os.Stderr, "=== FAILED with owner = %q\n", mode)
			code = c
		}
	}
	os.Exit(code)
}

// ownerLine is the owner setting for a test [[backend]].
func ownerLine() string { return fmt.Sprintf("owner = %q\n", ownerMode) }

// backendTOML is a one-backend, one-route configuration.
func backendTOML(addr string, extra string) string {
	return fmt.Sprintf("[[backend]]\nname = \"app\"\nservers = [%q]\n%s%s\n[[route]]\nbackend = \"app\"\n", addr, ownerLine(), extra)
}

// countingBackend is a real net/http server that counts requests.
type countingBackend struct {
	*httptest.Server
	hits atomic.Int64
}

func startBackend(t *testing.T, h http.HandlerFunc) *countingBackend {
	t.Helper()
	cb := &countingBackend{}
	cb.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cb.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(cb.Close)
	return cb
}

func (cb *countingBackend) addr() string { return strings.TrimPrefix(cb.URL, "http://") }

// rawBackend accepts connections and runs serve on each (in its own
// goroutine); for backends that must misbehave byte by byte.
type rawBackend struct {
	ln    net.Listener
	conns atomic.Int64
}

func startRaw(t *testing.T, serve func(c net.Conn)) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rb := &rawBackend{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			rb.conns.Add(1)
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return rb
}

func (rb *rawBackend) addr() string { return rb.ln.Addr().String() }

// readRequestHead reads one request head from br (for raw backends).
func readRequestHead(br *bufio.Reader) (*http.Request, error) {
	return http.ReadRequest(br)
}

// dial opens a raw client connection to the proxy.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes raw request bytes and reads one response.
func roundTrip(t *testing.T, c net.Conn, br *bufio.Reader, raw string, method string) (*http.Response, string) {
	t.Helper()
	if raw != "" {
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return resp, string(b)
}

// expectClosed asserts the server closes c without sending more bytes.
func expectClosed(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := br.ReadByte()
	if err == nil {
		rest, _ := br.Peek(br.Buffered())
		t.Fatalf("expected close, got byte %q then %q", b, rest)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("connection not closed within 5s")
	}
}

// goClients starts n clients, each with its own connection to addr,
// running fn(g, c, br) on it; the connection is closed when fn returns.
// wait blocks until all are done and returns their errors (a failed dial
// is one too).
func goClients(addr string, n int, fn func(g int, c net.Conn, br *bufio.Reader) error) (wait func() []error) {
	errs := make(chan error, n)
	for g := 0; g < n; g++ {
		go func(g int) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			errs <- fn(g, c, bufio.NewReader(c))
		}(g)
	}
	return func() []error {
		var out []error
		for g := 0; g < n; g++ {
			if err := <-errs; err != nil {
				out = append(out, err)
			}
		}
		return out
	}
}
