package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// pipelineBackend answers requests in order on each connection, echoing
// the path; it notes when a request arrived while another was still
// buffered behind it (proof the proxy pipelined), and can drop each
// connection after its first answer.
type pipelineBackend struct {
	*rawBackend
	pipelined atomic.Int64 // requests read with more already buffered
	posts     atomic.Int64 // POSTs read while another request was buffered
}

func startPipelineBackend(t *testing.T, dropAfterFirst bool) *pipelineBackend {
	pb := &pipelineBackend{}
	pb.rawBackend = startRaw(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		bw := bufio.NewWriter(c)
		for n := 0; ; n++ {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, r.Body)
			if br.Buffered() > 0 {
				pb.pipelined.Add(1)
				if r.Method == "POST" {
					pb.posts.Add(1)
				}
			}
			fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(r.URL.Path), r.URL.Path)
			if br.Buffered() == 0 || dropAfterFirst {
				bw.Flush() // answer a batch in one write
			}
			if dropAfterFirst && n == 0 {
				return // whatever was pipelined behind is lost
			}
		}
	})
	return pb
}

// hammer runs clients × perClient keep-alive requests and checks every
// answer matches its request.
func hammer(t *testing.T, addr string, clients, perClient int, method string) {
	t.Helper()
	wait := goClients(addr, clients, func(g int, c net.Conn, br *bufio.Reader) error {
		c.SetDeadline(time.Now().Add(30 * time.Second))
		for i := 0; i < perClient; i++ {
			if err := exchange(c, br, method, fmt.Sprintf("/%d/%d", g, i)); err != nil {
				return err
			}
		}
		return nil
	})
	for _, err := range wait() {
		t.Fatal(err)
	}
}

// exchange sends one request for path p on c (a GET, or a POST with a
// 2-byte body) and checks that the answer is a 200 echoing p.
func exchange(c net.Conn, br *bufio.Reader, method, p string) error {
	if method == "POST" {
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi", p)
	} else {
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", p)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != p {
		return fmt.Errorf("%s %s: got %d %q", method, p, resp.StatusCode, b)
	}
	return nil
}

// burst writes one GET on each of n new connections, as fast as one
// goroutine can, then reads and checks every answer.
func burst(t *testing.T, addr string, n int) {
	t.Helper()
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = dial(t, addr)
	}
	for i, c := range conns {
		fmt.Fprintf(c, "GET /burst/%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
	}
	for i, c := range conns {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if want := fmt.Sprintf("/burst/%d", i); resp.StatusCode != 200 || string(b) != want {
			t.Fatalf("burst %s: got %d %q", want, resp.StatusCode, b)
		}
		c.Close()
	}
}

// With pipeline = 8, replayable requests of one loop turn share upstream
// connections; every client still gets its own response.
func TestUpstreamPipelining(t *testing.T) {
	pb := startPipelineBackend(t, false)
	_, addr := startProxy(t, "loops = 1", backendTOML(pb.addr(), "conns = 2\npipeline = 8"))
	hammer(t, addr, 32, 100, "GET")
	// Requests share a connection only when they are read in the same loop
	// turn; a loop that wakes at once for each request may never see two.
	// Bursts (one request written on each of 32 connections in a row) make
	// that happen; they are bounded, and each answer is checked.
	bursts := 0
	for ; bursts < 50 && ownerMode == "loop" && pb.pipelined.Load() == 0; bursts++ {
		burst(t, addr, 32)
	}
	t.Logf("owner %s: %d requests pipelined upstream, %d bursts needed", ownerMode, pb.pipelined.Load(), bursts)
	if ownerMode == "loop" && pb.pipelined.Load() == 0 {
		t.Fatal("no request was pipelined upstream with pipeline = 8")
	}
	// Non-replayable requests are never pipelined.
	hammer(t, addr, 16, 20, "POST")
	if n := pb.posts.Load(); n != 0 {
		t.Fatalf("%d POSTs were pipelined behind another request", n)
	}
}

// A connection that dies with requests pipelined behind an answered one:
// those (replayable) requests are re-sent and every client gets its answer.
func TestUpstreamPipeliningConnectionDrops(t *testing.T) {
	pb := startPipelineBackend(t, true)
	_, addr := startProxy(t, "loops = 1", backendTOML(pb.addr(), "conns = 4\npipeline = 8"))
	hammer(t, addr, 16, 30, "GET")
}

