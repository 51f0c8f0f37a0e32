package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// flood: one client pipelines 10,000 requests for 16 KiB responses and
// reads nothing. apex must throttle it (stop reading it while its output
// is full) instead of buffering 160 MiB of responses; once the client
// reads, every response arrives, in order.

func init() {
	registerScenario(scenario{
		Name: "flood",
		Description: "One client pipelines 10,000 GETs for 16 KiB responses without reading: apex stops reading it instead of buffering " +
			"the responses, so few requests reach the backend and apex's RSS barely moves; then the client reads all 10,000, in order.",
		Run: func(ctx context.Context, env *scenarioEnv) error {
			return runFlood(ctx, env, floodParams{requests: 10000, body: 16 << 10, stallFor: time.Second, maxWait: 20 * time.Second})
		},
	})
}

type floodParams struct {
	requests int
	body     int           // response body size; response i has body + i%7 bytes, which checks the order
	stallFor time.Duration // backend hits unchanged this long = throttled
	maxWait  time.Duration // give up waiting for the stall
	server   string        // extra [server] lines for apex
}

// floodMaxHits is the bound on requests that may reach the backend before
// the client reads: the output bound (256 KiB) and the kernel's socket
// buffers (a few MiB on loopback) hold a few hundred 16 KiB responses, far
// below the 10,000 requested.
const floodMaxHits = 2000

func runFlood(ctx context.Context, env *scenarioEnv, p floodParams) error {
	rep := env.rep
	var hits atomic.Int64
	body := bytes.Repeat([]byte("f"), p.body+7)
	be, err := startRawServer(func(c net.Conn) {
		br := bufio.NewReaderSize(c, 64<<10)
		bw := bufio.NewWriterSize(c, 64<<10)
		for {
			h, err := readReqHead(br)
			if err != nil {
				return
			}
			hits.Add(1)
			n, _ := strconv.Atoi(strings.TrimPrefix(h.path, "/"))
			size := p.body + n%7
			fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size)
			bw.Write(body[:size])
			if br.Buffered() == 0 {
				if bw.Flush() != nil {
					return
				}
			}
		}
	})
	if err != nil {
		return err
	}
	defer be.close()
	a, err := env.startApex(apexSpec{upstream: be.addr(), server: p.server})
	if err != nil {
		return err
	}
	k := &kaClient{addr: a.addr}
	if r, err := k.get("/0", 5*time.Second); err != nil || r.status != 200 {
		k.drop()
		return fmt.Errorf("apex does not proxy: %d %v", r.status, err)
	}
	k.drop()
	time.Sleep(500 * time.Millisecond)
	hits.Store(0)

	c, err := net.DialTimeout("tcp", a.addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer closeNow(c)
	var req bytes.Buffer
	for i := 0; i < p.requests; i++ {
		fmt.Fprintf(&req, "GET /%d HTTP/1.1\r\nHost: bench\r\n\r\n", i)
	}
	rss := watchRSS(a.pid())
	writeDone := make(chan error, 1)
	var written atomic.Int64
	go func() {
		_ = c.SetWriteDeadline(time.Now().Add(p.maxWait + 60*time.Second))
		n, err := c.Write(req.Bytes())
		written.Store(int64(n))
		writeDone <- err
	}()
	// Wait until the backend hits hold still.
	t0 := time.Now()
	stalled := int64(-1)
	prev, since := int64(-1), time.Now()
	for time.Since(t0) < p.maxWait && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		cur := hits.Load()
		if cur != prev {
			prev, since = cur, time.Now()
			continue
		}
		if time.Since(since) >= p.stallFor {
			stalled = cur
			break
		}
	}
	base, peak, _ := rss.finish()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	writeBlocked := false
	select {
	case err := <-writeDone:
		writeDone <- err // keep it for the end
	default:
		writeBlocked = true
	}
	g := "before the client reads"
	if stalled < 0 {
		rep.check(g, fmt.Sprintf("requests that reached the backend (still growing after %v)", p.maxWait), float64(hits.Load()), "",
			"stops growing, ≤ "+groupThousands(floodMaxHits), false)
	} else {
		rep.check(g, "requests that reached the backend (then none for "+p.stallFor.String()+")", float64(stalled), "",
			fmt.Sprintf("≤ %s of %s", groupThousands(floodMaxHits), groupThousands(int64(p.requests))), stalled <= floodMaxHits)
	}
	rep.add(g, "client's pipelined write blocked (apex stopped reading it)", b2f(writeBlocked), "")
	rep.add(g, "apex RSS before", kib2mib(base), "MiB")
	rep.check(g, "apex RSS growth (peak − before)", kib2mib(peak-base), "MiB", fmt.Sprintf("< %d MiB", slowRSSLimitMiB), kib2mib(peak-base) < slowRSSLimitMiB)
	rep.add(g, "size of the responses asked for", float64(p.requests)*float64(p.body)/(1<<20), "MiB")

	// Now read everything.
	tRead := time.Now()
	_ = c.SetReadDeadline(tRead.Add(60 * time.Second))
	br := bufio.NewReaderSize(c, 64<<10)
	answered, inOrder := 0, 0
	var readErr error
	for i := 0; i < p.requests; i++ {
		r, err := readResp(br)
		if err != nil {
			readErr = fmt.Errorf("response %d: %v", i, err)
			break
		}
		answered++
		if r.status == 200 && r.bodyLen == int64(p.body+i%7) {
			inOrder++
		}
	}
	drain := time.Since(tRead)
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	extra, _ := io.Copy(io.Discard, br)
	werr := <-writeDone
	g = "after the client reads"
	rep.check(g, "responses received", float64(answered), "", fmt.Sprintf("all %s", groupThousands(int64(p.requests))), answered == p.requests)
	rep.check(g, "… status 200 with the right body, in request order", float64(inOrder), "", fmt.Sprintf("all %s", groupThousands(int64(p.requests))), inOrder == p.requests)
	rep.add(g, "time to read them all", drain.Seconds(), "s")
	rep.add(g, "requests that reached the backend", float64(hits.Load()), "")
	if readErr != nil {
		rep.note("reading stopped at %v", readErr)
	}
	if werr != nil {
		rep.note("the client's pipelined write ended with %v after %d of %d bytes", werr, written.Load(), req.Len())
	}
	if extra > 0 {
		rep.note("%d unexpected bytes after the last response", extra)
	}
	return nil
}
