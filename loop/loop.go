package loop

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Handler receives a loop's connection events. Every method runs on the
// loop goroutine, one at a time, and must not block.
type Handler interface {
	// Opened is called for each accepted connection.
	Opened(c *Conn)
	// Data offers the connection's unconsumed input (earlier leftovers
	// followed by newly read bytes) and returns how many bytes it consumed;
	// the rest is kept and offered again with the next bytes. in is valid
	// only during the call.
	Data(c *Conn, in []byte) int
	// ReadClosed is called once when the peer has shut its write side (or
	// the read side failed) and no unconsumed input is left. A half-closed
	// client may still be waiting for a response: the handler decides when
	// to close.
	ReadClosed(c *Conn)
	// Drained is called when output that had to wait for the socket has
	// all been written.
	Drained(c *Conn)
	// Timeout is called when the deadline set with SetTimeout passes.
	Timeout(c *Conn)
	// Closed is called once, when c is closed for any reason; err is nil
	// for a local Close.
	Closed(c *Conn, err error)
}

// Config tunes a loop group. Zero fields take the documented defaults.
type Config struct {
	// Loops is the number of event loops; 0 means GOMAXPROCS.
	Loops int
	// OutputBound is the pending output per connection at which OutFull
	// reports true; 0 means 256 KiB.
	OutputBound int
	// LingerTimeout bounds a lingering close, in nanoseconds; 0 means 2 s.
	LingerTimeout int64
	// Backlog is the listen backlog; 0 means 4096 (the kernel caps it at
	// net.core.somaxconn).
	Backlog int
	// Logger receives rare events (accept failures); nil means slog.Default().
	Logger *slog.Logger
	// BlockingWait makes an idle loop sleep in its own epoll_wait (2 to
	// 64 ms at a time, longer the longer it has been idle), keeping its P,
	// instead of parking in the Go runtime's netpoller. A parked loop is woken through the scheduler,
	// which may queue it behind another busy goroutine (another loop) until
	// that one is preempted, 10 ms later: the free layout's p99 showed it.
	// A blocked loop lets other goroutines run on its P only when a sleep
	// ends empty (runtime.Gosched) or when it is preempted, so use it
	// only when nothing latency-bound runs outside the loops (no goroutine
	// owners), and give the program a P more than there are loops: while
	// GOMAXPROCS is not above Loops, loops park instead; see wait.
	BlockingWait bool
}

const readBufSize = 64 << 10

// A blocking wait (BlockingWait) lasts at most minBlockMs << k, k the
// number of waits in a row that ended with nothing (at most
// maxBlockShift): the runtime cannot stop a thread inside a raw system
// call, so a garbage collection or a signal waits that long at most for
// an idle loop: 2 ms for one busy a moment ago, 64 ms for one idle for a
// while.
const (
	minBlockMs    = 2
	maxBlockShift = 5
)

// Loop is one event loop: an epoll instance, its own SO_REUSEPORT listener
// sockets, an eventfd door for other goroutines, a timer wheel and the
// connections it accepted or dialed. Only its own goroutine touches its
// fields, except door and the atomic counters.
//
// Invariant: conns[fd] != nil exactly for the open connections this loop
// owns (accepted or dialed), and nconns counts them; a connection is on the
// ready list at most once (c.scheduled); each turn runs at most 4096 door
// tasks and 256 accepts per listener before serving sockets again; rbuf
// (64 KiB) is the only read buffer not owned by a connection and is valid
// only during one Data call (or one unpipe); the splice pipe (at most
// pipeCap bytes) is empty whenever no splice call is running (splice.go).
type Loop struct {
	id        int
	cfg       Config
	h         Handler
	epfd      int
	door      door
	lfds      []int    // listener sockets
	lspec     []string // lspec[i] is the configured address of lfds[i]
	conns     []*Conn  // by fd
	nconns    atomic.Int64
	wheel     wheel
	bufs      bufPool
	rbuf      []byte
	now       int64
	ready     *Conn // connections with work left for the end of this turn (FIFO)
	readyTail *Conn
	turn      uint64
	events    []unix.EpollEvent
	stats     loopStats
	stopped   bool
	// acceptRetry is when to try accepting again after EMFILE/ENFILE (0: not paused).
	acceptRetry  int64
	dialed       uint64
	emfileLogged bool
	done         chan struct{}

	// splice pipe (see splice.go): pipe[0] read end, pipe[1] write end
	pipe       [2]int
	pipeCap    int
	pipeOK     bool
	pipeFailed bool

	// park mode (see wait): the epoll fd as a pollable file
	epf        *os.File
	eprc       syscall.RawConn
	pollFn     func(uintptr) bool // l.pollOnce, bound once: no allocation per wait
	pn         int
	perr       error
	deadlineAt int64 // read deadline set on epf (0: none)
	idleWaits  int   // blocking waits in a row that ended with no event
}