// requestPaths reads requests from c in a goroutine of its own, calls
// arrived with each one's path as soon as it is read, and passes the paths
// on in order (at most 16 unanswered); the channel closes with c.
func requestPaths(c net.Conn, arrived func(path string)) <-chan string {
	paths := make(chan string, 16)
	go func() {
		defer close(paths)
		br := bufio.NewReader(c)
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			arrived(r.URL.Path)
			paths <- r.URL.Path
		}
	}()
	return paths
}

// answerEach reads requests from c and answers each in a write of its own,
// in order: a 200 whose body is what answer returns for the k-th request
// (from 0), or the request's path if that is empty, with Connection: close
// (and no more answers) when it says last.
func answerEach(c net.Conn, answer func(k int, r *http.Request) (body string, last bool)) {
	br := bufio.NewReader(c)
	for k := 0; ; k++ {
		r, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, r.Body)
		body, last := answer(k, r)
		if body == "" {
			body = r.URL.Path
		}
		if last {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	}
}

// oneByOne opens n connections to addr, then writes one GET on each, 1 ms
// apart (each is read in a loop turn of its own, so none joins another's
// write by being read with it, and all are sent well within joinMaxAge),
// for the paths pathFmt with 0..n-1; then it reads every answer and checks
// that it is a 200 echoing its path (as the backends here do).
func oneByOne(t *testing.T, addr string, n int, pathFmt string) {
	t.Helper()
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = dial(t, addr)
		conns[i].SetDeadline(time.Now().Add(20 * time.Second))
	}
	for i, c := range conns {
		fmt.Fprintf(c, "GET "+pathFmt+" HTTP/1.1\r\nHost: x\r\n\r\n", i)
		time.Sleep(time.Millisecond)
	}
	for i, c := range conns {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if p := fmt.Sprintf(pathFmt, i); resp.StatusCode != 200 || string(b) != p {
			t.Fatalf("%s: got %d %q", p, resp.StatusCode, b)
		}
	}
}

// With every connection open and busy, replayable requests are pipelined
// on them before any waits in the queue: conns = 2 and pipeline = 4 carry
// 8 requests at once. The backend holds every answer until 8 requests
// have reached it (5 s at most), so the test fails if fewer can be in
// flight.
func TestUpstreamPipelineFillsBusyConnections(t *testing.T) {
	const want = 8
	var got atomic.Int64
	var timedOut atomic.Bool
	all := make(chan struct{})
	rb := startRaw(t, func(c net.Conn) {
		paths := requestPaths(c, func(p string) {
			if strings.HasPrefix(p, "/held/") && got.Add(1) == want {
				close(all)
			}
		})
		for p := range paths {
			if p == "/warm" {
				// Answered after 50 ms: two at once open both
				// connections, and once answered they may be joined.
				time.Sleep(50 * time.Millisecond)
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(p), p)
				continue
			}
			select {
			case <-all:
			case <-time.After(5 * time.Second):
				timedOut.Store(true)
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(p), p)
		}
	})
	cfg := fmt.Sprintf("[[backend]]\nname = \"app\"\nservers = [%q]\nowner = \"loop\"\nconns = 2\npipeline = 4\n\n[[route]]\nbackend = \"app\"\n", rb.addr())
	_, addr := startProxy(t, "loops = 1", cfg)
	// Two /warm requests 10 ms apart (separate loop turns; the first is
	// still unanswered, on a connection not yet joinable): both
	// connections open, and answer once.
	w1, w2 := dial(t, addr), dial(t, addr)
	for _, w := range []net.Conn{w1, w2} {
		w.SetDeadline(time.Now().Add(20 * time.Second))
		fmt.Fprintf(w, "GET /warm HTTP/1.1\r\nHost: x\r\n\r\n")
		time.Sleep(10 * time.Millisecond)
	}
	for _, w := range []net.Conn{w1, w2} {
		if resp, err := http.ReadResponse(bufio.NewReader(w), nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("/warm: %v", err)
		}
	}
	oneByOne(t, addr, want, "/held/%d")
	if timedOut.Load() {
		t.Fatalf("only %d of %d requests were in flight at once with conns = 2, pipeline = 4", got.Load(), want)
	}
	if n := rb.conns.Load(); n != 2 {
		t.Fatalf("backend saw %d connections, want 2", n)
	}
}

