package backend

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/apex-epoll/apex/h1parse"
)

// OwnerConfig tunes one owner.
type OwnerConfig struct {
	Addr            string        // upstream host:port
	Queue           int           // bound of the request queue
	ConnectTimeout  time.Duration // dial limit
	ResponseTimeout time.Duration // limit on each read and write of the exchange
	IdleTimeout     time.Duration // an idle upstream connection is closed after this
	Limits          h1parse.Limits
	Logger          *slog.Logger
	// Splice: loop owners splice large Content-Length bodies to the
	// client (config Backend.Splice); the goroutine owner ignores it.
	Splice bool
}

// chunkCount and chunkSize bound what one owner holds in flight to a client:
// a slow client holds at most chunkCount chunks before the owner stops
// reading the upstream socket.
const (
	chunkCount = 2
	chunkSize  = 32 << 10
	readSize   = 32 << 10
)

// Owner is the only goroutine that touches its upstream connection.
//
// Invariant: conn is used only by the run goroutine; outstanding counts
// exchanges submitted and not yet finished (queued plus the one in
// service), so 0 <= outstanding <= cap(queue)+1; the chunks in free plus
// those with loops always number chunkCount.
type Owner struct {
	cfg         OwnerConfig
	queue       chan *Exchange
	outstanding atomic.Int64
	_           [48]byte // outstanding is read by every loop: keep it off queue's line
	quit        chan struct{}
	done        chan struct{}
	// live mirrors conn for one purpose: a forced shutdown sets a past
	// deadline on it from another goroutine to unblock the owner.
	live atomic.Pointer[net.TCPConn]

	// run goroutine only
	conn   *net.TCPConn
	raw    syscall.RawConn  // conn's, for ackNow
	ackFn  func(fd uintptr) // setQuickAck, bound once: no allocation per call
	reused bool             // conn has served a response before
	free   chan *Chunk
	rbuf   []byte
	resp   h1parse.Response
	dec    h1parse.ChunkedDecoder
	idle   *time.Timer
	log    *slog.Logger
}

func newOwner(cfg OwnerConfig) *Owner {
	o := &Owner{cfg: cfg, queue: make(chan *Exchange, cfg.Queue), quit: make(chan struct{}),
		done: make(chan struct{}), free: make(chan *Chunk, chunkCount), log: cfg.Logger}
	for i := 0; i < chunkCount; i++ {
		ch := &Chunk{owner: o}
		ch.task.Run = ch.deliver
		o.free <- ch
	}
	return o
}

// Outstanding is the number of exchanges queued or in service.
func (o *Owner) Outstanding() int64 { return o.outstanding.Load() }

// submit queues ex without blocking; false when the queue is full.
func (o *Owner) submit(ex *Exchange) bool {
	o.outstanding.Add(1)
	select {
	case o.queue <- ex:
		return true
	default:
		o.outstanding.Add(-1)
		return false
	}
}

// run is the owner goroutine.
func (o *Owner) run() {
	defer close(o.done)
	o.idle = time.NewTimer(time.Hour)
	o.idle.Stop()
	defer o.closeConn()
	for {
		select {
		case ex := <-o.queue:
			o.serve(ex)
			o.outstanding.Add(-1)
			if o.conn != nil {
				o.idle.Reset(o.cfg.IdleTimeout)
			}
		case <-o.idle.C:
			o.closeConn()
		case <-o.quit:
			// Finish what was queued before the quit, then stop.
			for {
				select {
				case ex := <-o.queue:
					o.serve(ex)
					o.outstanding.Add(-1)
				default:
					return
				}
			}
		}
	}
}

func (o *Owner) closeConn() {
	if o.conn != nil {
		o.live.Store(nil)
		o.conn.Close()
		o.conn, o.raw = nil, nil
		o.reused = false
	}
}

func (o *Owner) dial() error {
	c, err := net.DialTimeout("tcp", o.cfg.Addr, o.cfg.ConnectTimeout)
	if err != nil {
		return err
	}
	tc := c.(*net.TCPConn)
	tc.SetNoDelay(true)
	o.conn = tc
	o.raw, _ = tc.SyscallConn()
	if o.ackFn == nil {
		o.ackFn = setQuickAck
	}
	o.live.Store(tc)
	o.reused = false
	return nil
}

// getChunk waits for a free chunk: this is where a slow client stops the
// owner from reading more of the upstream response.
func (o *Owner) getChunk(ex *Exchange) *Chunk {
	ch := <-o.free
	ch.ex = ex
	ch.Head = ch.Head[:0]
	if ch.buf == nil {
		ch.buf = make([]byte, 0, chunkSize+64)
	}
	ch.Data = ch.buf[:0]
	ch.Final, ch.Abort, ch.MustClose, ch.Status = false, false, false, 0
	return ch
}

