package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apex-epoll/apex/config"
)

// connCounter is a listener that counts the connections open on it, so a
// test can see a retired backend's upstream connections close.
type connCounter struct {
	net.Listener
	open atomic.Int64
}

type countedConn struct {
	net.Conn
	once sync.Once
	ln   *connCounter
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.ln.open.Add(-1) })
	return c.Conn.Close()
}

func (l *connCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.open.Add(1)
	return &countedConn{Conn: c, ln: l}, nil
}

// startNamedBackend answers "name:path" and counts its open connections.
func startNamedBackend(t *testing.T, name string) (*httptest.Server, *connCounter) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cc := &connCounter{Listener: ln}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name+":"+r.URL.Path)
	}))
	srv.Listener = cc
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, cc
}

func reloadConfig(t *testing.T, listen []string, backendAddr, extra string) *config.Config {
	t.Helper()
	var q []string
	for _, l := range listen {
		q = append(q, fmt.Sprintf("%q", l))
	}
	doc := fmt.Sprintf("[server]\nlisten = [%s]\nloops = 2\n\n%s%s", strings.Join(q, ", "), backendTOML(backendAddr, "conns = 4\n"), extra)
	cfg, err := config.Parse("reload.toml", []byte(doc))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, doc)
	}
	return cfg
}

