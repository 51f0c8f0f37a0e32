package main

import (
	"bytes"
	"net/netip"

	"golang.org/x/sys/unix"
)

// The floor-uring target is the floor-pipe on io_uring: the same batching
// (the requests read in one turn leave on one upstream connection, up to
// floorPipeDepth of them, in one send at the end of the turn; responses go
// to their clients in order, split by Content-Length), but every accept,
// recv and send is a submission queue entry, and a loop turn is a single
// io_uring_enter that submits the turn's entries and waits for the next
// completions. Each connection has one multishot recv armed for its life,
// reading into buffers provided to the kernel; the recvs run as deferred
// task work when this thread enters the kernel
// (IORING_SETUP_DEFER_TASKRUN). So a turn makes one system call where the
// floor-pipe makes an epoll_wait, a read per ready socket and a write per
// answer. Its CPU time per request is the floor of a proxy that
// batches as Apex does and pays no system call per operation.
//
// Like the floor-pipe it is only to be measured: it assumes one whole
// request per client read (wrk does not pipeline; requests fit one 16 KiB
// buffer) and responses with a Content-Length, and on an upstream error closes every client waiting on
// that connection. It bounds nothing (wrk's fixed connection count does).

const (
	urAccept = iota
	urRecv
	urSend
)

// urConn is a client or upstream connection of the floor-uring.
//
// Invariant: it stays in floorURing.conns while ops > 0, that is while the
// kernel may still read sending, even after it is gone.
type urConn struct {
	id       uint64
	fd       int
	up       bool   // an upstream connection
	out      []byte // bytes to send once the send in flight completes
	sending  []byte // the bytes of the send in flight
	inFlight bool   // a send is in flight
	flushing bool   // on this turn's flush list
	ops      int    // operations in flight
	gone     bool

	// Upstream connections only: q holds the clients whose requests it
	// carries, oldest first (len(q) <= floorPipeDepth); rem is what is left
	// of q[0]'s response (0: its head is next); head keeps a response head
	// that came in pieces, and what followed it.
	q    []*urConn
	head []byte
	rem  int
}

// floorURing is the forwarder's state, owned by its one locked thread.
type floorURing struct {
	r      *uring
	lfd    int
	ua     netip.AddrPort
	conns  map[uint64]*urConn
	nextID uint64
	idle   []*urConn
	batch  *urConn   // the upstream connection taking this turn's requests
	flush  []*urConn // connections with bytes to send this turn
}

// serveFloorURing runs the floor-uring forwarder on listen with the
// upstream at upstream. It returns only on error (never nil).
func serveFloorURing(listen, upstream string) error {
	ua, err := netip.ParseAddrPort(upstream)
	if err != nil {
		return err
	}
	lfd, epfd, err := floorListen(listen) // locks the thread, as the ring needs
	if err != nil {
		return err
	}
	unix.Close(epfd)
	// Blocking sockets throughout: io_uring waits for them itself (it arms
	// a poll), and O_NONBLOCK could surface EAGAIN on its worker paths.
	if err := unix.SetNonblock(lfd, false); err != nil {
		return err
	}
	r, err := newURing(4096)
	if err != nil {
		return err
	}
	// Every buffer goes back as soon as its completion is handled, so a
	// turn holds only what its recvs filled (a 64 KiB answer fills 4).
	// When they run out, a multishot recv ends with ENOBUFS and is armed
	// again (complete).
	if err := r.provideBuffers(512, 16<<10); err != nil {
		return err
	}
	f := &floorURing{r: r, lfd: lfd, ua: ua, conns: map[uint64]*urConn{}, nextID: 1}
	r.accept(lfd, urAccept)
	for {
		if err := r.enter(1); err != nil {
			return err
		}
		r.completions(f.complete)
		f.endTurn()
	}
}

// complete handles one completion: data is the connection's id << 2 | the
// kind of operation, res its result, flags the kernel's (a recv's buffer,
// whether its multishot stays armed).
func (f *floorURing) complete(data uint64, res int32, flags uint32) {
	kind := data & 3
	if kind == urAccept {
		if res >= 0 {
			f.open(int(res), false)
		}
		f.r.accept(f.lfd, urAccept)
		return
	}
	var in []byte
	if flags&iouCQEFBuffer != 0 {
		var bid uint16
		bid, in = f.r.buf(res, flags)
		defer f.r.giveBuf(bid) // its bytes are copied or dropped by then
	}
	c := f.conns[data>>2]
	if c == nil {
		return
	}
	if kind == urSend || flags&iouCQEFMore == 0 {
		c.ops--
	}
	if c.gone {
		if c.ops == 0 {
			delete(f.conns, c.id)
		}
		return
	}
	switch kind {
	case urRecv:
		if res > 0 {
			if c.up {
				f.response(c, in)
			} else {
				f.request(c, in)
			}
		}
		switch {
		case c.gone, flags&iouCQEFMore != 0:
		case res > 0 || res == -int32(unix.ENOBUFS):
			f.recv(c) // the multishot ended but the connection did not
		default:
			f.fail(c)
		}
	case urSend:
		c.inFlight = false
		switch {
		case res < 0:
			f.fail(c)
		case int(res) < len(c.sending):
			c.sending = c.sending[res:]
			f.startSend(c, c.sending)
		case len(c.out) > 0:
			c.sending, c.out = c.out, c.sending[:0]
			f.startSend(c, c.sending)
		}
	}
}

