package main

import (
	"bytes"
	"fmt"
	"net/netip"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The floor target is the cheapest thing that can stand where a proxy
// stands: one thread, one epoll, each client connection paired with its own
// upstream connection, bytes forwarded blind in both directions. It parses
// nothing, routes nothing, times nothing and never batches: per request it
// makes exactly the system calls a non-pipelining proxy cannot avoid (read
// the client, write the upstream, read the upstream, write the client, and
// its share of epoll_wait). Its CPU time per request is therefore the floor
// for a proxy on this machine and layout; a proxy's distance to it is its
// own overhead.
//
// It is not a proxy: a full socket makes it wait for that socket (poll)
// instead of serving others, and it keeps no bound on anything. It exists
// only to be measured (target "floor").

// serveFloor runs the floor forwarder on listen, pairing each accepted
// connection with a new connection to upstream. It returns only on error
// (never nil).
func serveFloor(listen, upstream string) error {
	ua, err := netip.ParseAddrPort(upstream)
	if err != nil {
		return err
	}
	peer := map[int]int{} // fd -> the fd its bytes go to
	return floorServe(listen, func(lfd, epfd int) { floorAccept(lfd, epfd, ua, peer) },
		func(fd int, buf []byte) {
			to, ok := peer[fd]
			if ok && !floorForward(fd, to, buf) {
				unix.Close(fd)
				unix.Close(to)
				delete(peer, fd)
				delete(peer, to)
			}
		}, nil)
}

// floorServe is the loop of the floor, the floor-pipe and the origin: it
// listens on listen, and for each event calls accept (the listener) or
// ready (a connection, with a 64 KiB buffer to read into), then endTurn
// (if not nil) once the events of a wait are handled. It returns only on
// error.
func floorServe(listen string, accept func(lfd, epfd int), ready func(fd int, buf []byte), endTurn func()) error {
	lfd, epfd, err := floorListen(listen)
	if err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := floorWait(epfd, events)
		if err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			if fd := int(events[i].Fd); fd == lfd {
				accept(lfd, epfd)
			} else {
				ready(fd, buf)
			}
		}
		if endTurn != nil {
			endTurn()
		}
	}
}

// floorListen locks the thread and opens a listener on listen and a
// level-triggered epoll that watches it.
func floorListen(listen string) (lfd, epfd int, err error) {
	runtime.LockOSThread()
	la, err := netip.ParseAddrPort(listen)
	if err != nil {
		return -1, -1, err
	}
	lfd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, -1, err
	}
	unix.SetsockoptInt(lfd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Port: int(la.Port()), Addr: la.Addr().As4()}); err != nil {
		return -1, -1, err
	}
	if err := unix.Listen(lfd, 4096); err != nil {
		return -1, -1, err
	}
	if epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return -1, -1, err
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, lfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(lfd)}); err != nil {
		return -1, -1, err
	}
	return lfd, epfd, nil
}

// floorWait is one epoll_wait. It is bounded (100 ms), so that the runtime
// can stop this thread for a GC between events even when no traffic comes.
func floorWait(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 100, 0, 0)
	if e == unix.EINTR {
		return 0, nil
	}
	if e != 0 {
		return 0, fmt.Errorf("epoll_wait: %v", e)
	}
	return int(n), nil
}

// The origin target stands where a proxy stands but has no upstream: it
// answers each read with the backend's response for the path on the
// request line, as the bench's backend would. It makes, per request, only
// the client side's system calls (one read, one write, its share of
// epoll_wait), which any proxy makes whatever it does upstream, so its CPU
// time per request is the floor of a proxy that batches its upstream side
// perfectly (whose upstream cost per request tends to zero). Like the floor
// it is only to be measured: it assumes one request per read (wrk does not
// pipeline) and waits on a full socket.

// serveOrigin runs the origin responder on listen. It returns only on
// error (never nil).
func serveOrigin(listen string) error {
	r := newResponder()
	return floorServe(listen, originAccept, func(fd int, buf []byte) {
		if !originAnswer(fd, r, buf) {
			unix.Close(fd)
		}
	}, nil)
}

func originAccept(lfd, epfd int) {
	for {
		cfd, _, err := unix.Accept4(lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			return
		}
		unix.SetsockoptInt(cfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, cfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(cfd)})
	}
}

// originAnswer reads one request from fd and writes its response; false
// when the connection is done.
func originAnswer(fd int, r *responder, buf []byte) bool {
	n := floorRead(fd, buf)
	if n <= 0 {
		return n == 0
	}
	resp := r.notFound
	// "GET /path HTTP/1.1": the path ends at the second space.
	if line := buf[:n]; bytes.HasPrefix(line, []byte("GET ")) {
		if end := bytes.IndexByte(line[4:], ' '); end >= 0 {
			if b, ok := r.byPath[string(line[4:4+end])]; ok {
				resp = b
			}
		}
	}
	return floorWriteAll(fd, resp)
}

// floorAccept accepts what is waiting and dials an upstream for each.
func floorAccept(lfd, epfd int, ua netip.AddrPort, peer map[int]int) {
	for {
		cfd, _, err := unix.Accept4(lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			return
		}
		ufd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err == nil {
			err = unix.Connect(ufd, &unix.SockaddrInet4{Port: int(ua.Port()), Addr: ua.Addr().As4()})
			if err == nil {
				err = unix.SetNonblock(ufd, true)
			}
		}
		if err != nil {
			unix.Close(cfd)
			if ufd >= 0 {
				unix.Close(ufd)
			}
			continue
		}
		for _, fd := range []int{cfd, ufd} {
			unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
			unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)})
		}
		peer[cfd], peer[ufd] = ufd, cfd
	}
}

// floorForward reads what from holds (one read: the epoll is
// level-triggered, so anything left brings it back) and writes it all to
// to; false when either side is done.
func floorForward(from, to int, buf []byte) bool {
	n := floorRead(from, buf)
	if n <= 0 {
		return n == 0
	}
	return floorWriteAll(to, buf[:n])
}

// floorRead is one read(2) of fd into buf: the bytes read (> 0), 0 when
// there is nothing now (EAGAIN, EINTR), or -1 when the connection is done
// (end of stream or an error).
func floorRead(fd int, buf []byte) int {
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
	switch {
	case e == unix.EAGAIN || e == unix.EINTR:
		return 0
	case e != 0 || n == 0:
		return -1
	}
	return int(n)
}

// floorWriteAll writes out to fd, waiting in poll while the socket is
// full; false on an error.
func floorWriteAll(to int, out []byte) bool {
	for len(out) > 0 {
		m, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(to), uintptr(unsafe.Pointer(&out[0])), uintptr(len(out)))
		switch {
		case e == unix.EAGAIN:
			pfd := []unix.PollFd{{Fd: int32(to), Events: unix.POLLOUT}}
			unix.Poll(pfd, 1000)
			continue
		case e == unix.EINTR:
			continue
		case e != 0:
			return false
		}
		out = out[m:]
	}
	return true
}