// loopStats are the loop's own counters; index 0 is for accepted (client)
// connections, 1 for dialed (upstream) ones.
type loopStats struct {
	bytesIn, bytesOut [2]uint64
	accepted          uint64
	spliced           uint64
}

// Stats are a loop's counters at one instant.
type Stats struct {
	Accepted, Dialed                  uint64
	ClientBytesIn, ClientBytesOut     uint64
	UpstreamBytesIn, UpstreamBytesOut uint64
	// SplicedBytes is how many of the bytes above went from an upstream
	// socket to a client socket by splice(2), never copied into Apex.
	SplicedBytes uint64
}

// Stats returns the loop's counters. Call on the loop goroutine.
func (l *Loop) Stats() Stats {
	return Stats{
		Accepted: l.stats.accepted, Dialed: l.dialed,
		ClientBytesIn: l.stats.bytesIn[0], ClientBytesOut: l.stats.bytesOut[0],
		UpstreamBytesIn: l.stats.bytesIn[1], UpstreamBytesOut: l.stats.bytesOut[1],
		SplicedBytes: l.stats.spliced,
	}
}

// ID is the loop's index in its group.
func (l *Loop) ID() int { return l.id }

// Now is the loop's clock (unix nanoseconds), refreshed once per turn.
func (l *Loop) Now() int64 { return l.now }

// Conns is the number of open connections on this loop; safe from any goroutine.
func (l *Loop) Conns() int64 { return l.nconns.Load() }

// Post hands t to the loop; t.Run is called on the loop goroutine. Safe
// from any goroutine; never blocks.
func (l *Loop) Post(t *Task) { l.door.post(t) }

// Group is a set of loops serving the same listen addresses.
//
// Invariant: Loops is fixed after NewGroup; Start runs exactly one
// goroutine per loop, counted in wg, which ends when that loop stops.
type Group struct {
	Loops []*Loop
	wg    sync.WaitGroup
	log   *slog.Logger
	cfg   Config

	// mu guards the listen set, which SetListeners changes while the
	// loops run: spec is the configured addresses, bound the addresses
	// actually bound (port 0 resolved), in the same order.
	mu    sync.Mutex
	spec  []string
	bound []netip.AddrPort
}