// TestReloadUnderLoad switches the backend and routes ten times while
// keep-alive clients run, with a refused (invalid) reload after each: no
// request fails, each answer comes from one of the two configurations,
// the last one wins, and the upstream connections of the backend no
// longer routed to are closed.
func TestReloadUnderLoad(t *testing.T) {
	a, ac := startNamedBackend(t, "A")
	b, _ := startNamedBackend(t, "B")
	aAddr := strings.TrimPrefix(a.URL, "http://")
	bAddr := strings.TrimPrefix(b.URL, "http://")
	listen := []string{"127.0.0.1:0"}
	s, err := New(reloadConfig(t, listen, aAddr, ""), testLogger())
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { shutdownNow(s) })
	addr := s.Addrs()[0].String()

	const clients = 16
	var stop atomic.Bool
	var ok, seenA, seenB, seenFixed atomic.Int64
	wait := goClients(addr, clients, func(g int, c net.Conn, br *bufio.Reader) error {
		deadline := time.Now().Add(60 * time.Second)
		for i := 0; !stop.Load() && time.Now().Before(deadline); i++ {
			c.SetDeadline(time.Now().Add(10 * time.Second))
			p := fmt.Sprintf("/%d/%d", g, i)
			if i%7 == 0 {
				p = "/fixed" + p
			}
			if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", p); err != nil {
				return fmt.Errorf("client %d request %d: write: %v", g, i, err)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				return fmt.Errorf("client %d request %d: %v", g, i, err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 {
				return fmt.Errorf("client %d %s: status %d err %v", g, p, resp.StatusCode, err)
			}
			switch string(body) {
			case "A:" + p:
				seenA.Add(1)
			case "B:" + p:
				seenB.Add(1)
			case "fixed":
				seenFixed.Add(1)
			default:
				return fmt.Errorf("client %d %s: body %q", g, p, body)
			}
			ok.Add(1)
		}
		return nil
	})
	fixed := "\n[[route]]\npath_prefix = \"/fixed\"\nreturn = 200\nbody = \"fixed\"\n"
	time.Sleep(100 * time.Millisecond)
	for i := 0; i < 10; i++ {
		// Odd reloads: backend B, and /fixed answered by Apex (the fixed
		// route must come first to win).
		cfg := reloadConfig(t, listen, aAddr, "")
		if i%2 == 0 {
			doc := fmt.Sprintf("[server]\nlisten = [\"127.0.0.1:0\"]\nloops = 2\n%s\n%s", fixed, backendTOML(bAddr, "conns = 4\n"))
			if cfg, err = config.Parse("reload.toml", []byte(doc)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Reload(cfg); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		time.Sleep(40 * time.Millisecond)
		// An invalid one in between: refused, nothing changes.
		bad := reloadConfig(t, listen, bAddr, "")
		bad.Server.Loops = 5
		if err := s.Reload(bad); err == nil {
			t.Fatalf("reload %d: a loops change was accepted", i)
		}
		time.Sleep(40 * time.Millisecond)
	}
	// The tenth reload (i = 9) went back to A; one more to B, then the
	// clients stop.
	doc := fmt.Sprintf("[server]\nlisten = [\"127.0.0.1:0\"]\nloops = 2\n%s\n%s", fixed, backendTOML(bAddr, "conns = 4\n"))
	last, err := config.Parse("reload.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(last); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	stop.Store(true)
	for _, err := range wait() {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	t.Logf("%d requests: %d from A, %d from B, %d fixed", ok.Load(), seenA.Load(), seenB.Load(), seenFixed.Load())
	if seenA.Load() == 0 || seenB.Load() == 0 || seenFixed.Load() == 0 {
		t.Fatal("every configuration should have served requests")
	}
	if failed, succeeded := s.Reloads(); failed != 10 || succeeded != 11 {
		t.Fatalf("reload counts: %d failed, %d succeeded", failed, succeeded)
	}
	// The last configuration wins, and A's connections drain away.
	c := dial(t, addr)
	br := bufio.NewReader(c)
	if _, body := roundTrip(t, c, br, "GET /after HTTP/1.1\r\nHost: x\r\n\r\n", "GET"); body != "B:/after" {
		t.Fatalf("after the last reload: %q", body)
	}
	waitFor(t, 5*time.Second, "A's upstream connections to close", func() bool { return ac.open.Load() == 0 })
}

// TestReloadListeners adds and removes a listen address: connections on
// the address that stays are untouched, the new one accepts, the removed
// one refuses.
func TestReloadListeners(t *testing.T) {
	be, _ := startNamedBackend(t, "A")
	beAddr := strings.TrimPrefix(be.URL, "http://")
	p1, p2 := freePort(t), freePort(t)
	s, err := New(reloadConfig(t, []string{p1}, beAddr, ""), testLogger())
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { shutdownNow(s) })
	c1 := dial(t, p1)
	br1 := bufio.NewReader(c1)
	if _, body := roundTrip(t, c1, br1, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n", "GET"); body != "A:/1" {
		t.Fatalf("got %q", body)
	}
	if err := s.Reload(reloadConfig(t, []string{p1, p2}, beAddr, "")); err != nil {
		t.Fatal(err)
	}
	c2 := dial(t, p2)
	br2 := bufio.NewReader(c2)
	if _, body := roundTrip(t, c2, br2, "GET /2 HTTP/1.1\r\nHost: x\r\n\r\n", "GET"); body != "A:/2" {
		t.Fatalf("new listener: got %q", body)
	}
	if _, body := roundTrip(t, c1, br1, "GET /3 HTTP/1.1\r\nHost: x\r\n\r\n", "GET"); body != "A:/3" {
		t.Fatalf("kept connection: got %q", body)
	}
	// Drop p1: its listener closes, its established connection stays.
	if err := s.Reload(reloadConfig(t, []string{p2}, beAddr, "")); err != nil {
		t.Fatal(err)
	}
	if _, body := roundTrip(t, c1, br1, "GET /4 HTTP/1.1\r\nHost: x\r\n\r\n", "GET"); body != "A:/4" {
		t.Fatalf("connection on a removed listener: got %q", body)
	}
	if c, err := net.DialTimeout("tcp", p1, time.Second); err == nil {
		c.Close()
		t.Fatalf("removed listener %s still accepts", p1)
	}
	if got := s.Addrs(); len(got) != 1 || got[0].String() != p2 {
		t.Fatalf("Addrs after reload: %v", got)
	}
}

// TestReloadRefusedKeepsRunning: a change that needs a restart, or a
// listen address that cannot be bound, is refused and nothing changes.
func TestReloadRefusedKeepsRunning(t *testing.T) {
	be, _ := startNamedBackend(t, "A")
	other, _ := startNamedBackend(t, "B")
	beAddr := strings.TrimPrefix(be.URL, "http://")
	otherAddr := strings.TrimPrefix(other.URL, "http://")
	s, err := New(reloadConfig(t, []string{"127.0.0.1:0"}, beAddr, ""), testLogger())
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { shutdownNow(s) })
	addr := s.Addrs()[0].String()

	loops := reloadConfig(t, []string{"127.0.0.1:0"}, otherAddr, "")
	loops.Server.Loops = 3
	if err := s.Reload(loops); err == nil || !strings.Contains(err.Error(), "reload.toml: server.loops") {
		t.Fatalf("loops change: %v", err)
	}
	// The port of a listening backend cannot be bound by Apex.
	taken := reloadConfig(t, []string{"127.0.0.1:0", otherAddr}, otherAddr, "")
	if err := s.Reload(taken); err == nil || !strings.Contains(err.Error(), otherAddr) {
		t.Fatalf("unbindable listen address: %v", err)
	}
	wantFailed := uint64(2)
	if ownerMode == "loop" {
		// Started with loop owners only, the loops sleep in epoll_wait: a
		// goroutine-owned backend would starve, so it needs a restart.
		flip := reloadConfig(t, []string{"127.0.0.1:0"}, otherAddr, "")
		flip.Backends[0].Owner = "goroutine"
		if err := s.Reload(flip); err == nil || !strings.Contains(err.Error(), "reload.toml: backend.owner") {
			t.Fatalf("goroutine owner under blocking loops: %v", err)
		}
		wantFailed++
	}
	c := dial(t, addr)
	br := bufio.NewReader(c)
	if _, body := roundTrip(t, c, br, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n", "GET"); body != "A:/x" {
		t.Fatalf("after refused reloads: %q", body)
	}
	if failed, succeeded := s.Reloads(); failed != wantFailed || succeeded != 0 {
		t.Fatalf("reload counts: %d failed, %d succeeded", failed, succeeded)
	}
	if got := s.Config().Backends[0].Servers[0].Addr; got != beAddr {
		t.Fatalf("running config changed to %s", got)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func shutdownNow(s *Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.Shutdown(ctx)
}
