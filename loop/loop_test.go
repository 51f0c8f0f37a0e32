package loop

import (
	"bytes"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// echo is a test handler: it writes back what it reads, honours the output
// bound by pausing reads, and closes on EOF once its output is written.
type echo struct {
	opened, closed, drained, timeouts atomic.Int64
	timeout                           int64
}

func (e *echo) Opened(c *Conn) {
	e.opened.Add(1)
	if e.timeout > 0 {
		c.SetTimeout(e.timeout)
	}
}
func (e *echo) Data(c *Conn, in []byte) int {
	c.Write(in)
	if c.OutFull() {
		c.PauseRead()
	}
	if e.timeout > 0 {
		c.SetTimeout(e.timeout)
	}
	return len(in)
}
func (e *echo) ReadClosed(c *Conn) { c.CloseWhenFlushed() }
func (e *echo) Drained(c *Conn) {
	e.drained.Add(1)
	c.ResumeRead()
}
func (e *echo) Timeout(c *Conn)           { e.timeouts.Add(1); c.Close() }
func (e *echo) Closed(c *Conn, err error) { e.closed.Add(1) }

func startEcho(t *testing.T, cfg Config, h *echo) (*Group, string) {
	t.Helper()
	g, err := NewGroup(cfg, []string{"127.0.0.1:0"}, func(*Loop) Handler { return h })
	if err != nil {
		t.Fatal(err)
	}
	g.Start()
	t.Cleanup(func() {
		for _, l := range g.Loops {
			l.Post(&Task{Run: l.Stop})
		}
		g.Wait()
	})
	ap, err := g.Loops[0].BoundAddr(0)
	if err != nil {
		t.Fatal(err)
	}
	return g, ap.String()
}

func TestEchoAndHalfClose(t *testing.T) {
	h := &echo{}
	_, addr := startEcho(t, Config{Loops: 2}, h)
	for i := 0; i < 8; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		msg := bytes.Repeat([]byte("abcdefgh"), 1000*(i+1))
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		// Half-close: the peer must still get every byte back.
		c.(*net.TCPConn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("conn %d: echoed %d bytes, want %d", i, len(got), len(msg))
		}
		c.Close()
	}
	if h.opened.Load() != 8 {
		t.Fatalf("opened %d, want 8", h.opened.Load())
	}
}