// NewGroup creates the loops, each with its own listener socket per address
// (SO_REUSEPORT: the kernel spreads connections across loops). newHandler is
// called once per loop.
func NewGroup(cfg Config, addrs []string, newHandler func(*Loop) Handler) (*Group, error) {
	if cfg.Loops <= 0 {
		cfg.Loops = runtime.GOMAXPROCS(0)
	}
	if cfg.OutputBound <= 0 {
		cfg.OutputBound = 256 << 10
	}
	if cfg.LingerTimeout <= 0 {
		cfg.LingerTimeout = int64(2 * time.Second)
	}
	if cfg.Backlog <= 0 {
		cfg.Backlog = 4096
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	g := &Group{log: cfg.Logger, cfg: cfg}
	for i := 0; i < cfg.Loops; i++ {
		l, err := newLoop(i, cfg)
		if err != nil {
			g.closeAll()
			return nil, err
		}
		g.Loops = append(g.Loops, l)
	}
	for _, a := range addrs {
		fds, ap, err := g.listenAll(a)
		if err != nil {
			g.closeAll()
			return nil, err
		}
		for i, l := range g.Loops {
			if err := l.addListener(fds[i], a); err != nil {
				closeAll(fds[i:])
				g.closeAll()
				return nil, err
			}
		}
		g.spec = append(g.spec, a)
		g.bound = append(g.bound, ap)
	}
	for _, l := range g.Loops {
		l.h = newHandler(l)
	}
	return g, nil
}

func (g *Group) closeAll() {
	for _, l := range g.Loops {
		l.closeFDs()
	}
}

// Start runs every loop on its own goroutine (locked to an OS thread).
func (g *Group) Start() {
	for _, l := range g.Loops {
		g.wg.Add(1)
		go func(l *Loop) {
			defer g.wg.Done()
			l.run()
		}(l)
	}
}

// Wait blocks until every loop has stopped.
func (g *Group) Wait() { g.wg.Wait() }

func newLoop(id int, cfg Config) (*Loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	l := &Loop{id: id, cfg: cfg, epfd: epfd, rbuf: make([]byte, readBufSize),
		events: make([]unix.EpollEvent, 256), done: make(chan struct{})}
	l.door.init(efd)
	l.now = time.Now().UnixNano()
	l.wheel.lastTick = l.now / tickNanos
	// The eventfd is edge-triggered and never read: every write makes a new
	// edge, and its counter cannot overflow in practice (2^64-2 writes).
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(efd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, efd, &ev); err != nil {
		l.closeFDs()
		return nil, fmt.Errorf("epoll_ctl eventfd: %w", err)
	}
	if !cfg.BlockingWait {
		if err := l.setupPark(); err != nil {
			l.closeFDs()
			return nil, err
		}
	}
	return l, nil
}

// setupPark hands the epoll fd to the Go netpoller, so that the loop can
// park. An epoll fd is itself pollable: it is readable when it has ready
// events, and the loop goroutine then parks like any network goroutine,
// leaving its P to others while it waits. A loop that sleeps in
// epoll_wait instead (BlockingWait) does this only if it ever has to park:
// once registered, every event also wakes the runtime's own poller, a
// thread switch per burst that a sleeping loop does not need.
func (l *Loop) setupPark() error {
	if err := unix.SetNonblock(l.epfd, true); err != nil {
		return err
	}
	l.epf = os.NewFile(uintptr(l.epfd), "epoll")
	rc, err := l.epf.SyscallConn()
	if err != nil {
		return err
	}
	l.eprc = rc
	l.pollFn = l.pollOnce
	return nil
}

// wait returns ready events, waiting at most timeoutMs (-1: no limit).
func (l *Loop) wait(timeoutMs int) (int, error) {
	if timeoutMs == 0 {
		return rawPoll(l.epfd, l.events)
	}
	if l.cfg.BlockingWait && runtime.GOMAXPROCS(0) > l.cfg.Loops {
		// Only while a P is left for the rest of the program: with no
		// spare P (GOMAXPROCS lowered since the start), park instead.
		// Idle for a whole sleep already: whatever else wants this P (the
		// access-log writer, a health-check ticker, the admin endpoint)
		// runs now, unless events came in meanwhile. Not after a busy
		// turn: Gosched hands the goroutine to the global run queue and
		// wakes another thread to take it, a futex wake and often a
		// thread switch, 4.4 % of the proxy's CPU at 64 connections with
		// pipelining. Goroutines the loop readies are stolen by the spare
		// P when it is free; when it is busy too (a GC worker, a scrape),
		// they wait until this loop idles for a whole sleep or is
		// preempted (sysmon, 10 ms or more). A Gosched every millisecond
		// of busy turns was tried: it bounded that wait at about 1 ms but
		// cost 2-7 % of requests/s. Nor the poll before a busy loop's
		// sleep: a sleep with events ready returns at once, so the poll
		// was one system call more per idle moment.
		if l.idleWaits > 0 {
			if n, err := rawPoll(l.epfd, l.events); n > 0 || err != nil {
				l.idleWaits = 0
				return n, err
			}
			runtime.Gosched()
		}
		// The bound doubles with every wait that ends empty, from 2 ms to
		// 64 ms: an idle proxy wakes a few times a second, not 500 (each
		// wake-up of a thread costs tens of µs on a VM: 3.5 % of a CPU at
		// a fixed 2 ms; 1.4 % with the back-off, where sysmon's preemption
		// signal still wakes it every 10 to 20 ms; 0 % when parking),
		// while a loop that was busy a moment ago still answers a GC or a
		// signal within 2 ms. (Sleeping through syscall.Syscall instead
		// was tried: no better idle, and up to 18 % fewer requests/s at
		// 256 connections in the free layout.)
		limit := minBlockMs << min(l.idleWaits, maxBlockShift)
		if timeoutMs < 0 || timeoutMs > limit {
			timeoutMs = limit
		}
		n, err := rawWait(l.epfd, l.events, timeoutMs)
		if err == unix.EINTR {
			// The runtime's preemption signal: the sleep counts as empty,
			// so the back-off goes on.
			n, err = 0, nil
		}
		if n == 0 && err == nil {
			l.idleWaits++
		} else {
			l.idleWaits = 0
		}
		return n, err
	}
	if l.eprc == nil {
		if err := l.setupPark(); err != nil {
			return rawWait(l.epfd, l.events, min(max(timeoutMs, 0), minBlockMs))
		}
	}
	if timeoutMs > 0 {
		now := time.Now().UnixNano()
		if l.deadlineAt == 0 || l.deadlineAt <= now {
			d := now + int64(timeoutMs)*1e6
			l.epf.SetReadDeadline(time.Unix(0, d))
			l.deadlineAt = d
		}
	} else if l.deadlineAt != 0 {
		l.epf.SetReadDeadline(time.Time{})
		l.deadlineAt = 0
	}
	// Read calls pollFn at once (a non-blocking epoll_wait) and parks in
	// the netpoller only when it reports nothing ready.
	err := l.eprc.Read(l.pollFn)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// deadlineAt stays set (and in the past): the next wait
			// either moves it or clears it.
			return 0, nil
		}
		return 0, err
	}
	return l.pn, l.perr
}

