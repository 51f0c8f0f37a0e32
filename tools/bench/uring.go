package main

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A minimal io_uring on raw system calls, for the floor-uring target: the
// rings, submission queue entries for accept, multishot recv into provided
// buffers, and send, and one io_uring_enter per loop turn that submits
// what was queued and waits for completions. No liburing: the layouts
// below are the kernel's (include/uapi/linux/io_uring.h; Linux 6.1 or
// later for IORING_SETUP_DEFER_TASKRUN), and the packed store in giveBuf
// assumes a little-endian machine (amd64, arm64).

const (
	iouOpAccept = 13
	iouOpSend   = 26
	iouOpRecv   = 27

	iouSetupCoopTaskrun  = 1 << 8
	iouSetupSingleIssuer = 1 << 12
	iouSetupDeferTaskrun = 1 << 13

	iouFeatSingleMmap = 1 << 0

	iouEnterGetevents = 1 << 0
	iouEnterExtArg    = 1 << 3

	iouOffSQEs = 0x10000000

	iouSQEBufferSelect  = 1 << 5 // flags: take a buffer from the group in bufIndex
	iouRecvMultishot    = 1 << 1 // ioprio of recv: stay armed, one completion per read
	iouRegisterPbufRing = 22
	iouCQEFBuffer       = 1 << 0
	iouCQEFMore         = 1 << 1 // a multishot operation stays armed
	iouCQEBufferShift   = 16
)

// iouParams is struct io_uring_params.
type iouParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  struct {
		head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
		userAddr                                                        uint64
	}
	cqOff struct {
		head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
		userAddr                                                        uint64
	}
}

// iouSQE is struct io_uring_sqe (64 bytes).
type iouSQE struct {
	opcode      uint8
	flags       uint8
	ioprio      uint16
	fd          int32
	off         uint64
	addr        uint64
	len         uint32
	opFlags     uint32
	userData    uint64
	bufIndex    uint16
	personality uint16
	spliceFdIn  int32
	addr3       uint64
	_           uint64
}

// iouCQE is struct io_uring_cqe (16 bytes).
type iouCQE struct {
	userData uint64
	res      int32
	flags    uint32
}

// iouBufReg is struct io_uring_buf_reg.
type iouBufReg struct {
	ringAddr    uint64
	ringEntries uint32
	bgid        uint16
	flags       uint16
	resv        [3]uint64
}

// iouBuf is struct io_uring_buf, an entry of a provided-buffer ring.
type iouBuf struct {
	addr uint64
	len  uint32
	bid  uint16
	resv uint16 // in entry 0: the ring's tail
}

// iouGeteventsArg is struct io_uring_getevents_arg: the wait's timeout.
type iouGeteventsArg struct {
	sigmask   uint64
	sigmaskSz uint32
	minWait   uint32
	ts        uint64
}

// uring is one ring, used by one locked thread (no SQPOLL: the kernel reads
// the submission queue only in enter, so an SQE may be filled after the
// tail that covers it is published). A send's bytes are the caller's to
// keep until its completion; a provided buffer is the kernel's from
// giveBuf until a completion names it. The kernel holds addresses of Go
// heap memory (ts, bufMem, the callers' send buffers): the Go heap does
// not move, and the ring and its callers keep them reachable.
//
// Invariant: the SQEs between the ring's head and tail are filled and not
// yet consumed by the kernel, at most len(sqes) of them; enter submits
// them all.
type uring struct {
	fd             int
	ring, sqeMem   []byte
	sqHead, sqTail *uint32
	sqMask         uint32
	sqes           []iouSQE
	cqHead, cqTail *uint32
	cqMask         uint32
	cqes           []iouCQE
	sends          uint32 // sends filled since the last enter
	ts             unix.Timespec
	arg            iouGeteventsArg

	// The provided buffers that multishot recvs read into (group 0):
	// bufMem holds bufN buffers of bufSize bytes; bufRing hands them to
	// the kernel, bufTail counts the buffers ever handed.
	bufRing       []iouBuf
	bufMem        []byte
	bufN, bufSize int
	bufTail       uint16
}