// A server with Nagle's algorithm on (no TCP_NODELAY) that writes a
// response's head and body separately holds the body until its head is
// acknowledged; a delayed acknowledgement makes that 40 ms a request.
// Apex acknowledges at once while a response is owed: 30 such requests in
// a row take far less than 30 × 40 ms.
func TestNagleServerIsAcknowledgedAtOnce(t *testing.T) {
	rb := startRaw(t, func(c net.Conn) {
		c.(*net.TCPConn).SetNoDelay(false)
		br := bufio.NewReader(c)
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(r.URL.Path))
			io.WriteString(c, r.URL.Path) // a second small write: Nagle holds it
		}
	})
	cfg := fmt.Sprintf("[[backend]]\nname = \"app\"\nservers = [%q]\n%sconns = 1\n\n[[route]]\nbackend = \"app\"\n", rb.addr(), ownerLine())
	_, addr := startProxy(t, "loops = 1", cfg)
	c := dial(t, addr)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	const n = 30
	start := time.Now()
	for i := 0; i < n; i++ {
		p := fmt.Sprintf("/nagle/%d", i)
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", p)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != p {
			t.Fatalf("%s: got %d %q", p, resp.StatusCode, b)
		}
	}
	// Delayed: at least n × 40 ms less the few quick ones of a new
	// connection; not delayed: a few ms. Half of the delayed total
	// separates them with room for a slow machine.
	if d := time.Since(start); d > n*40*time.Millisecond/2 {
		t.Fatalf("%d requests took %v: acknowledgements to the server were delayed", n, d)
	}
}

// Requests queued because every connection's pipeline was full join a
// pipeline as soon as one of its answers completes, not when the
// connection falls idle. conns = 1, pipeline = 4: /q/0 to /q/3 fill the
// connection, /q/4 and /q/5 queue; the backend answers one every 50 ms,
// and /q/4 and /q/5 must reach it while answers are still owed.
func TestQueuedRequestsJoinAPipeline(t *testing.T) {
	var mu sync.Mutex
	owed := map[string]int{} // path -> answers owed when it arrived
	rb := startRaw(t, func(c net.Conn) {
		var pending atomic.Int64 // read and not yet answered
		paths := requestPaths(c, func(p string) {
			mu.Lock()
			owed[p] = int(pending.Add(1)) - 1
			mu.Unlock()
		})
		time.Sleep(300 * time.Millisecond) // all six are sent meanwhile
		for p := range paths {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(p), p)
			pending.Add(-1)
			time.Sleep(50 * time.Millisecond)
		}
	})
	cfg := fmt.Sprintf("[[backend]]\nname = \"app\"\nservers = [%q]\nowner = \"loop\"\nconns = 1\npipeline = 4\n\n[[route]]\nbackend = \"app\"\n", rb.addr())
	_, addr := startProxy(t, "loops = 1", cfg)
	oneByOne(t, addr, 6, "/q/%d")
	mu.Lock()
	defer mu.Unlock()
	for _, p := range []string{"/q/4", "/q/5"} {
		if owed[p] == 0 {
			t.Errorf("%s reached the backend with no answer owed: it waited for the connection to fall idle (owed on arrival: %v)", p, owed)
		}
	}
}

// loopTOML is a one-backend configuration with the loop owner and extra
// [[backend]] lines.
func loopTOML(addr, extra string) string {
	return fmt.Sprintf("[[backend]]\nname = \"app\"\nservers = [%q]\nowner = \"loop\"\n%s\n\n[[route]]\nbackend = \"app\"\n", addr, extra)
}