func (l *Loop) pollOnce(fd uintptr) bool {
	l.pn, l.perr = rawPoll(int(fd), l.events)
	if l.perr == unix.EINTR {
		l.pn, l.perr = 0, nil
	}
	return l.pn > 0 || l.perr != nil
}

func (l *Loop) addListener(fd int, spec string) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(fd)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl listener: %w", err)
	}
	l.lfds = append(l.lfds, fd)
	l.lspec = append(l.lspec, spec)
	// Edge-triggered: connections may already wait in the new queue.
	l.acceptRetry = l.now
	return nil
}

func (l *Loop) closeFDs() {
	l.closePipe()
	for _, fd := range l.lfds {
		unix.Close(fd)
	}
	l.lfds, l.lspec = nil, nil
	if l.door.efd > 0 {
		unix.Close(l.door.efd)
	}
	if l.epf != nil {
		l.epf.Close()
	} else if l.epfd > 0 {
		unix.Close(l.epfd)
	}
	l.epfd = -1
}

// CloseListeners stops accepting on this loop. Call on the loop goroutine.
func (l *Loop) CloseListeners() {
	for _, fd := range l.lfds {
		unix.Close(fd)
	}
	l.lfds, l.lspec = nil, nil
	l.acceptRetry = 0
}

// Stop closes every connection and ends the loop. Call on the loop
// goroutine (post a Task to reach it).
func (l *Loop) Stop() {
	l.CloseListeners()
	for _, c := range l.conns {
		if c != nil {
			l.closeConn(c, nil)
		}
	}
	l.stopped = true
}

