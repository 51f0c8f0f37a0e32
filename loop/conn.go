package loop

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Conn is one client connection, owned by exactly one loop. Every method
// must be called on that loop's goroutine (inside a Handler callback or a
// Task); none is safe for concurrent use.
//
// Invariant: 0 <= outOff <= len(out); pending output is out[outOff:] and
// its length never exceeds what the handler chose to Write (the handler is
// responsible for stopping at OutFull, which is how backpressure works);
// in holds only unconsumed input; fd == -1 once closed; spliceTo != nil
// exactly while spliceLeft > 0, and then spliceTo.spliceFrom == c (a pair
// ends when either side closes), and in is empty while c splices.
type Conn struct {
	fd   int
	loop *Loop
	h    Handler

	in     []byte // unconsumed input, pooled; nil when empty
	out    []byte // pending output, pooled; nil when empty
	outOff int

	readPaused  bool  // handler asked for no more Data
	readable    bool  // the socket may hold unread bytes (edge-triggered: we owe a read)
	rdhup       bool  // epoll reported the peer's FIN or a hang-up
	rdEOF       bool  // peer shut its write side (read returned 0)
	eofReported bool  // ReadClosed has been called
	waitOut     bool  // a write hit EAGAIN; EPOLLOUT will tell us when to go on
	closeOnDone bool  // close once out is written
	lingering   bool  // write side shut; discarding input until EOF or deadline
	scheduled   bool  // on the loop's ready list
	connecting  bool  // a Dial not yet completed: output is held
	wantDrain   bool  // OutFull said true: call Drained once output is empty
	side        uint8 // 0 accepted, 1 dialed (which loopStats counters it feeds)

	written uint64 // bytes handed to Write so far

	// timer wheel links (see timer.go)
	deadline     int64
	slot         int
	tprev, tnext *Conn

	// ready-list link
	rnext *Conn

	// splicing (see splice.go): c's next spliceLeft input bytes go to
	// spliceTo; spliceFrom is the connection splicing into c.
	spliceTo, spliceFrom *Conn
	spliceLeft           int64
	readMax              int // a read takes at most this much (0: the loop's 64 KiB buffer)

	remote netip.AddrPort

	// Ctx is the handler's per-connection state.
	Ctx any
}

// Written is the number of bytes handed to Write and WriteString so far
// (queued or sent).
func (c *Conn) Written() uint64 { return c.written }

// Retract takes back the output handed to Write since Written() returned
// mark, if none of it has reached the socket yet, and reports whether it
// did. A proxy uses it to replace a response head it queued with an error
// when the body right behind it turns out broken: the client then never
// sees a byte of the bad response.
func (c *Conn) Retract(mark uint64) bool {
	pending := uint64(len(c.out) - c.outOff)
	if c.fd < 0 || mark > c.written || c.written-mark > pending {
		return false
	}
	c.out = c.out[:len(c.out)-int(c.written-mark)]
	c.written = mark
	return true
}

// Loop returns the loop that owns c.
func (c *Conn) Loop() *Loop { return c.loop }

// RemoteAddr is the peer's address.
func (c *Conn) RemoteAddr() netip.AddrPort { return c.remote }

// Connecting reports whether a Dial is still in progress.
func (c *Conn) Connecting() bool { return c.connecting }

// Closed reports whether c has been closed.
func (c *Conn) Closed() bool { return c.fd < 0 }

// OutLen is the number of bytes written by the handler but not yet taken by
// the kernel.
func (c *Conn) OutLen() int { return len(c.out) - c.outOff }

// OutFull reports whether pending output has reached the loop's bound; a
// handler stops feeding c (and so stops reading whoever feeds it) until
// Drained is called, which a true answer arranges.
func (c *Conn) OutFull() bool {
	if c.OutLen() >= c.loop.cfg.OutputBound {
		c.wantDrain = true
		return true
	}
	return false
}

// WantDrained asks for a Drained call once pending output is empty, whether
// or not OutFull has reported true.
func (c *Conn) WantDrained() { c.wantDrain = true }

// PauseRead stops delivering Data until ResumeRead.
func (c *Conn) PauseRead() { c.readPaused = true }

// ReadPaused reports whether PauseRead is in effect.
func (c *Conn) ReadPaused() bool { return c.readPaused }

// ResumeRead lets Data flow again. Input already buffered is offered again
// on this loop turn (after the current callback returns), so a handler can
// call it to process a pipelined request it left unconsumed.
func (c *Conn) ResumeRead() {
	if c.fd < 0 {
		return
	}
	c.readPaused = false
	if len(c.in) > 0 || c.readable || (c.rdEOF && !c.eofReported) {
		c.loop.schedule(c)
	}
}

