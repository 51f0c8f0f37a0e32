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

// With pipeline = 8, replayable requests of one loop turn share upstream
// connections; every client still gets its own response.
func TestUpstreamPipelining(t *testing.T) {
	pb := startPipelineBackend(t, false)
	_, addr := startProxy(t, "loops = 1", backendTOML(pb.addr(), "conns = 2\npipeline = 8"))
	hammer(t, addr, 32, 100, "GET")
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