// ForEach calls f for each open connection. Call on the loop goroutine.
func (l *Loop) ForEach(f func(*Conn)) {
	for _, c := range l.conns {
		if c != nil && c.fd >= 0 {
			f(c)
		}
	}
}

func (l *Loop) isListener(fd int) bool {
	for _, lfd := range l.lfds {
		if lfd == fd {
			return true
		}
	}
	return false
}

func (l *Loop) run() {
	defer l.closeFDs()
	for !l.stopped {
		wait := -1
		if l.wheel.armed > 0 || l.acceptRetry != 0 {
			wait = int(tickNanos / 1e6)
		}
		if l.acceptRetry != 0 && l.acceptRetry <= l.now {
			wait = 0
		}
		n, err := l.wait(wait)
		if err != nil && err != unix.EINTR {
			l.cfg.Logger.Error("epoll_wait failed; loop stops", "loop", l.id, "err", err)
			return
		}
		l.now = time.Now().UnixNano()
		l.turn++
		for i := 0; i < n; i++ {
			ev := &l.events[i]
			fd := int(ev.Fd)
			if fd == l.door.efd {
				l.runTasks()
				continue
			}
			if fd < len(l.conns) && l.conns[fd] != nil {
				l.connEvent(l.conns[fd], ev.Events)
				continue
			}
			if l.isListener(fd) {
				l.accept(fd)
			}
		}
		l.runReady()
		if l.wheel.armed > 0 {
			l.wheel.advance(l.now, l.fireTimeout)
			l.runReady()
		}
		if l.acceptRetry != 0 && l.now >= l.acceptRetry {
			l.acceptRetry = 0
			for _, fd := range l.lfds {
				l.accept(fd)
			}
			l.runReady()
		}
	}
}

func (l *Loop) runTasks() {
	var cnt [8]byte
	unix.Read(l.door.efd, cnt[:])
	l.door.wakePending.Store(0)
	// Bounded per turn so socket events are not starved by a flood of tasks.
	for i := 0; i < 4096; i++ {
		t := l.door.pop()
		if t == nil {
			return
		}
		t.Run()
	}
	// More left: make sure we come back without sleeping.
	if l.door.wakePending.CompareAndSwap(0, 1) {
		l.door.wake()
	}
}

func (l *Loop) fireTimeout(c *Conn) {
	if c.lingering {
		l.closeConn(c, nil)
		return
	}
	c.h.Timeout(c)
}

func (l *Loop) accept(lfd int) {
	for i := 0; i < 256; i++ {
		nfd, sa, err := unix.Accept4(lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			switch err {
			case unix.EAGAIN, unix.EINTR:
				return
			case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
				// Out of descriptors or memory: keep serving what we have
				// and try again in a tick instead of spinning on a listener
				// that stays readable.
				if !l.emfileLogged {
					l.cfg.Logger.Warn("accept failed; pausing accepts", "loop", l.id, "err", err)
					l.emfileLogged = true
				}
				l.acceptRetry = l.now + 2*tickNanos
				return
			default:
				// ECONNABORTED and friends: that connection is gone, go on.
				continue
			}
		}
		if i == 255 {
			// Budget spent with connections still waiting; edge triggering
			// will not tell us again, so come back next turn.
			l.acceptRetry = l.now
		}
		l.emfileLogged = false
		unix.SetsockoptInt(nfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		c := &Conn{fd: nfd, loop: l, h: l.h, slot: -1, remote: sockaddrToAddrPort(sa)}
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(nfd)}
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, nfd, &ev); err != nil {
			unix.Close(nfd)
			continue
		}
		for nfd >= len(l.conns) {
			l.conns = append(l.conns, make([]*Conn, len(l.conns)+64)...)
		}
		l.conns[nfd] = c
		l.nconns.Add(1)
		l.stats.accepted++
		c.readable = true // edge-triggered: bytes may already be waiting
		c.h.Opened(c)
		if c.fd >= 0 {
			l.schedule(c)
		}
	}
}

