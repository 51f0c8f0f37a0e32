package loop

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The loop's hot system calls go through RawSyscall, which skips the
// runtime's entersyscall/exitsyscall bookkeeping. That is safe only for
// calls that never block, which is all of these: every socket the loop
// drives is non-blocking and the epoll_wait here has a zero timeout.
//
// Why it matters: while a goroutine is inside syscall.Syscall its P is
// marked as in a system call, and the runtime's sysmon thread takes such a
// P away when it sees the same call on two of its ticks. A loop spends most
// of its time in short reads and writes, so with GOMAXPROCS = 1 sysmon kept
// finding it there: it woke every 20 µs, handed the P to another thread,
// and the loop hopped between threads. Measured in the pinned layout at 16
// connections (docs/BENCHMARKS.md, performance log): sysmon alone used
// about 2 µs of CPU per proxied request before this change.

func rawRead(fd int, p []byte) (int, error)  { return rawRW(unix.SYS_READ, fd, p) }
func rawWrite(fd int, p []byte) (int, error) { return rawRW(unix.SYS_WRITE, fd, p) }

// rawRW is read(2) or write(2) (trap) on fd with p.
func rawRW(trap uintptr, fd int, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	n, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(ptr), uintptr(len(p)))
	if e != 0 {
		return 0, errnoErr(e)
	}
	return int(n), nil
}

// rawPoll is epoll_wait with a zero timeout (epoll_pwait with no signal
// mask, which every Linux architecture has).
func rawPoll(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd),
		uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, errnoErr(e)
	}
	return int(n), nil
}

// rawWait is epoll_wait for up to timeoutMs through RawSyscall: the
// runtime does not know the thread sleeps, so the loop keeps its P and
// pays no entersyscall (see Loop.wait for when it is used).
func rawWait(epfd int, events []unix.EpollEvent, timeoutMs int) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd),
		uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(timeoutMs), 0, 0)
	if e != 0 {
		return 0, errnoErr(e)
	}
	return int(n), nil
}

// errnoErr returns the shared error values for the common errnos, so the
// hot path's EAGAIN allocates nothing (as x/sys/unix does).
func errnoErr(e syscall.Errno) error {
	switch e {
	case unix.EAGAIN:
		return unix.EAGAIN
	case unix.EINTR:
		return unix.EINTR
	}
	return e
}
