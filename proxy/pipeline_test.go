package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
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
			p := fmt.Sprintf("/%d/%d", g, i)
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
		}
		return nil
	})
	for _, err := range wait() {
		t.Fatal(err)
	}
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
