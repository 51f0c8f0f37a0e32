package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestDrainUnderLoad: Shutdown while 16 keep-alive clients run. Every
// request Apex began is answered in full (the last one on each busy
// connection with Connection: close); a request can only go unanswered
// when it raced the close of an idle connection, and then the client sees
// a close with no byte of a response, never a cut one. Afterwards no
// request is counted as ended without a response.
func TestDrainUnderLoad(t *testing.T) {
	be := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		io.WriteString(w, "done:"+r.URL.Path)
	})
	s, addr := startProxy(t, "loops = 2", backendTOML(be.addr(), "conns = 8"))

	const clients = 16
	var ok, raced, closes atomic.Int64
	wait := goClients(addr, clients, func(g int, c net.Conn, br *bufio.Reader) error {
		for i := 0; i < 1000; i++ {
			c.SetDeadline(time.Now().Add(10 * time.Second))
			p := fmt.Sprintf("/%d/%d", g, i)
			if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", p); err != nil {
				raced.Add(1)
				return nil
			}
			if _, err := br.Peek(1); err != nil {
				// Closed before any byte of a response: the request
				// raced the close of an idle connection.
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					return fmt.Errorf("client %d: no answer to %s", g, p)
				}
				raced.Add(1)
				return nil
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				return fmt.Errorf("client %d %s: %v", g, p, err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || string(body) != "done:"+p {
				return fmt.Errorf("client %d %s: %d %q %v", g, p, resp.StatusCode, body, err)
			}
			ok.Add(1)
			if resp.Close {
				closes.Add(1)
				return nil
			}
		}
		return nil
	})
	time.Sleep(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for _, err := range wait() {
		t.Error(err)
	}
	t.Logf("%d answered, %d with Connection: close, %d raced an idle close", ok.Load(), closes.Load(), raced.Load())
	if closes.Load() == 0 {
		t.Error("no busy connection got Connection: close on its last response")
	}
	if ok.Load() < clients {
		t.Errorf("only %d requests answered", ok.Load())
	}
	// The loops have stopped (Shutdown waited for them): their counters
	// can be read here.
	var unanswered, total uint64
	for _, w := range s.workers {
		for _, rs := range w.stats.routes {
			unanswered += rs.classes[0]
			for _, n := range rs.classes {
				total += n
			}
		}
	}
	if unanswered != 0 {
		t.Errorf("%d of %d requests Apex began ended without a response", unanswered, total)
	}
}
