package loop

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"golang.org/x/sys/unix"
)

// listenReusePort opens a non-blocking TCP listener on addr with
// SO_REUSEPORT, so each loop gets its own accept queue and the kernel
// spreads new connections across loops without a thundering herd.
func listenReusePort(addr string, backlog int) (int, error) {
	ap, err := resolve(addr)
	if err != nil {
		return -1, err
	}
	family := unix.AF_INET
	if ap.Addr().Is6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return -1, err
	}
	if err := setupListener(fd, ap, backlog); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func setupListener(fd int, ap netip.AddrPort, backlog int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		return err
	}
	var sa unix.Sockaddr
	if ap.Addr().Is6() {
		unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
		sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	} else {
		sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return err
	}
	return unix.Listen(fd, backlog)
}

// resolve turns "host:port" into an address; host may be an IP literal,
// empty (all IPv4 addresses) or a name such as localhost.
func resolve(addr string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ta, err := net.ResolveTCPAddr("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return netip.AddrPort{}, err
	}
	ap := ta.AddrPort()
	if !ap.Addr().IsValid() {
		ap = netip.AddrPortFrom(netip.IPv4Unspecified(), ap.Port())
	}
	if ap.Addr().Is4In6() {
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if ap.Port() == 0 && port != "0" {
		return netip.AddrPort{}, fmt.Errorf("bad port in %q", addr)
	}
	return ap, nil
}

// BoundAddr returns the local address of the loop's i-th listener (useful
// when listening on port 0 in tests). Call before the loops start or on
// the loop goroutine.
func (l *Loop) BoundAddr(i int) (netip.AddrPort, error) {
	if i >= len(l.lfds) {
		return netip.AddrPort{}, fmt.Errorf("no listener %d", i)
	}
	return boundAddr(l.lfds[i])
}

func boundAddr(fd int) (netip.AddrPort, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return sockaddrToAddrPort(sa), nil
}

// listenAll opens one SO_REUSEPORT listener on spec per loop. Port 0 is
// resolved by the first bind; the other loops join that port.
func (g *Group) listenAll(spec string) ([]int, netip.AddrPort, error) {
	fds := make([]int, 0, len(g.Loops))
	addr := spec
	var ap netip.AddrPort
	for range g.Loops {
		fd, err := listenReusePort(addr, g.cfg.Backlog)
		if err != nil {
			closeAll(fds)
			return nil, ap, fmt.Errorf("listen %s: %w", spec, err)
		}
		if len(fds) == 0 {
			if ap, err = boundAddr(fd); err != nil {
				unix.Close(fd)
				return nil, ap, fmt.Errorf("listen %s: %w", spec, err)
			}
			addr = ap.String()
		}
		fds = append(fds, fd)
	}
	return fds, ap, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// Addrs returns the bound listen addresses (port 0 resolved), in the order
// they were configured. Safe from any goroutine.
func (g *Group) Addrs() []netip.AddrPort {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]netip.AddrPort(nil), g.bound...)
}

// SetListeners changes the listen set of running loops to specs: addresses
// already listened on keep their sockets (and their accept queues), new
// ones are bound on every loop first, and only when all binds succeed are
// removed ones closed. On error nothing changed. Call from any goroutine
// other than the loops', while they run.
func (g *Group) SetListeners(specs []string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	type added struct {
		spec string
		fds  []int
		ap   netip.AddrPort
	}
	var add []added
	for _, s := range specs {
		if slices.Contains(g.spec, s) {
			continue
		}
		fds, ap, err := g.listenAll(s)
		if err != nil {
			for _, a := range add {
				closeAll(a.fds)
			}
			return err
		}
		add = append(add, added{s, fds, ap})
	}
	// Register the new sockets on every loop first; only when all of them
	// are in does any old listener close, so a failure changes nothing.
	var errs []error
	for i, l := range g.Loops {
		runOn(l, func() {
			for _, a := range add {
				if err := l.addListener(a.fds[i], a.spec); err != nil {
					unix.Close(a.fds[i])
					errs = append(errs, err)
				}
			}
		})
	}
	if len(errs) > 0 {
		for _, l := range g.Loops {
			runOn(l, func() { l.removeListeners(g.spec) }) // closes the added ones
		}
		return errors.Join(errs...)
	}
	for _, l := range g.Loops {
		runOn(l, func() { l.removeListeners(specs) })
	}
	bound := make([]netip.AddrPort, 0, len(specs))
	for _, s := range specs {
		if k := slices.Index(g.spec, s); k >= 0 {
			bound = append(bound, g.bound[k])
			continue
		}
		for _, a := range add {
			if a.spec == s {
				bound = append(bound, a.ap)
			}
		}
	}
	g.spec = append([]string(nil), specs...)
	g.bound = bound
	return nil
}

// removeListeners closes the listeners whose address is not in keep.
// Connections waiting in their accept queues are refused by the kernel.
func (l *Loop) removeListeners(keep []string) {
	fds, specs := l.lfds[:0], l.lspec[:0]
	for i, fd := range l.lfds {
		if slices.Contains(keep, l.lspec[i]) {
			fds = append(fds, fd)
			specs = append(specs, l.lspec[i])
			continue
		}
		unix.Close(fd)
	}
	l.lfds, l.lspec = fds, specs
}

// runOn runs f on l's goroutine and waits for it. l must be running.
func runOn(l *Loop, f func()) {
	done := make(chan struct{})
	l.Post(&Task{Run: func() { f(); close(done) }})
	<-done
}