func sockaddrToAddrPort(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port))
	}
	return netip.AddrPort{}
}

func (l *Loop) connEvent(c *Conn, ev uint32) {
	if ev&(unix.EPOLLERR) != 0 {
		// Let the read or write report the error itself.
		c.readable = true
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP) != 0 {
		c.readable = true
	}
	if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP) != 0 {
		c.rdhup = true
	}
	if c.connecting {
		if ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
			return
		}
		l.connected(c)
		return
	}
	if ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 && c.waitOut {
		c.waitOut = false
		c.Flush()
		l.afterFlush(c)
		if c.fd < 0 {
			return
		}
	}
	if c.readable {
		l.schedule(c)
	}
}

// schedule puts c at the tail of the ready list, processed at the end of
// the turn. First in, first out: a client whose request is written to an
// upstream connection is serviced before that upstream connection, so the
// requests of one turn leave in one write.
func (l *Loop) schedule(c *Conn) {
	if c.scheduled || c.fd < 0 {
		return
	}
	c.scheduled = true
	c.rnext = nil
	if l.readyTail == nil {
		l.ready = c
	} else {
		l.readyTail.rnext = c
	}
	l.readyTail = c
}

// runReady gives each scheduled connection its reads, Data calls and
// flushes, until no connection has work left.
func (l *Loop) runReady() {
	for l.ready != nil {
		c := l.ready
		l.ready = c.rnext
		if l.ready == nil {
			l.readyTail = nil
		}
		c.rnext = nil
		c.scheduled = false
		l.service(c)
	}
}

// Turn counts loop iterations; work done in the same turn shares writes.
func (l *Loop) Turn() uint64 { return l.turn }

func (l *Loop) service(c *Conn) {
	if c.fd < 0 {
		return
	}
	if c.lingering {
		l.drainLinger(c)
		return
	}
	// Leftover input first (a handler resumed after a pipelined request).
	delivered := false
	if !c.readPaused && len(c.in) > 0 && !c.readable {
		l.deliver(c, c.in)
		delivered = true
	}
	for c.fd >= 0 && !c.readPaused && c.readable && !c.rdEOF {
		if c.spliceTo != nil && len(c.in) == 0 {
			if !l.splice(c) {
				break
			}
			delivered = true
			continue
		}
		var buf []byte
		if len(c.in) > 0 {
			c.in = l.bufs.grow(c.in, 4096)
			buf = c.in[len(c.in):cap(c.in)]
		} else {
			buf = l.rbuf
		}
		if c.readMax > 0 && len(buf) > c.readMax {
			buf = buf[:c.readMax]
		}
		n, err := rawRead(c.fd, buf)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			if err == unix.EAGAIN {
				c.readable = false
				break
			}
			l.closeConn(c, err)
			return
		}
		if n == 0 {
			c.rdEOF = true
			c.readable = false
			break
		}
		l.stats.bytesIn[c.side] += uint64(n)
		if n < len(buf) && !c.rdhup {
			// A short read drained the socket; with edge triggering, any
			// byte that arrives later raises a new event. Not so for a FIN
			// that came with the data (rdhup): read on to see the EOF.
			c.readable = false
		}
		if len(c.in) > 0 {
			c.in = c.in[:len(c.in)+n]
			l.deliver(c, c.in)
		} else {
			l.deliver(c, buf[:n])
		}
		delivered = true
	}
	// A resumed handler whose socket turned out empty (readable was stale)
	// still gets its leftover input: no event will bring it back.
	if !delivered && c.fd >= 0 && !c.readPaused && !c.lingering && len(c.in) > 0 {
		l.deliver(c, c.in)
	}
	if c.fd < 0 {
		return
	}
	if c.rdEOF && !c.eofReported && len(c.in) == 0 && !c.readPaused {
		c.eofReported = true
		c.h.ReadClosed(c)
		if c.fd < 0 {
			return
		}
	}
	if c.OutLen() > 0 && !c.waitOut {
		c.Flush()
	}
	l.afterFlush(c)
}

