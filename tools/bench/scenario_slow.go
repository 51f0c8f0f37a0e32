package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// slow-reader and slow-upload: 256 MiB through apex with one side slow.
// apex's RSS grows by less than 32 MiB over the whole transfer: the
// backpressure reaches the socket of the fast side (the kernel's socket
// buffers hold what is in flight), not apex's memory.

func init() {
	registerScenario(scenario{
		Name: "slow-reader",
		Description: "A client reads a 256 MiB response at 8 MiB/s while the backend could send at loopback speed: " +
			"apex's RSS grows by less than 32 MiB over the whole transfer and every byte arrives.",
		Run: func(ctx context.Context, env *scenarioEnv) error {
			return runSlowReader(ctx, env, slowParams{size: 256 << 20, rate: 8 << 20})
		},
	})
	registerScenario(scenario{
		Name: "slow-upload",
		Description: "A 256 MiB upload through apex twice: a client sending at 8 MiB/s to a fast backend, then a fast client " +
			"to a backend reading at 8 MiB/s: apex's RSS grows by less than 32 MiB in each and the backend receives every byte.",
		Run: func(ctx context.Context, env *scenarioEnv) error {
			return runSlowUpload(ctx, env, slowParams{size: 256 << 20, rate: 8 << 20})
		},
	})
}

type slowParams struct {
	size int64 // bytes transferred
	rate int64 // bytes per second of the slow side
}

// slowRSSLimitMiB is the bound on apex's RSS growth during a slow
// transfer.
const slowRSSLimitMiB = 32

// pacer holds a transfer to rate bytes per second: after n bytes it sleeps
// until n/rate seconds have passed since the start.
type pacer struct {
	start time.Time
	rate  int64
}

func (p pacer) wait(n int64) {
	if p.rate <= 0 {
		return
	}
	due := p.start.Add(time.Duration(float64(n) / float64(p.rate) * float64(time.Second)))
	if d := time.Until(due); d > 0 {
		time.Sleep(d)
	}
}

// inFlight samples a − b every 50 ms and keeps the largest difference: the
// bytes the fast side has handed over that the slow side has not taken
// yet (in the kernel's socket buffers or in apex).
func inFlight(a, b *atomic.Int64, stop <-chan struct{}) <-chan int64 {
	out := make(chan int64, 1)
	go func() {
		var peak int64
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				out <- peak
				return
			case <-tk.C:
				peak = max(peak, a.Load()-b.Load())
			}
		}
	}()
	return out
}

func runSlowReader(ctx context.Context, env *scenarioEnv, p slowParams) error {
	rep := env.rep
	var sent atomic.Int64
	chunk := make([]byte, 64<<10)
	for i := range chunk {
		chunk[i] = 'z'
	}
	be, err := startRawServer(func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			h, err := readReqHead(br)
			if err != nil {
				return
			}
			if h.path != "/big" {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				continue
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", p.size)
			for n := int64(0); n < p.size; {
				m, err := c.Write(chunk[:min(int64(len(chunk)), p.size-n)])
				n += int64(m)
				sent.Add(int64(m))
				if err != nil {
					return
				}
			}
		}
	})
	if err != nil {
		return err
	}
	defer be.close()
	a, err := env.startApex(apexSpec{upstream: be.addr()})
	if err != nil {
		return err
	}
	k := &kaClient{addr: a.addr}
	defer k.drop()
	if r, err := k.get("/small", 5*time.Second); err != nil || r.status != 200 {
		return fmt.Errorf("apex does not proxy: %d %v", r.status, err)
	}
	time.Sleep(500 * time.Millisecond)
	logf("slow-reader: GET of %d MiB read at %d MiB/s, about %.0f s", p.size>>20, p.rate>>20, float64(p.size)/float64(p.rate))

	c := k.c
	rss := watchRSS(a.pid())
	var got atomic.Int64
	stop := make(chan struct{})
	flight := inFlight(&sent, &got, stop)
	t0 := time.Now()
	limit := time.Duration(float64(p.size)/float64(p.rate)*float64(time.Second)) + 60*time.Second
	_ = c.SetDeadline(t0.Add(limit))
	io.WriteString(c, "GET /big HTTP/1.1\r\nHost: bench\r\n\r\n")
	cl, err := readHeadCL(k.br)
	var body int64
	if err == nil {
		if cl != p.size {
			err = fmt.Errorf("Content-Length %d, want %d", cl, p.size)
		}
		pc := pacer{start: time.Now(), rate: p.rate}
		buf := make([]byte, 64<<10)
		for err == nil && body < p.size {
			var n int
			n, err = k.br.Read(buf[:min(int64(len(buf)), p.size-body)])
			body += int64(n)
			got.Store(body)
			pc.wait(body)
		}
	}
	took := time.Since(t0)
	close(stop)
	peakFlight := <-flight
	base, peak, last := rss.finish()
	if err != nil {
		return fmt.Errorf("the slow read failed after %d of %d bytes: %v", body, p.size, err)
	}
	g := "slow reader"
	rep.check(g, "body bytes received", float64(body), "", fmt.Sprintf("all %s", groupThousands(p.size)), body == p.size)
	rep.add(g, "transfer time", took.Seconds(), "s")
	rep.add(g, "client read rate", float64(body)/took.Seconds()/(1<<20), "MiB/s")
	rep.add(g, "apex RSS before", kib2mib(base), "MiB")
	rep.add(g, "apex RSS peak", kib2mib(peak), "MiB")
	rep.check(g, "apex RSS growth (peak − before)", kib2mib(peak-base), "MiB", fmt.Sprintf("< %d MiB", slowRSSLimitMiB), kib2mib(peak-base) < slowRSSLimitMiB)
	rep.add(g, "apex RSS after", kib2mib(last), "MiB")
	rep.add(g, "most bytes sent by the backend and not yet read by the client", float64(peakFlight)/(1<<20), "MiB")
	rep.note("the bytes in flight sit in the kernel's socket buffers (backend→apex and apex→client, tcp_rmem/tcp_wmem autotuning) and in apex's output bound (server.output_buffer); the backend's writes block beyond that")
	return nil
}

