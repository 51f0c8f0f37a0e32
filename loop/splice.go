package loop

import "golang.org/x/sys/unix"

// Splicing moves a response body from an upstream socket to a client
// socket through a pipe, with splice(2): the kernel passes page references
// along instead of copying the bytes into the proxy and back out. For a
// 64 KiB body that removes two of the three copies a read and a write cost
// (the profile before: copy to user 6 %, memmove 9 %, copy from user 12 %
// of the proxy's CPU).
//
// Each loop has one pipe, shared by all its connections.
//
// Invariant: the pipe is empty whenever no splice call is running: bytes
// spliced into it are spliced out to the destination in the same call, and
// whatever the destination's socket does not take is read back out of the
// pipe into the destination's output buffer (or dropped with the
// destination when it fails). What is read back, at most pipeCap
// (256 KiB), lands in an empty output buffer (a splice starts only once the
// destination's own output is written), and the source is then paused
// until the destination drains. A connection splices to at most one
// destination and a destination has at most one source (spliceTo and
// spliceFrom point at each other); closing either side ends the pairing.

// SpliceHandler is implemented by a handler that uses SpliceTo: it is told
// how many of the promised bytes went to the destination.
type SpliceHandler interface {
	// Spliced reports that n more bytes read from c went to the
	// destination, and whether the destination's socket was full (the
	// rest of those n bytes wait in its output buffer, and c is paused
	// until the destination drains: its handler's Drained should resume
	// c). The pairing has ended when SpliceLeft() is 0.
	Spliced(c *Conn, n int, full bool)
}

// pipeSize is the capacity asked of the loop's pipe: one call moves up to
// this much.
const pipeSize = 256 << 10

// SpliceTo sends the next n bytes read from c to dst without copying them
// through user space, and reports whether it could set that up: not when c
// has buffered input, when dst is closing or has a source already, or when
// the loop has no pipe. c's handler must implement SpliceHandler; its Data
// is not called for those bytes. dst's own pending output is written
// before any spliced byte.
func (c *Conn) SpliceTo(dst *Conn, n int64) bool {
	l := c.loop
	if n <= 0 || c.fd < 0 || dst.fd < 0 || dst == c || dst.loop != l || c.spliceTo != nil || dst.spliceFrom != nil ||
		len(c.in) > 0 || dst.closeOnDone || dst.lingering || dst.connecting {
		return false
	}
	if _, ok := c.h.(SpliceHandler); !ok {
		return false
	}
	if !l.openPipe() {
		return false
	}
	c.spliceTo, c.spliceLeft = dst, n
	dst.spliceFrom = c
	return true
}

// SpliceLeft is how many promised bytes are still to be spliced (0: none).
func (c *Conn) SpliceLeft() int64 { return c.spliceLeft }

// endSplice ends c's pairing with its destination.
func (c *Conn) endSplice() {
	if d := c.spliceTo; d != nil {
		d.spliceFrom = nil
	}
	c.spliceTo, c.spliceLeft = nil, 0
}

// openPipe makes the loop's pipe on first use; false if it cannot.
func (l *Loop) openPipe() bool {
	if l.pipeOK {
		return true
	}
	if l.pipeFailed {
		return false
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		l.pipeFailed = true
		l.cfg.Logger.Warn("pipe2 failed; response bodies are copied instead of spliced", "loop", l.id, "err", err)
		return false
	}
	l.pipe = p
	l.pipeCap = 64 << 10 // the kernel's default
	if sz, err := unix.FcntlInt(uintptr(p[1]), unix.F_SETPIPE_SZ, pipeSize); err == nil && sz > 0 {
		l.pipeCap = sz
	}
	l.pipeOK = true
	return true
}

func (l *Loop) closePipe() {
	if l.pipeOK {
		unix.Close(l.pipe[0])
		unix.Close(l.pipe[1])
		l.pipeOK = false
	}
}

// splice moves what c has of its promised bytes to its destination. It
// returns false when c should not be read again this turn (nothing more is
// readable, c is paused or closed).
func (l *Loop) splice(c *Conn) bool {
	dst := c.spliceTo
	h := c.h.(SpliceHandler)
	if dst.OutLen() > 0 {
		// The destination's own output goes first; if it cannot all go
		// now, wait for it to drain.
		if !dst.waitOut {
			dst.Flush()
		}
		if c.fd < 0 || c.spliceTo == nil {
			return c.fd >= 0
		}
		if dst.OutLen() > 0 {
			dst.wantDrain = true
			c.readPaused = true
			return false
		}
	}
	want := int(min(c.spliceLeft, int64(l.pipeCap)))
	n, err := rawSplice(c.fd, l.pipe[1], want)
	switch {
	case err == unix.EINTR:
		return true
	case err == unix.EAGAIN:
		c.readable = false
		return false
	case err != nil:
		l.closeConn(c, err)
		return false
	case n == 0:
		c.rdEOF = true
		c.readable = false
		return false
	}
	// A short splice does not prove the socket empty (one non-blocking
	// pass can stop at the pipe's slot count), so c stays readable and
	// the next splice finds out, with EAGAIN.
	l.stats.bytesIn[c.side] += uint64(n)
	l.stats.spliced += uint64(n)
	out := 0
	var werr error
	for out < n {
		m, err := rawSplice(l.pipe[0], dst.fd, n-out)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			werr = err
			break
		}
		out += m
	}
	l.stats.bytesOut[dst.side] += uint64(out)
	dst.written += uint64(out) // what unpipe puts back is counted by Write
	full := false
	switch {
	case out == n:
	case werr == unix.EAGAIN:
		// The destination's socket is full: the rest comes back out of
		// the pipe into its output buffer, sent on its EPOLLOUT; c
		// waits for its Drained.
		full = true
		l.unpipe(dst, n-out)
		if dst.fd >= 0 {
			dst.waitOut = true
			dst.wantDrain = true
			c.readPaused = true
		}
	default:
		// The destination failed (reset, broken pipe): its bytes are
		// dropped with it.
		l.closeConn(dst, werr)
		l.unpipe(dst, n-out)
	}
	if c.spliceTo != nil {
		c.spliceLeft -= int64(n)
		if c.spliceLeft == 0 {
			c.endSplice()
		}
	}
	if c.fd >= 0 {
		h.Spliced(c, n, full)
	}
	return c.fd >= 0 && !c.readPaused
}

// unpipe empties the pipe of its k bytes into dst's output buffer, or
// drops them if dst has closed.
func (l *Loop) unpipe(dst *Conn, k int) {
	for k > 0 {
		m, err := rawRead(l.pipe[0], l.rbuf[:min(k, len(l.rbuf))])
		if err == unix.EINTR {
			continue
		}
		if err != nil || m == 0 {
			// Cannot happen with bytes in the pipe; a pipe in an unknown
			// state is not reused.
			l.cfg.Logger.Error("reading back the splice pipe failed", "loop", l.id, "err", err)
			l.closePipe()
			l.pipeFailed = true
			if dst.fd >= 0 {
				l.closeConn(dst, err)
			}
			return
		}
		k -= m
		dst.Write(l.rbuf[:m]) // nothing once dst has closed
	}
}

// rawSplice is splice(2) between two non-blocking fds without offsets,
// through RawSyscall like the loop's other hot calls (see rawio.go).
func rawSplice(in, out, n int) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_SPLICE, uintptr(in), 0, uintptr(out), 0, uintptr(n),
		unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
	if e != 0 {
		return 0, errnoErr(e)
	}
	return int(r), nil
}