// A client that does not read: the loop must stop reading it once the
// output bound is reached instead of buffering without limit, then resume
// when the client catches up.
func TestBackpressurePausesReads(t *testing.T) {
	h := &echo{}
	_, addr := startEcho(t, Config{Loops: 1, OutputBound: 64 << 10}, h)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	total := 32 << 20
	chunk := bytes.Repeat([]byte{'x'}, 64<<10)
	// Write without reading until the kernel stops us: the loop has paused.
	c.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
	sent := 0
	for sent < total {
		n, err := c.Write(chunk)
		sent += n
		if err != nil {
			break
		}
	}
	if sent >= total {
		t.Fatalf("wrote all %d bytes with nobody reading: no backpressure", total)
	}
	// Now read everything back while finishing the writes.
	c.SetWriteDeadline(time.Time{})
	done := make(chan int)
	go func() {
		n, _ := io.Copy(io.Discard, io.LimitReader(c, int64(total)))
		done <- int(n)
	}()
	for sent < total {
		n, err := c.Write(chunk[:min(len(chunk), total-sent)])
		sent += n
		if err != nil {
			t.Fatal(err)
		}
	}
	select {
	case n := <-done:
		if n != total {
			t.Fatalf("read back %d, want %d", n, total)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("echo stalled")
	}
	if h.drained.Load() == 0 {
		t.Fatal("Drained never called although output had to wait")
	}
}

func TestTimeoutFires(t *testing.T) {
	h := &echo{timeout: int64(200 * time.Millisecond)}
	_, addr := startEcho(t, Config{Loops: 1}, h)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if err != io.EOF {
		t.Fatalf("read: %v, want EOF from the timeout close", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 2*time.Second {
		t.Fatalf("closed after %v, want about 200ms", d)
	}
	if h.timeouts.Load() != 1 {
		t.Fatalf("timeouts = %d", h.timeouts.Load())
	}
}

// Many goroutines posting at once: every task runs exactly once.
func TestDoorDeliversEveryTask(t *testing.T) {
	h := &echo{}
	g, _ := startEcho(t, Config{Loops: 1}, h)
	l := g.Loops[0]
	const producers, per = 8, 5000
	var ran atomic.Int64
	done := make(chan struct{})
	for p := 0; p < producers; p++ {
		go func() {
			tasks := make([]Task, per)
			for i := range tasks {
				tasks[i].Run = func() { ran.Add(1) }
				l.Post(&tasks[i])
			}
			done <- struct{}{}
		}()
	}
	for p := 0; p < producers; p++ {
		<-done
	}
	deadline := time.Now().Add(5 * time.Second)
	for ran.Load() != producers*per && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := ran.Load(); got != producers*per {
		t.Fatalf("ran %d tasks, want %d", got, producers*per)
	}
}

func TestPostAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race; run without it (.ci/run does)")
	}
	h := &echo{}
	g, _ := startEcho(t, Config{Loops: 1}, h)
	l := g.Loops[0]
	ch := make(chan struct{}, 1)
	task := &Task{Run: func() { ch <- struct{}{} }}
	allocs := testing.AllocsPerRun(1000, func() {
		l.Post(task)
		<-ch
	})
	if allocs != 0 {
		t.Fatalf("Post+Run allocates %.1f per call", allocs)
	}
}

// Deadlines anywhere inside a tick fire within about a tick of passing,
// never a wheel turn late.
func TestWheelFiresEveryDeadline(t *testing.T) {
	var w wheel
	base := int64(1_000_000) * tickNanos
	w.lastTick = base / tickNanos
	conns := make([]*Conn, 200)
	for i := range conns {
		conns[i] = &Conn{fd: i, slot: -1}
		w.arm(conns[i], base+int64(i)*tickNanos/7+1)
	}
	fired := map[*Conn]int64{}
	for now := base; now <= base+40*tickNanos; now += tickNanos / 3 {
		w.advance(now, func(c *Conn) { fired[c] = now })
	}
	for _, c := range conns {
		at, ok := fired[c]
		if !ok {
			t.Fatalf("deadline %d never fired", c.deadline-base)
		}
		if at < c.deadline || at > c.deadline+2*tickNanos {
			t.Fatalf("deadline %d fired at %d", c.deadline-base, at-base)
		}
	}
	if w.armed != 0 {
		t.Fatalf("armed = %d after all fired", w.armed)
	}
}

// BenchmarkEchoRoundTrip is one 64-byte keep-alive round trip through a
// loop (read, Data, Write, flush); -benchmem shows it allocates nothing.
func BenchmarkEchoRoundTrip(b *testing.B) {
	h := &echo{}
	g, err := NewGroup(Config{Loops: 1}, []string{"127.0.0.1:0"}, func(*Loop) Handler { return h })
	if err != nil {
		b.Fatal(err)
	}
	g.Start()
	defer func() {
		for _, l := range g.Loops {
			l.Post(&Task{Run: l.Stop})
		}
		g.Wait()
	}()
	ap, _ := g.Loops[0].BoundAddr(0)
	c, err := net.Dial("tcp", ap.String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg := bytes.Repeat([]byte("x"), 64)
	buf := make([]byte, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPost measures a cross-goroutine hand-off through the door.
func BenchmarkPost(b *testing.B) {
	h := &echo{}
	g, err := NewGroup(Config{Loops: 1}, []string{"127.0.0.1:0"}, func(*Loop) Handler { return h })
	if err != nil {
		b.Fatal(err)
	}
	g.Start()
	defer func() {
		for _, l := range g.Loops {
			l.Post(&Task{Run: l.Stop})
		}
		g.Wait()
	}()
	l := g.Loops[0]
	ch := make(chan struct{}, 1)
	task := &Task{Run: func() { ch <- struct{}{} }}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l.Post(task)
		<-ch
	}
}

func TestRetract(t *testing.T) {
	l, err := newLoop(0, Config{OutputBound: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer l.closeFDs()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	c := &Conn{fd: fds[0], loop: l, slot: -1}
	defer unix.Close(fds[0])
	c.WriteString("keep ")
	mark := c.Written()
	c.WriteString("HTTP/1.1 200 OK\r\n")
	if !c.Retract(mark) || c.Written() != mark {
		t.Fatal("pending output not retracted")
	}
	c.WriteString("502")
	c.Flush()
	buf := make([]byte, 64)
	n, _ := unix.Read(fds[1], buf)
	if string(buf[:n]) != "keep 502" {
		t.Fatalf("peer got %q", buf[:n])
	}
	// Once sent, bytes cannot be taken back.
	mark = c.Written() - 3
	if c.Retract(mark) {
		t.Fatal("retracted bytes already sent")
	}
}