// readHeadCL reads a response head and returns its Content-Length (-1
// when absent); the status must be 200.
func readHeadCL(br *bufio.Reader) (int64, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || line[9:12] != "200" {
		return 0, fmt.Errorf("status line %q", line)
	}
	cl := int64(-1)
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return 0, err
		}
		if l == "\r\n" || l == "\n" {
			return cl, nil
		}
		if name, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(strings.TrimSpace(name), "Content-Length") {
			if cl, err = strconv.ParseInt(strings.TrimSpace(v), 10, 64); err != nil {
				return 0, err
			}
		}
	}
}

func runSlowUpload(ctx context.Context, env *scenarioEnv, p slowParams) error {
	rep := env.rep
	var received atomic.Int64
	var slowBackend atomic.Bool
	be, err := startRawServer(func(c net.Conn) {
		br := bufio.NewReaderSize(c, 64<<10)
		buf := make([]byte, 64<<10)
		for {
			h, err := readReqHead(br)
			if err != nil {
				return
			}
			pc := pacer{start: time.Now()}
			if slowBackend.Load() {
				pc.rate = p.rate
			}
			var n int64
			for n < h.bodyLen {
				m, err := br.Read(buf[:min(int64(len(buf)), h.bodyLen-n)])
				n += int64(m)
				received.Add(int64(m))
				if err != nil {
					return
				}
				pc.wait(n)
			}
			s := strconv.FormatInt(n, 10)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(s))+"\r\n\r\n"+s)
		}
	})
	if err != nil {
		return err
	}
	defer be.close()
	a, err := env.startApex(apexSpec{upstream: be.addr()})
	if err != nil {
		return err
	}
	chunk := make([]byte, 64<<10)
	for i := range chunk {
		chunk[i] = 'u'
	}
	for _, slow := range []string{"client", "backend"} {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		slowBackend.Store(slow == "backend")
		received.Store(0)
		k := &kaClient{addr: a.addr}
		if r, err := k.get("/small", 5*time.Second); err != nil || r.status != 200 {
			k.drop()
			return fmt.Errorf("apex does not proxy: %d %v", r.status, err)
		}
		time.Sleep(500 * time.Millisecond)
		logf("slow-upload: POST of %d MiB, the %s at %d MiB/s, about %.0f s", p.size>>20, slow, p.rate>>20, float64(p.size)/float64(p.rate))
		c := k.c
		rss := watchRSS(a.pid())
		var sent atomic.Int64
		stop := make(chan struct{})
		flight := inFlight(&sent, &received, stop)
		t0 := time.Now()
		_ = c.SetDeadline(t0.Add(time.Duration(float64(p.size)/float64(p.rate)*float64(time.Second)) + 60*time.Second))
		_, err := fmt.Fprintf(c, "POST /up HTTP/1.1\r\nHost: bench\r\nContent-Length: %d\r\n\r\n", p.size)
		pc := pacer{start: time.Now()}
		if slow == "client" {
			pc.rate = p.rate
		}
		var n int64
		for err == nil && n < p.size {
			var m int
			m, err = c.Write(chunk[:min(int64(len(chunk)), p.size-n)])
			n += int64(m)
			sent.Store(n)
			pc.wait(n)
		}
		var r respInfo
		if err == nil {
			r, err = readResp(k.br)
		}
		took := time.Since(t0)
		close(stop)
		peakFlight := <-flight
		base, peak, last := rss.finish()
		k.drop()
		if err != nil {
			return fmt.Errorf("slow %s: the upload failed after %d of %d bytes sent, %d received by the backend: %v", slow, n, p.size, received.Load(), err)
		}
		g := "slow " + slow
		rep.check(g, "status", float64(r.status), "", "200", r.status == 200)
		rep.check(g, "body bytes received by the backend", float64(received.Load()), "", fmt.Sprintf("all %s", groupThousands(p.size)), received.Load() == p.size)
		rep.add(g, "transfer time", took.Seconds(), "s")
		rep.add(g, "apex RSS before", kib2mib(base), "MiB")
		rep.add(g, "apex RSS peak", kib2mib(peak), "MiB")
		rep.check(g, "apex RSS growth (peak − before)", kib2mib(peak-base), "MiB", fmt.Sprintf("< %d MiB", slowRSSLimitMiB), kib2mib(peak-base) < slowRSSLimitMiB)
		rep.add(g, "apex RSS after", kib2mib(last), "MiB")
		rep.add(g, "most bytes sent by the client and not yet read by the backend", float64(peakFlight)/(1<<20), "MiB")
	}
	return nil
}