// SetReadMax caps each read of c at n bytes (0: no cap beyond the loop's
// 64 KiB buffer). A handler that splices uses it so that the first read of
// a large response takes its head and little more, leaving the rest in
// the socket to be spliced.
func (c *Conn) SetReadMax(n int) { c.readMax = n }

// Buffered is the unconsumed input held for c.
func (c *Conn) Buffered() int { return len(c.in) }

// SetTimeout arms c's single deadline d nanoseconds from the loop's clock,
// replacing any earlier one; d <= 0 disarms it. Timeout is called when it
// passes.
func (c *Conn) SetTimeout(d int64) {
	if c.fd < 0 || c.lingering {
		return
	}
	if d <= 0 {
		c.loop.wheel.disarm(c)
		return
	}
	c.loop.wheel.arm(c, c.loop.now+d)
}

// Write queues b for sending; it is copied, so the caller may reuse b at
// once. Nothing reaches the socket until Flush (or the end of the current
// loop turn), so a handler can compose a response from pieces at the cost
// of one write.
func (c *Conn) Write(b []byte) {
	if c.fd < 0 || len(b) == 0 {
		return
	}
	c.written += uint64(len(b))
	l := c.loop
	if c.out == nil {
		c.out = l.bufs.get(len(b))
	} else if cap(c.out)-len(c.out) < len(b) && c.outOff > 0 {
		// compact before growing
		n := copy(c.out, c.out[c.outOff:])
		c.out = c.out[:n]
		c.outOff = 0
	}
	c.out = l.bufs.grow(c.out, len(b))
	c.out = append(c.out, b...)
	if !c.scheduled {
		l.schedule(c)
	}
}

// WriteString is Write for a string, without a conversion allocation.
func (c *Conn) WriteString(s string) {
	if c.fd < 0 || len(s) == 0 {
		return
	}
	c.written += uint64(len(s))
	l := c.loop
	if c.out == nil {
		c.out = l.bufs.get(len(s))
	}
	c.out = l.bufs.grow(c.out, len(s))
	c.out = append(c.out, s...)
	if !c.scheduled {
		l.schedule(c)
	}
}

// Flush writes pending output now. Output left over (the kernel's buffer is
// full) is sent when the socket becomes writable; Drained follows.
func (c *Conn) Flush() {
	if c.fd < 0 || c.waitOut || c.connecting {
		return
	}
	for c.outOff < len(c.out) {
		n, err := rawWrite(c.fd, c.out[c.outOff:])
		if n > 0 {
			c.outOff += n
			c.loop.stats.bytesOut[c.side] += uint64(n)
		}
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			if err == unix.EAGAIN {
				c.waitOut = true
				return
			}
			c.loop.closeConn(c, err)
			return
		}
	}
	c.loop.bufs.put(c.out)
	c.out, c.outOff = nil, 0
	if c.closeOnDone {
		c.startLinger()
	}
}

// CloseWhenFlushed closes c once its pending output is written. The close
// lingers: the write side is shut first and input is read and dropped for a
// short while, so a client still sending (a body we refused) gets our
// response instead of a reset (RFC 9112 §9.6).
func (c *Conn) CloseWhenFlushed() {
	if c.fd < 0 {
		return
	}
	c.closeOnDone = true
	c.readPaused = false
	if c.OutLen() == 0 {
		c.startLinger()
	} else if !c.scheduled {
		c.loop.schedule(c)
	}
}

func (c *Conn) startLinger() {
	if c.lingering || c.fd < 0 {
		return
	}
	if c.rdEOF {
		c.loop.closeConn(c, nil)
		return
	}
	unix.Shutdown(c.fd, unix.SHUT_WR)
	c.loop.wheel.arm(c, c.loop.now+c.loop.cfg.LingerTimeout)
	c.lingering = true
	c.readPaused = false
	if c.in != nil {
		c.loop.bufs.put(c.in)
		c.in = nil
	}
	c.loop.schedule(c) // drain what is already readable
}

// Close closes c at once, dropping pending output. Handler.Closed is called
// before Close returns.
func (c *Conn) Close() { c.loop.closeConn(c, nil) }

// AckNow makes the kernel send at once the acknowledgement it is holding
// back (delayed ACK) for data read on c, if any (TCP_QUICKACK). The
// kernel goes back to delaying on its own, so it acts on what was read so
// far only.
func (c *Conn) AckNow() {
	if c.fd < 0 {
		return
	}
	one := int32(1)
	unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(c.fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK,
		uintptr(unsafe.Pointer(&one)), 4, 0)
}
