package loop

import (
	"fmt"
	"net"
	"net/netip"

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
// when listening on port 0 in tests).
func (l *Loop) BoundAddr(i int) (netip.AddrPort, error) {
	if i >= len(l.lfds) {
		return netip.AddrPort{}, fmt.Errorf("no listener %d", i)
	}
	sa, err := unix.Getsockname(l.lfds[i])
	if err != nil {
		return netip.AddrPort{}, err
	}
	return sockaddrToAddrPort(sa), nil
}