func (o *Owner) post(ch *Chunk) { ch.ex.Loop.Post(&ch.task) }

// fail ends ex with an error status (nothing was sent to the client yet).
func (o *Owner) fail(ex *Exchange, status int) {
	ch := o.getChunk(ex)
	ch.Final = true
	ch.Status = status
	o.post(ch)
}

// errStage says how far an attempt got, for the resend rule.
type errStage int

const (
	stageNone     errStage = iota
	stageWrite             // failed writing the request
	stageNoBytes           // request written, failed before any response byte
	stageResponse          // failed after response bytes arrived
)

// serve runs one exchange to its Final chunk.
//
// The resend rule (the keep-alive race, RFC 9112 §9.3.1): an upstream may
// close an idle keep-alive connection at the moment we reuse it, and the
// request then fails with a reset or EOF. Such a request is sent again, at
// most once and on a fresh connection, only when all of these hold: the
// connection had been used before (a fresh connection failing means the
// server itself is failing, and resending would just double the load), no
// byte of a response was received (so the server cannot have produced an
// answer we would duplicate), and the request is replayable: its whole
// body is still in ex.Head (not streamed away) and its method is
// idempotent or it carries an Idempotency-Key. This mirrors Go's net/http
// checkTransportResend; a POST that reached a server is never resent.
func (o *Owner) serve(ex *Exchange) {
	for attempt := 0; ; attempt++ {
		if ex.cancelled.Load() {
			o.finishCancelled(ex)
			return
		}
		wasReused := o.conn != nil && o.reused
		if o.conn == nil {
			if err := o.dial(); err != nil {
				o.log.Debug("upstream connect failed", "addr", o.cfg.Addr, "err", err)
				o.fail(ex, 502)
				return
			}
		}
		stage, err := o.attempt(ex)
		if err == nil {
			return
		}
		o.closeConn()
		if stage <= stageNoBytes && wasReused && attempt == 0 && ex.Replayable && !ex.Streaming {
			o.log.Debug("resending request after reused connection failed", "addr", o.cfg.Addr, "err", err)
			continue
		}
		if stage == stageResponse {
			return // attempt already ended the exchange
		}
		// Body buffers the owner never took stay in ex.body; the loop
		// reclaims them after Final.
		if isTimeout(err) {
			o.fail(ex, 504)
		} else {
			o.fail(ex, 502)
		}
		return
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}

func (o *Owner) finishCancelled(ex *Exchange) {
	ch := o.getChunk(ex)
	ch.Final = true
	ch.Abort = true
	o.post(ch)
}

// attempt writes the request and relays the response. A nil error means
// the exchange was finished (Final posted). On error with stage <
// stageResponse nothing has been posted for ex.
func (o *Owner) attempt(ex *Exchange) (errStage, error) {
	c := o.conn
	deadline := time.Now().Add(o.cfg.ResponseTimeout)
	c.SetWriteDeadline(deadline)
	if _, err := c.Write(ex.Head); err != nil {
		return stageWrite, err
	}
	if ex.Streaming {
		if err := o.sendBody(ex, c); err != nil {
			return stageWrite, err
		}
	}
	return o.relay(ex, c)
}

var errClientAborted = errors.New("client aborted the request body")

// sendBody writes streamed request body buffers until the last one.
func (o *Owner) sendBody(ex *Exchange, c *net.TCPConn) error {
	for {
		b := <-ex.body
		last, abort := b.Last, b.Abort
		var err error
		if !abort && len(b.Data) > 0 {
			c.SetWriteDeadline(time.Now().Add(o.cfg.ResponseTimeout))
			_, err = c.Write(b.Data)
		}
		ex.Loop.Post(&b.task) // hand the buffer back
		if abort {
			return errClientAborted
		}
		if err != nil {
			return err
		}
		if last {
			return nil
		}
	}
}

// relay reads the response head and body from c and posts them as chunks.
func (o *Owner) relay(ex *Exchange, c *net.TCPConn) (errStage, error) {
	if o.rbuf == nil {
		o.rbuf = make([]byte, readSize)
	}
	buf := o.rbuf
	n := 0 // bytes in buf
	r := &o.resp
	// Read the head, skipping interim 1xx responses (Apex answers
	// Expect: 100-continue itself, so none is forwarded).
	for {
		r.Reset()
		for {
			err := r.Parse(buf[:n], &o.cfg.Limits)
			if err == nil {
				break
			}
			if err != h1parse.ErrNeedMore {
				o.log.Debug("bad upstream response head", "addr", o.cfg.Addr, "err", err)
				o.fail(ex, 502)
				return stageResponse, err
			}
			if n == len(buf) {
				o.fail(ex, 502)
				return stageResponse, errors.New("response head too large")
			}
			if n > 0 {
				o.ackNow() // part of the head came: see ackNow
			}
			c.SetReadDeadline(time.Now().Add(o.cfg.ResponseTimeout))
			m, err := c.Read(buf[n:])
			n += m
			if err != nil && m == 0 {
				if n == 0 {
					return stageNoBytes, err
				}
				if isTimeout(err) {
					o.fail(ex, 504)
				} else {
					o.fail(ex, 502)
				}
				return stageResponse, err
			}
		}
		if r.Status >= 200 || r.Status == 101 {
			break
		}
		// Interim response: drop it and parse what follows.
		h := r.HeadLen
		copy(buf, buf[h:n])
		n -= h
	}
	if r.Status == 101 {
		o.fail(ex, 502) // no upgrades: we never forward Upgrade
		return stageResponse, errors.New("unexpected 101 response")
	}
	kind, length := r.Body(ex.HeadRequest)
	chunkedOut := ex.ClientMinor >= 1 && (kind == h1parse.BodyChunked || kind == h1parse.BodyUntilClose)
	ch := o.getChunk(ex)
	ch.Head = o.appendHead(ch.Head, r, chunkedOut)
	if ex.ClientMinor == 0 && (kind == h1parse.BodyUntilClose || kind == h1parse.BodyChunked) {
		// An HTTP/1.0 client cannot take chunked framing: the body is
		// delimited by closing the connection.
		ch.MustClose = true
	}
	body := buf[r.HeadLen:n]
	switch kind {
	case h1parse.BodyNone:
		ch.Final = true
		o.post(ch)
		if len(body) > 0 {
			return stageResponse, o.discard("bytes after a body-less response")
		}
		o.keepOrClose(r)
		return stageResponse, nil
	case h1parse.BodyLength:
		if int64(len(body)) > length {
			// More bytes than the Content-Length promised, seen before
			// anything went to the client: the framing is broken, so the
			// response is refused and the connection dropped.
			ch.Head = ch.Head[:0]
			ch.Final = true
			ch.Status = 502
			o.post(ch)
			return stageResponse, o.discard("upstream sent more than its Content-Length")
		}
		return stageResponse, o.relayLength(ex, c, ch, body, length)
	case h1parse.BodyChunked:
		o.dec.Reset()
		return stageResponse, o.relayChunked(ex, c, ch, body, chunkedOut)
	default:
		return stageResponse, o.relayUntilClose(ex, c, ch, body, chunkedOut)
	}
}

// discard drops the connection after a framing violation the client has
// not seen (it was already answered correctly).
func (o *Owner) discard(why string) error {
	o.closeConn()
	return errors.New(why)
}

func (o *Owner) keepOrClose(r *h1parse.Response) {
	if r.Close {
		o.closeConn()
		return
	}
	o.reused = true
}

func (o *Owner) appendHead(dst []byte, r *h1parse.Response, chunkedOut bool) []byte {
	return AppendClientHead(dst, r, chunkedOut)
}

// flushIfFull posts ch when it has less than need bytes of room (or holds
// a full chunk) and returns a fresh one; nil if the client went away (the
// caller then gives up the connection).
func (o *Owner) flushIfFull(ex *Exchange, ch *Chunk, need int) *Chunk {
	if cap(ch.Data)-len(ch.Data) >= need && len(ch.Data) < chunkSize {
		return ch
	}
	o.post(ch)
	if ex.cancelled.Load() {
		return nil
	}
	return o.getChunk(ex)
}

// abort ends an exchange whose response broke after bytes were posted.
func (o *Owner) abort(ex *Exchange, ch *Chunk, err error) error {
	if ch == nil {
		ch = o.getChunk(ex)
	}
	ch.Final = true
	ch.Abort = true
	o.post(ch)
	o.closeConn()
	return err
}

// read reads more of a response that has begun.
func (o *Owner) read(c *net.TCPConn) (int, error) {
	o.ackNow()
	c.SetReadDeadline(time.Now().Add(o.cfg.ResponseTimeout))
	return c.Read(o.rbuf)
}

// ackNow makes the kernel acknowledge at once what was read of a response
// whose rest is still owed, as UpConn.Data does for the loop owner: a
// server with Nagle's algorithm on holds its next small write until then,
// and a delayed acknowledgement makes that up to 40 ms.
func (o *Owner) ackNow() {
	if o.raw != nil {
		o.raw.Control(o.ackFn)
	}
}

func setQuickAck(fd uintptr) {
	syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
}

// appendBody adds data to the response, framed as one chunk per piece when
// reframe, posting chunks as they fill; nil when the client went away.
func (o *Owner) appendBody(ex *Exchange, ch *Chunk, data []byte, reframe bool) *Chunk {
	reserve := 0
	if reframe {
		reserve = 32 // chunk-size line and CRLF
	}
	for len(data) > 0 {
		if ch = o.flushIfFull(ex, ch, reserve+1); ch == nil {
			return nil
		}
		k := min(cap(ch.Data)-len(ch.Data)-reserve, len(data))
		if reframe {
			ch.Data = h1parse.AppendChunkHeader(ch.Data, k)
		}
		ch.Data = append(ch.Data, data[:k]...)
		if reframe {
			ch.Data = h1parse.AppendChunkEnd(ch.Data)
		}
		data = data[k:]
	}
	return ch
}

// readMore posts what ch holds (if anything) and reads the next body bytes
// into rbuf. It returns the chunk to fill next and the bytes read; err is
// set only when nothing was read. A nil chunk means the client went away
// and the exchange has been ended.
func (o *Owner) readMore(ex *Exchange, c *net.TCPConn, ch *Chunk) (*Chunk, []byte, error) {
	if len(ch.Data) > 0 || len(ch.Head) > 0 {
		o.post(ch)
		if ex.cancelled.Load() {
			return nil, nil, o.abort(ex, nil, errClientGone)
		}
		ch = o.getChunk(ex)
	}
	m, err := o.read(c)
	if m > 0 {
		err = nil
	}
	return ch, o.rbuf[:m], err
}

var errClientGone = errors.New("client gone")

func (o *Owner) relayLength(ex *Exchange, c *net.TCPConn, ch *Chunk, body []byte, length int64) error {
	remain := length
	for {
		excess := int64(len(body)) > remain
		if excess {
			// More bytes than the Content-Length promised, after part of
			// the response went out: the client gets exactly the declared
			// body and the connection, whose framing is lost, is dropped.
			body = body[:remain]
		}
		if ch = o.appendBody(ex, ch, body, false); ch == nil {
			return o.abort(ex, nil, errClientGone)
		}
		remain -= int64(len(body))
		if remain == 0 {
			ch.Final = true
			o.post(ch)
			if excess {
				return o.discard("upstream sent more than its Content-Length")
			}
			o.keepOrClose(&o.resp)
			return nil
		}
		var err error
		if ch, body, err = o.readMore(ex, c, ch); ch == nil {
			return err
		} else if err != nil {
			return o.abort(ex, ch, err)
		}
	}
}

func (o *Owner) relayChunked(ex *Exchange, c *net.TCPConn, ch *Chunk, body []byte, reframe bool) error {
	for {
		for len(body) > 0 && !o.dec.Done() {
			used, data, err := o.dec.Decode(body)
			if err != nil {
				return o.abort(ex, ch, err)
			}
			body = body[used:]
			if ch = o.appendBody(ex, ch, data, reframe); ch == nil {
				return o.abort(ex, nil, errClientGone)
			}
		}
		if o.dec.Done() {
			if reframe {
				tr := o.dec.Trailer()
				if ch = o.flushIfFull(ex, ch, len(tr)+8); ch == nil {
					return o.abort(ex, nil, errClientGone)
				}
				ch.Data = h1parse.AppendLastChunk(ch.Data, tr)
			}
			ch.Final = true
			o.post(ch)
			if len(body) > 0 {
				return o.discard("bytes after the last chunk")
			}
			o.keepOrClose(&o.resp)
			return nil
		}
		var err error
		if ch, body, err = o.readMore(ex, c, ch); ch == nil {
			return err
		} else if err != nil {
			return o.abort(ex, ch, err)
		}
	}
}

func (o *Owner) relayUntilClose(ex *Exchange, c *net.TCPConn, ch *Chunk, body []byte, reframe bool) error {
	for {
		if ch = o.appendBody(ex, ch, body, reframe); ch == nil {
			return o.abort(ex, nil, errClientGone)
		}
		var err error
		if ch, body, err = o.readMore(ex, c, ch); ch == nil {
			return err
		}
		if err == io.EOF {
			// The close is the end of this body (RFC 9112 §6.3).
			if reframe {
				ch.Data = h1parse.AppendLastChunk(ch.Data, nil)
			}
			ch.Final = true
			o.post(ch)
			o.closeConn()
			return nil
		}
		if err != nil {
			return o.abort(ex, ch, err)
		}
	}
}