// afterFlush tells the handler that output it was told was full has all
// been written.
func (l *Loop) afterFlush(c *Conn) {
	if c.fd >= 0 && c.wantDrain && c.OutLen() == 0 && !c.lingering {
		c.wantDrain = false
		c.h.Drained(c)
	}
}

// deliver passes in to the handler and keeps what it did not consume.
func (l *Loop) deliver(c *Conn, in []byte) {
	n := c.h.Data(c, in)
	if c.fd < 0 || c.lingering {
		return
	}
	if n >= len(in) {
		if c.in != nil {
			l.bufs.put(c.in)
			c.in = nil
		}
		return
	}
	rest := in[n:]
	if c.in != nil && &in[0] == &c.in[0] {
		if n > 0 {
			m := copy(c.in, rest)
			c.in = c.in[:m]
		}
		return
	}
	c.in = l.bufs.get(len(rest))
	c.in = append(c.in, rest...)
}

func (l *Loop) drainLinger(c *Conn) {
	for {
		n, err := rawRead(c.fd, l.rbuf)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			c.readable = false
			return
		}
		if err != nil || n == 0 {
			l.closeConn(c, nil)
			return
		}
	}
}

func (l *Loop) closeConn(c *Conn, err error) {
	if c.fd < 0 {
		return
	}
	l.wheel.disarm(c)
	c.endSplice()
	if s := c.spliceFrom; s != nil {
		s.endSplice()
	}
	fd := c.fd
	unix.Close(fd) // also removes it from the epoll set
	c.fd = -1
	l.conns[fd] = nil
	l.nconns.Add(-1)
	if c.in != nil {
		l.bufs.put(c.in)
		c.in = nil
	}
	if c.out != nil {
		l.bufs.put(c.out)
		c.out, c.outOff = nil, 0
	}
	if errors.Is(err, unix.ECONNRESET) || errors.Is(err, unix.EPIPE) {
		err = ErrReset
	}
	c.h.Closed(c, err)
}

// ErrReset reports a connection reset or broken pipe from the peer.
var ErrReset = errors.New("connection reset by peer")

// PeerClosed reports whether the peer has shut its write side.
func (c *Conn) PeerClosed() bool { return c.rdEOF }

// Dial opens a non-blocking TCP connection to addr owned by this loop, with
// h as its handler: h.Opened is called once it is connected (bytes written
// before that are held and sent then), h.Closed if it fails. Call on the
// loop goroutine.
func (l *Loop) Dial(addr netip.AddrPort, h Handler) (*Conn, error) {
	family := unix.AF_INET
	var sa unix.Sockaddr
	if addr.Addr().Is4() {
		sa = &unix.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().As4()}
	} else {
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(addr.Port()), Addr: addr.Addr().As16()}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return nil, err
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	err = unix.Connect(fd, sa)
	if err != nil && err != unix.EINPROGRESS {
		unix.Close(fd)
		return nil, err
	}
	c := &Conn{fd: fd, loop: l, h: h, slot: -1, remote: addr, connecting: true, side: 1}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		unix.Close(fd)
		return nil, err
	}
	for fd >= len(l.conns) {
		l.conns = append(l.conns, make([]*Conn, len(l.conns)+64)...)
	}
	l.conns[fd] = c
	l.nconns.Add(1)
	l.dialed++
	return c, nil
}

// connected finishes a non-blocking connect.
func (l *Loop) connected(c *Conn) {
	soerr, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err == nil && soerr != 0 {
		err = unix.Errno(soerr)
	}
	if err != nil {
		l.closeConn(c, err)
		return
	}
	c.connecting = false
	c.readable = true
	c.h.Opened(c)
	if c.fd >= 0 {
		l.schedule(c)
	}
}

// Dialed counts connections this loop has dialed (for tests and metrics).
func (l *Loop) Dialed() uint64 { return l.dialed }