// A request that may not be pipelined waits in the queue for a connection
// of its own; pipelinable requests that come after it must not keep
// overtaking it by joining the busy connections, or it waits for as long
// as they keep coming.
func TestQueuedPostIsNotOvertaken(t *testing.T) {
	// Each answer 1 ms after the previous one, in a write of its own: they
	// come back in separate reads, and a client's next GET arrives before
	// the connection has drained.
	rb := startRaw(t, func(c net.Conn) {
		answerEach(c, func(int, *http.Request) (string, bool) {
			time.Sleep(time.Millisecond)
			return "", false
		})
	})
	_, addr := startProxy(t, "loops = 1", loopTOML(rb.addr(), "conns = 1\npipeline = 4"))
	stop := make(chan struct{})
	end := time.Now().Add(4 * time.Second) // the GETs' run, at most
	wait := goClients(addr, 4, func(g int, c net.Conn, br *bufio.Reader) error {
		c.SetDeadline(time.Now().Add(20 * time.Second))
		for i := 0; time.Now().Before(end); i++ {
			select {
			case <-stop:
				return nil
			default:
			}
			if err := exchange(c, br, "GET", fmt.Sprintf("/get/%d/%d", g, i)); err != nil {
				return err
			}
		}
		return nil
	})
	time.Sleep(100 * time.Millisecond) // the GETs keep the connection busy
	c := dial(t, addr)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	start := time.Now()
	err := exchange(c, bufio.NewReader(c), "POST", "/post")
	took := time.Since(start)
	close(stop)
	for _, err := range wait() {
		t.Error(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	// It waits for the connection to drain: a few round trips, not the
	// GETs' whole run (they stop once it is answered, or after 4 s).
	if took > 2*time.Second {
		t.Fatalf("the POST waited %v behind pipelined GETs", took)
	}
}

// A connection whose answer is held up by a client that does not read is
// not joined: a request from a later turn goes on another connection
// instead of waiting behind that client.
func TestPipelineSkipsAConnectionPausedForASlowClient(t *testing.T) {
	big := strings.Repeat("x", 8<<20)
	rb := startRaw(t, func(c net.Conn) {
		answerEach(c, func(_ int, r *http.Request) (string, bool) {
			switch r.URL.Path {
			case "/big":
				return big, false
			case "/hold":
				time.Sleep(300 * time.Millisecond)
			}
			return "", false
		})
	})
	_, addr := startProxy(t, "loops = 1", loopTOML(rb.addr(), "conns = 2\npipeline = 4"))
	slow := dial(t, addr) // asks for 8 MiB and reads none of it
	fmt.Fprintf(slow, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(200 * time.Millisecond) // its answer fills the buffers and pauses
	hold := dial(t, addr)
	hold.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(hold, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(10 * time.Millisecond)
	c := dial(t, addr)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("/b, sent while one connection waited on a client that does not read: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "/b" {
		t.Fatalf("/b: got %d %q", resp.StatusCode, b)
	}
}

// Requests pipelined behind an answer that closed the connection are sent
// again one at a time, each alone, not each on a connection of its own:
// conns stays the bound on connections open at once.
func TestResentRequestsRespectConns(t *testing.T) {
	var cur, most atomic.Int64
	var isFirst atomic.Bool // the first connection was accepted
	rb := startRaw(t, func(c net.Conn) {
		n := cur.Add(1)
		defer cur.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		first := isFirst.CompareAndSwap(false, true)
		// The first connection answers /warm (after which it may be
		// joined), then closes after its next answer.
		answerEach(c, func(k int, _ *http.Request) (string, bool) {
			if first && k == 1 {
				time.Sleep(100 * time.Millisecond) // the others join meanwhile
				return "", true
			}
			return "", false
		})
	})
	_, addr := startProxy(t, "loops = 1", loopTOML(rb.addr(), "conns = 1\npipeline = 4"))
	w := dial(t, addr)
	w.SetDeadline(time.Now().Add(20 * time.Second))
	if err := exchange(w, bufio.NewReader(w), "GET", "/warm"); err != nil {
		t.Fatal(err)
	}
	oneByOne(t, addr, 4, "/r/%d")
	if n := rb.conns.Load(); n != 2 {
		t.Errorf("backend accepted %d connections, want 2 (the first, closed after two answers, and one for the re-sent requests)", n)
	}
	if m := most.Load(); m > 1 {
		t.Fatalf("%d connections were open at once with conns = 1", m)
	}
}