// newURing sets up a ring of entries submission slots with deferred task
// running: completions are produced only when this thread enters the
// kernel to wait, never by interrupting it. The calling goroutine must be
// locked to its thread.
func newURing(entries uint32) (*uring, error) {
	var p iouParams
	p.flags = iouSetupSingleIssuer | iouSetupDeferTaskrun | iouSetupCoopTaskrun
	fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	if e != 0 {
		return nil, fmt.Errorf("io_uring_setup: %v", e)
	}
	if p.features&iouFeatSingleMmap == 0 {
		unix.Close(int(fd))
		return nil, fmt.Errorf("io_uring: the kernel lacks IORING_FEAT_SINGLE_MMAP")
	}
	size := max(p.sqOff.array+p.sqEntries*4, p.cqOff.cqes+p.cqEntries*uint32(unsafe.Sizeof(iouCQE{})))
	ring, err := unix.Mmap(int(fd), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		unix.Close(int(fd))
		return nil, fmt.Errorf("io_uring rings: %v", err)
	}
	sqeMem, err := unix.Mmap(int(fd), iouOffSQEs, int(p.sqEntries)*int(unsafe.Sizeof(iouSQE{})), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		unix.Munmap(ring)
		unix.Close(int(fd))
		return nil, fmt.Errorf("io_uring sqes: %v", err)
	}
	u := &uring{
		fd:     int(fd),
		ring:   ring,
		sqeMem: sqeMem,
		sqHead: (*uint32)(unsafe.Pointer(&ring[p.sqOff.head])),
		sqTail: (*uint32)(unsafe.Pointer(&ring[p.sqOff.tail])),
		sqMask: *(*uint32)(unsafe.Pointer(&ring[p.sqOff.ringMask])),
		sqes:   unsafe.Slice((*iouSQE)(unsafe.Pointer(&sqeMem[0])), p.sqEntries),
		cqHead: (*uint32)(unsafe.Pointer(&ring[p.cqOff.head])),
		cqTail: (*uint32)(unsafe.Pointer(&ring[p.cqOff.tail])),
		cqMask: *(*uint32)(unsafe.Pointer(&ring[p.cqOff.ringMask])),
		cqes:   unsafe.Slice((*iouCQE)(unsafe.Pointer(&ring[p.cqOff.cqes])), p.cqEntries),
	}
	// The SQ array maps ring slots to SQEs one to one, once for all.
	array := unsafe.Slice((*uint32)(unsafe.Pointer(&ring[p.sqOff.array])), p.sqEntries)
	for i := range array {
		array[i] = uint32(i)
	}
	// Waits end after 100 ms without completions, so that the runtime can
	// stop this thread for a GC (the wait is a raw system call).
	u.ts = unix.Timespec{Nsec: 100e6}
	u.arg.ts = uint64(uintptr(unsafe.Pointer(&u.ts)))

	return u, nil
}

// sqe returns a cleared SQE to fill; it submits what is queued first when
// the ring is full.
func (u *uring) sqe() *iouSQE {
	tail := *u.sqTail
	if tail-atomic.LoadUint32(u.sqHead) == uint32(len(u.sqes)) {
		u.enter(0)
		if tail-atomic.LoadUint32(u.sqHead) == uint32(len(u.sqes)) {
			// More than the ring's entries in one turn, all refused: the
			// floor's connections bound a turn far below that.
			panic("io_uring: the submission queue stays full")
		}
	}
	s := &u.sqes[tail&u.sqMask]
	*s = iouSQE{}
	atomic.StoreUint32(u.sqTail, tail+1)
	return s
}

// provideBuffers gives the kernel n buffers of size bytes (n a power of
// two) for the multishot recvs: a completion names the buffer it filled,
// which goes back with giveBuf once its bytes are used.
func (u *uring) provideBuffers(n, size int) error {
	mem, err := unix.Mmap(-1, 0, n*int(unsafe.Sizeof(iouBuf{})), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return err
	}
	u.bufRing = unsafe.Slice((*iouBuf)(unsafe.Pointer(&mem[0])), n)
	u.bufMem, u.bufN, u.bufSize = make([]byte, n*size), n, size
	reg := iouBufReg{ringAddr: uint64(uintptr(unsafe.Pointer(&mem[0]))), ringEntries: uint32(n)}
	if _, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(u.fd), iouRegisterPbufRing, uintptr(unsafe.Pointer(&reg)), 1, 0, 0); e != 0 {
		return fmt.Errorf("io_uring_register pbuf ring: %v", e)
	}
	for i := 0; i < n; i++ {
		u.giveBuf(uint16(i))
	}
	return nil
}