// open registers a new connection on fd and starts reading it.
func (f *floorURing) open(fd int, up bool) *urConn {
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	c := &urConn{id: f.nextID, fd: fd, up: up}
	f.nextID++
	f.conns[c.id] = c
	f.recv(c)
	return c
}

// recv arms c's multishot recv.
func (f *floorURing) recv(c *urConn) {
	c.ops++
	f.r.recvMulti(c.fd, c.id<<2|urRecv)
}

func (f *floorURing) startSend(c *urConn, b []byte) {
	c.ops++
	c.inFlight = true
	f.r.send(c.fd, b, c.id<<2|urSend)
}

// queue adds b to what c sends at the end of the turn.
func (f *floorURing) queue(c *urConn, b []byte) {
	c.out = append(c.out, b...)
	if !c.flushing {
		c.flushing = true
		f.flush = append(f.flush, c)
	}
}

// endTurn starts a send for each connection with bytes to send and none in
// flight: one send per connection and turn.
func (f *floorURing) endTurn() {
	for _, c := range f.flush {
		c.flushing = false
		if !c.gone && !c.inFlight && len(c.out) > 0 {
			c.sending, c.out = c.out, c.sending[:0]
			f.startSend(c, c.sending)
		}
	}
	clear(f.flush)
	f.flush = f.flush[:0]
	f.batch = nil
}

// request queues the request c sent on this turn's upstream connection.
func (f *floorURing) request(c *urConn, req []byte) {
	u := f.batch
	if u == nil || len(u.q) == floorPipeDepth {
		if u = f.upstream(); u == nil {
			f.close(c)
			return
		}
		f.batch = u
	}
	u.q = append(u.q, c)
	f.queue(u, req)
}

// upstream takes an idle upstream connection, or dials one; nil if the
// dial failed.
func (f *floorURing) upstream() *urConn {
	if n := len(f.idle); n > 0 {
		u := f.idle[n-1]
		f.idle = f.idle[:n-1]
		return u
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	if err := unix.Connect(fd, &unix.SockaddrInet4{Port: int(f.ua.Port()), Addr: f.ua.Addr().As4()}); err != nil {
		unix.Close(fd)
		return nil
	}
	return f.open(fd, true)
}

// response queues what u read for the clients it answers; u goes back to
// idle when its last one is answered.
func (f *floorURing) response(u *urConn, in []byte) {
	if len(u.head) > 0 { // a head came in pieces: go on from its start
		u.head = append(u.head, in...)
		in = u.head
	}
	for len(in) > 0 {
		if len(u.q) == 0 {
			f.fail(u) // bytes nobody asked for
			return
		}
		if u.rem == 0 {
			end := bytes.Index(in, []byte("\r\n\r\n"))
			if end < 0 {
				u.head = append(u.head[:0], in...) // memmove when in is u.head's tail
				return
			}
			u.rem = end + 4 + contentLength(in[:end])
		}
		part := in[:min(u.rem, len(in))]
		in = in[len(part):]
		u.rem -= len(part)
		if c := u.q[0]; !c.gone {
			f.queue(c, part)
		}
		if u.rem == 0 {
			copy(u.q, u.q[1:])
			u.q[len(u.q)-1] = nil
			u.q = u.q[:len(u.q)-1]
			if len(u.q) == 0 {
				f.idle = append(f.idle, u)
			}
		}
	}
	u.head = u.head[:0]
}

// fail closes c after an error or end of stream; an upstream connection
// takes the clients waiting on it along.
func (f *floorURing) fail(c *urConn) {
	if c.up {
		for _, w := range c.q {
			f.close(w)
		}
		c.q = nil
		for i, x := range f.idle {
			if x == c {
				f.idle = append(f.idle[:i], f.idle[i+1:]...)
				break
			}
		}
		if f.batch == c {
			f.batch = nil
		}
	}
	f.close(c)
}

// close shuts c's socket down, which ends the operations still in flight
// on it, and closes it; c leaves conns with its last completion.
func (f *floorURing) close(c *urConn) {
	if c.gone {
		return
	}
	c.gone = true
	unix.Shutdown(c.fd, unix.SHUT_RDWR)
	unix.Close(c.fd)
	if c.ops == 0 {
		delete(f.conns, c.id)
	}
}
