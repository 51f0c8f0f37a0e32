// Package backend owns upstream connections. Each upstream socket belongs
// to exactly one Owner, a goroutine that receives Exchanges over a bounded
// queue, writes each request, reads and parses the response with h1parse
// and streams it back to the client's loop through the loop's door. There
// is no shared pool and no lock on the request path: the only shared state
// is each owner's queue (a channel) and its outstanding-request counter.
package backend

import (
	"sync"
	"sync/atomic"

	"github.com/apex-epoll/apex/loop"
)

// Sink receives an exchange's results on the client's loop goroutine.
type Sink interface {
	// Deliver hands over response bytes (or the final error). The sink
	// must call ch.Release once it no longer needs ch's bytes; holding a
	// chunk is how a slow client pushes back on the upstream socket.
	Deliver(ch *Chunk)
	// BodySent returns a request body buffer the owner has written.
	BodySent(b *BodyBuf)
}

// Exchange is one proxied request and its response.
//
// Ownership: the loop fills the request fields and calls Backend.Submit;
// from then until the owner posts the Final chunk, the owner reads those
// fields and the loop touches only the body-buffer hand-off (SendBody,
// FreeBody) and Cancel. After Final, the exchange is the loop's again, and
// the loop calls Release once it has reclaimed any body buffers.
type Exchange struct {
	// Loop is the client's loop; chunks are posted to it.
	Loop *loop.Loop
	// Sink receives the results (on Loop).
	Sink Sink
	// Head is the request head to send upstream; when Streaming is false
	// it also holds the whole request body.
	Head []byte
	// HeadRequest: the method is HEAD, so the response has no body.
	HeadRequest bool
	// Replayable: the request may be sent again on a fresh connection if
	// a reused one fails before any response byte (see Owner.serve).
	Replayable bool
	// Streaming: more request body follows through SendBody.
	Streaming bool
	// ClientMinor is the client's HTTP/1.x minor version; it decides how
	// the response is framed for the client.
	ClientMinor int

	cancelled atomic.Bool
	body      chan *BodyBuf // loop -> owner, cap len(bufs): sends never block
	bufs      [2]BodyBuf
	freeMask  uint8 // loop-only: which bufs are with the loop
}

// BodyBuf carries request body bytes from the loop to the owner.
//
// Invariant: each exchange has exactly two, each either with the loop
// (its bit set in freeMask) or in transit to or at the owner; Data never
// grows past BodyBufSize.
type BodyBuf struct {
	task  loop.Task
	ex    *Exchange
	Data  []byte // request body bytes, already framed for the upstream
	Last  bool   // the body ends with this buffer
	Abort bool   // the client failed; the owner must give up the request
	idx   uint8
}

// BodyBufSize is the capacity of each request body buffer.
const BodyBufSize = 32 << 10

var exchangePool = sync.Pool{New: func() any {
	ex := &Exchange{body: make(chan *BodyBuf, 2), freeMask: 3}
	for i := range ex.bufs {
		b := &ex.bufs[i]
		b.ex = ex
		b.idx = uint8(i)
		b.task.Run = b.returned
	}
	return ex
}}

// NewExchange returns a reset exchange from the pool.
func NewExchange() *Exchange {
	ex := exchangePool.Get().(*Exchange)
	ex.Head = ex.Head[:0]
	return ex
}

// Release returns ex to the pool. Call on the loop after the Final chunk,
// with every body buffer back (see ReclaimBody).
func (ex *Exchange) Release() {
	ex.Sink = nil
	ex.Loop = nil
	ex.HeadRequest, ex.Replayable, ex.Streaming = false, false, false
	ex.cancelled.Store(false)
	if cap(ex.Head) > 64<<10 {
		ex.Head = nil // do not keep a rare huge head alive in the pool
	}
	exchangePool.Put(ex)
}

// Cancel tells the owner the client is gone: it stops at the next chunk
// and discards the upstream connection rather than read a response nobody
// wants. Safe from any goroutine.
func (ex *Exchange) Cancel() { ex.cancelled.Store(true) }

// FreeBody returns a body buffer the loop may fill, or nil if both are
// with the owner (the loop then pauses reading the client: backpressure).
func (ex *Exchange) FreeBody() *BodyBuf {
	for i := range ex.bufs {
		if ex.freeMask&(1<<i) != 0 {
			b := &ex.bufs[i]
			if b.Data == nil {
				b.Data = make([]byte, 0, BodyBufSize)
			}
			b.Data = b.Data[:0]
			b.Last, b.Abort = false, false
			return b
		}
	}
	return nil
}

// SendBody hands b (from FreeBody) to the owner.
func (ex *Exchange) SendBody(b *BodyBuf) {
	ex.freeMask &^= 1 << b.idx
	ex.body <- b // never blocks: capacity equals the number of buffers
}

// ReclaimBody takes back, after Final, any buffer the owner did not
// consume. Loop only.
func (ex *Exchange) ReclaimBody() {
	for {
		select {
		case b := <-ex.body:
			ex.freeMask |= 1 << b.idx
		default:
			return
		}
	}
}

// BodyBufsHome reports whether every body buffer is with the loop.
func (ex *Exchange) BodyBufsHome() bool { return ex.freeMask == 3 }

// returned runs on the loop when the owner has written b.
func (b *BodyBuf) returned() {
	ex := b.ex
	ex.freeMask |= 1 << b.idx
	if ex.Sink != nil {
		ex.Sink.BodySent(b)
	}
}

// Chunk carries response bytes from an owner to the client's loop.
//
// Invariant: each owner has chunkCount chunks, each either in owner.free,
// being filled by the owner, or posted to a loop (which holds it until it
// calls Release, once); buf never grows past chunkSize plus framing.
type Chunk struct {
	task  loop.Task
	owner *Owner
	ex    *Exchange
	// Head is the response head for the client without its final CRLF
	// (the loop adds Connection as it decides), on the first chunk only.
	Head []byte
	// Data is response body bytes already framed for the client.
	Data []byte
	// Final: the last chunk of the exchange; the owner is done with it.
	Final bool
	// Status, on a Final chunk of an exchange whose head was never sent:
	// the status to answer with (502, 503 or 504).
	Status int
	// Abort: the response broke after bytes were sent; close the client.
	Abort bool
	// MustClose: the client connection cannot stay open after this
	// response (close-delimited body for an HTTP/1.0 client, or the
	// upstream body framing is in doubt).
	MustClose bool
	buf       []byte
}

// Exchange returns the exchange the chunk belongs to.
func (ch *Chunk) Exchange() *Exchange { return ch.ex }

// Release gives the chunk back to its owner. Call on the loop, once.
func (ch *Chunk) Release() {
	ch.ex = nil
	ch.owner.free <- ch // never blocks: capacity equals the number of chunks
}

func (ch *Chunk) deliver() { ch.ex.Sink.Deliver(ch) }