// buf is the bytes a recv completion with these flags put in its buffer.
func (u *uring) buf(res int32, flags uint32) (bid uint16, b []byte) {
	bid = uint16(flags >> iouCQEBufferShift)
	off := int(bid) * u.bufSize
	return bid, u.bufMem[off : off+max(int(res), 0)]
}

// giveBuf hands buffer bid (back) to the kernel.
func (u *uring) giveBuf(bid uint16) {
	e := &u.bufRing[int(u.bufTail)&(u.bufN-1)]
	e.addr = uint64(uintptr(unsafe.Pointer(&u.bufMem[int(bid)*u.bufSize])))
	e.len, e.bid = uint32(u.bufSize), bid
	u.bufTail++
	// The tail shares a 32-bit word with entry 0's bid: publish both in
	// one atomic store, after the entry (sync/atomic has no 16-bit store).
	w := (*uint32)(unsafe.Pointer(&u.bufRing[0].bid))
	atomic.StoreUint32(w, uint32(u.bufTail)<<16|uint32(u.bufRing[0].bid))
}

func (u *uring) accept(lfd int, data uint64) {
	s := u.sqe()
	s.opcode, s.fd, s.userData = iouOpAccept, int32(lfd), data
	s.opFlags = unix.SOCK_CLOEXEC
}

// recvMulti arms a multishot recv on fd: a completion per read, each in a
// provided buffer, until one comes without iouCQEFMore.
func (u *uring) recvMulti(fd int, data uint64) {
	s := u.sqe()
	s.opcode, s.fd, s.userData = iouOpRecv, int32(fd), data
	s.flags, s.ioprio = iouSQEBufferSelect, iouRecvMultishot
}

func (u *uring) send(fd int, buf []byte, data uint64) {
	s := u.sqe()
	s.opcode, s.fd, s.userData = iouOpSend, int32(fd), data
	s.addr, s.len = uint64(uintptr(unsafe.Pointer(&buf[0]))), uint32(len(buf))
	s.opFlags = unix.MSG_NOSIGNAL | unix.MSG_WAITALL
	u.sends++
}

// enter submits the queued SQEs and, when wait is 1, waits up to 100 ms
// for one completion beyond those of the sends it submits: the loop's one
// system call per turn. A send to a socket with room completes while it is
// submitted, and waking for that alone would cost a second call per turn.
// A send that waits for room (a full socket) counts too: the wait then
// ends one completion later than it should, at the latest when that send
// completes or after 100 ms. (min_wait_usec would bound that, but would
// also end waits early with only the sends' completions, adding turns.)
func (u *uring) enter(wait uint32) error {
	var flags, arg, argSz uintptr
	if wait > 0 {
		wait += u.sends
		flags = iouEnterGetevents | iouEnterExtArg
		arg, argSz = uintptr(unsafe.Pointer(&u.arg)), unsafe.Sizeof(u.arg)
	}
	queued := *u.sqTail - atomic.LoadUint32(u.sqHead)
	_, _, e := unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(u.fd), uintptr(queued), uintptr(wait), flags, arg, argSz)
	u.sends = 0
	switch e {
	case 0, unix.ETIME, unix.EINTR, unix.EBUSY:
		return nil
	}
	return fmt.Errorf("io_uring_enter: %v", e)
}

// completions calls f for each completion posted and frees their slots.
func (u *uring) completions(f func(data uint64, res int32, flags uint32)) {
	head := *u.cqHead
	for tail := atomic.LoadUint32(u.cqTail); head != tail; head++ {
		c := u.cqes[head&u.cqMask]
		f(c.userData, c.res, c.flags)
	}
	atomic.StoreUint32(u.cqHead, head)
}
