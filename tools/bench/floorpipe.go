package main

import (
	"bytes"
	"net/netip"
	"strconv"

	"golang.org/x/sys/unix"
)

// The floor-pipe target is the floor forwarder with Apex's upstream
// batching (`pipeline = 8`) and nothing else: one thread, one epoll; the
// requests read in one turn leave on one upstream connection (up to
// floorPipeDepth of them, then the next connection), in one write at the
// end of the turn; the responses are split by their Content-Length and
// written to their clients in order as they come. It makes the system
// calls that batching proxy cannot avoid for the batches the clients'
// arrival pattern allows (only what arrived in the same turn shares a
// write), and does no other work: no parsing beyond the framing, no
// routing, no timers, no limits. Its CPU time per request is the floor for
// a proxy that batches as Apex does, on this machine and layout.
//
// Like the floor it is only to be measured: it assumes one whole request
// per client read (wrk does not pipeline), responses with a Content-Length
// (the bench's backend), waits on a full socket, and on any upstream error
// closes every client that was waiting on that connection.

// floorPipeDepth is the most requests in flight on one upstream connection:
// the pipeline depth of the apex-pipe8 variant.
const floorPipeDepth = 8

// fpClient is a client connection of the floor-pipe. gone is set when it
// closes, so a response still on its way is dropped instead of reaching a
// new connection that reused the descriptor.
type fpClient struct {
	fd   int
	gone bool
}

// fpUpstream is an upstream connection: q holds the clients whose requests
// it carries, oldest first (len(q) <= floorPipeDepth); out is the requests
// of this turn not yet written; rem is what is left of q[0]'s response (0:
// its head is next).
type fpUpstream struct {
	fd   int
	q    []*fpClient
	out  []byte
	head []byte // a response head that came in pieces, and what followed it
	rem  int
	turn uint64 // the turn it last took requests in
}

// floorPipe is the forwarder's state, owned by its one thread. Like the
// floor it bounds nothing (clients, upstream connections, a turn's output):
// it is a bench tool that wrk's fixed connection count bounds.
type floorPipe struct {
	epfd    int
	ua      netip.AddrPort
	clients map[int]*fpClient
	ups     map[int]*fpUpstream
	idle    []*fpUpstream
	batch   *fpUpstream   // the connection taking this turn's requests
	flush   []*fpUpstream // connections with requests to write this turn
	turn    uint64        // counts from 1: an upstream's turn 0 means never
}

// serveFloorPipe runs the floor-pipe forwarder on listen with the upstream
// at upstream. It returns only on error (never nil).
func serveFloorPipe(listen, upstream string) error {
	ua, err := netip.ParseAddrPort(upstream)
	if err != nil {
		return err
	}
	f := &floorPipe{ua: ua, clients: map[int]*fpClient{}, ups: map[int]*fpUpstream{}, turn: 1}
	return floorServe(listen, func(lfd, epfd int) {
		f.epfd = epfd
		f.accept(lfd)
	}, func(fd int, buf []byte) {
		if c := f.clients[fd]; c != nil {
			f.request(c, buf)
		} else if u := f.ups[fd]; u != nil {
			f.response(u, buf)
		}
	}, f.endTurn)
}

// endTurn writes each upstream connection's requests of this turn, in one
// write each.
func (f *floorPipe) endTurn() {
	for _, u := range f.flush {
		if u.fd >= 0 && len(u.out) > 0 && !floorWriteAll(u.fd, u.out) {
			f.drop(u)
		}
		u.out = u.out[:0]
	}
	f.flush = f.flush[:0]
	f.batch = nil
	f.turn++
}

// accept takes the clients waiting on lfd.
func (f *floorPipe) accept(lfd int) {
	for {
		fd, _, err := unix.Accept4(lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			return
		}
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		unix.EpollCtl(f.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)})
		f.clients[fd] = &fpClient{fd: fd}
	}
}

// request reads one request from c and queues it on this turn's upstream
// connection.
func (f *floorPipe) request(c *fpClient, buf []byte) {
	n := floorRead(c.fd, buf)
	if n <= 0 {
		if n < 0 {
			f.closeClient(c)
		}
		return
	}
	u := f.batch
	if u == nil || len(u.q) == floorPipeDepth {
		if u = f.upstream(); u == nil {
			f.closeClient(c)
			return
		}
		f.batch = u
	}
	if u.turn != f.turn {
		u.turn = f.turn
		f.flush = append(f.flush, u)
	}
	u.q = append(u.q, c)
	u.out = append(u.out, buf[:n]...)
}

// upstream takes an idle upstream connection, or dials one; nil if the
// dial failed.
func (f *floorPipe) upstream() *fpUpstream {
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
	unix.SetNonblock(fd, true)
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	unix.EpollCtl(f.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)})
	u := &fpUpstream{fd: fd}
	f.ups[fd] = u
	return u
}

// response reads what u holds and writes each response's bytes to its
// client as they come; u goes back to idle when its last one is answered.
func (f *floorPipe) response(u *fpUpstream, buf []byte) {
	n := floorRead(u.fd, buf)
	if n <= 0 {
		if n < 0 {
			f.drop(u)
		}
		return
	}
	in := buf[:n]
	if len(u.head) > 0 { // a head came in pieces: go on from its start
		u.head = append(u.head, in...)
		in = u.head
	}
	for len(in) > 0 {
		if len(u.q) == 0 {
			f.drop(u) // bytes nobody asked for
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
		if c := u.q[0]; !c.gone && !floorWriteAll(c.fd, part) {
			f.closeClient(c)
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

// contentLength is the Content-Length in a response head, 0 without one.
func contentLength(head []byte) int {
	const name = "\r\ncontent-length:"
	for i := 0; i+len(name) <= len(head); i++ {
		if head[i] != '\r' || !bytes.EqualFold(head[i:i+len(name)], []byte(name)) {
			continue
		}
		v := head[i+len(name):]
		if e := bytes.IndexByte(v, '\r'); e >= 0 {
			v = v[:e]
		}
		n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
		if err != nil {
			return 0
		}
		return n
	}
	return 0
}

func (f *floorPipe) closeClient(c *fpClient) {
	if c.gone {
		return
	}
	c.gone = true
	delete(f.clients, c.fd)
	unix.Close(c.fd)
}

// drop closes an upstream connection that failed and every client waiting
// on it.
func (f *floorPipe) drop(u *fpUpstream) {
	for _, c := range u.q {
		f.closeClient(c)
	}
	u.q = nil
	delete(f.ups, u.fd)
	unix.Close(u.fd)
	u.fd = -1 // endTurn skips it if it is still on the flush list
	for i, x := range f.idle {
		if x == u {
			f.idle = append(f.idle[:i], f.idle[i+1:]...)
			break
		}
	}
	if f.batch == u {
		f.batch = nil
	}
}
