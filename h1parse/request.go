package h1parse

import (
	"bytes"
	"encoding/binary"
)

// Request is a parsed request head. All []byte fields are sub-slices of the
// buffer passed to the last Parse call. For an absolute-form target the
// authority in Target, not Host, names the origin (RFC 9112 §3.2.2); see
// Authority.
type Request struct {
	Method        []byte
	Target        []byte
	Minor         int     // HTTP/1.Minor: 0 or 1
	Fields        []Field // all header fields in order; capacity reused across Reset
	Host          []byte  // Host value, nil if absent
	ContentLength int64   // -1 when absent
	Chunked       bool    // Transfer-Encoding: chunked (final coding)
	Close         bool    // "Connection: close" present, or HTTP/1.0 without "Connection: keep-alive"
	Expect100     bool    // "Expect: 100-continue" (case-insensitive); false for HTTP/1.0 (RFC 9110 §10.1.1)
	Upgrade       bool    // Upgrade header present (proxy may refuse / strip); false for HTTP/1.0 (RFC 9110 §7.8)
	HeadLen       int     // on success: number of bytes of buf forming the head (through the blank line)

	h headState
}

// initialFields is the Fields capacity allocated on first use, enough for
// typical heads so the steady state never grows the slice.
const initialFields = 32

// Reset clears r for the next message, keeping the Fields capacity.
func (r *Request) Reset() {
	*r = Request{Fields: r.Fields[:0], ContentLength: -1}
}

// begin starts a message. r is zero or freshly Reset (phase phInit).
func (r *Request) begin() {
	r.Fields = r.Fields[:0]
	r.ContentLength = -1
	if cap(r.Fields) == 0 {
		r.Fields = make([]Field, 0, initialFields)
	}
	r.h.phase = phStart
}

// Parse parses the request head at the start of buf. If the head is not
// complete it returns ErrNeedMore; the caller then calls Parse again with a
// longer buf that has the same prefix (more bytes appended, possibly in a
// different backing array), and Parse resumes where it stopped: bytes that
// were already scanned are not scanned again.
//
// Before the head is complete, Parse already fails with 414 when the request
// line exceeds the limit, and with 431 when the head exceeds MaxHeaderBytes,
// so a caller never needs to buffer more than the limits. On success it
// returns nil and fills r. Otherwise it returns a *Error (one of the package
// variables). After success or failure Parse keeps returning the same result
// until Reset. A leading empty line (CRLF) before the request line is
// tolerated (RFC 9112 §2.2) and counted in HeadLen.
func (r *Request) Parse(buf []byte, lim *Limits) error {
	h := &r.h
	switch h.phase {
	case phDone:
		return nil
	case phFailed:
		return reqErr[h.err]
	case phInit:
		r.begin()
	default:
		if len(buf) < h.scan {
			r.Reset() // not a continuation: contract violated, start over
			r.begin()
		} else if h.moved(buf) {
			r.rebase(buf)
		}
	}
	c := r.parse(buf, lim.resolve())
	h.base = buf
	switch c {
	case eNone:
		h.phase = phDone
		return nil
	case eNeedMore:
		return ErrNeedMore
	}
	h.phase = phFailed
	h.err = c
	return reqErr[c]
}

func (r *Request) rebase(buf []byte) {
	oc := cap(r.h.base)
	r.Method = rebase(r.Method, oc, buf)
	r.Target = rebase(r.Target, oc, buf)
	rebaseFields(r.Fields, oc, buf)
	r.h.rebase(oc, buf)
}

func (r *Request) parse(buf []byte, l limits) errCode {
	h := &r.h
	if h.phase == phStart {
		lf, c := h.startLine(buf, l, true)
		if c != eNone {
			return c
		}
		if c := r.requestLine(buf[h.off : lf-1]); c != eNone {
			return c
		}
		h.off = lf + 1
		h.scan = h.off
		h.phase = phFields
	}
	if c := h.fields(buf, &r.Fields, l, true); c != eNone {
		return c
	}
	r.HeadLen = h.off
	return r.finish()
}

// requestLine parses exactly method SP request-target SP HTTP-version
// (RFC 9112 §3). The version is checked first so that a request of another
// major version (e.g. the HTTP/2 preface) is answered with 505.
func (r *Request) requestLine(line []byte) errCode {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return eRequestLine
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return eRequestLine // no version (HTTP/0.9 style) or empty target
	}
	method, target := line[:sp1], rest[:sp2]
	minor, c := parseVersion(rest[sp2+1:])
	if c != eNone {
		return c
	}
	for _, b := range method {
		if class[b]&cTok == 0 {
			return eMethod
		}
	}
	if !validTarget(method, target) {
		return eTarget
	}
	r.Method, r.Target, r.Minor = method, target, minor
	return eNone
}

// validTarget checks the request-target forms of RFC 9112 §3.2: origin-form,
// absolute-form (http/https with a non-empty authority and no userinfo),
// asterisk-form only for OPTIONS, and authority-form for (and only for)
// CONNECT. CTL, SP, DEL, non-ASCII, '#' and '\' are refused everywhere.
func validTarget(method, t []byte) bool {
	if !targetBytes(t) {
		return false
	}
	if string(method) == "CONNECT" {
		return validHostPort(t, true)
	}
	switch t[0] {
	case '/':
		return true
	case '*':
		return len(t) == 1 && string(method) == "OPTIONS"
	}
	var rest []byte
	switch {
	case len(t) > 7 && EqualFold(t[:7], "http://"):
		rest = t[7:]
	case len(t) > 8 && EqualFold(t[:8], "https://"):
		rest = t[8:]
	default:
		return false
	}
	end := len(rest)
	for i, c := range rest {
		if c == '/' || c == '?' {
			end = i
			break
		}
	}
	return validHostPort(rest[:end], false)
}

// targetBytes reports whether t has only VCHARs other than '#' and '\'.
// Eight bytes are tested at a time; a flagged word falls back to the table.
func targetBytes(t []byte) bool {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	for len(t) >= 8 {
		w := binary.LittleEndian.Uint64(t)
		h := w ^ ('#' * ones)
		b := w ^ ('\\' * ones)
		// bytes < 0x21 | bytes >= 0x7f | '#' | '\'
		if ((w-0x21*ones)&^w|(w+ones)|w|(h-ones)&^h|(b-ones)&^b)&highs != 0 {
			break
		}
		t = t[8:]
	}
	for _, c := range t {
		if class[c]&cTarget == 0 {
			return false
		}
	}
	return true
}

// finish applies the rules that need the complete head.
func (r *Request) finish() errCode {
	h := &r.h
	if !h.hostSeen && r.Minor == 1 {
		return eNoHost // RFC 9112 §3.2: MUST 400
	}
	if h.teSeen {
		if h.clSeen {
			// RFC 9112 §6.1: a server MAY reject; as a proxy we must, since
			// forwarding both is the canonical smuggling vector.
			return eCLWithTE
		}
		if r.Minor == 0 {
			return eTEInHTTP10 // RFC 9112 §6.1: framing faulty
		}
		if c := h.checkTE(); c != eNone {
			return c
		}
		r.Chunked = true
	}
	if h.clSeen {
		r.ContentLength = h.cl
	}
	r.Host = h.host
	r.Close = h.close || (r.Minor == 0 && !h.keepAlive)
	// RFC 9110 §10.1.1 and §7.8: a server MUST ignore a 100-continue
	// expectation and an Upgrade field received in an HTTP/1.0 request.
	r.Expect100 = h.expect100 && r.Minor == 1
	r.Upgrade = h.upgrade && r.Minor == 1
	return eNone
}

// Authority returns the authority the request is for: the authority
// component of an absolute-form target (RFC 9112 §3.2.2 says to ignore Host
// then), the target itself for CONNECT, and otherwise the Host value (nil
// for HTTP/1.0 without Host). Valid after a successful Parse.
func (r *Request) Authority() []byte {
	t := r.Target
	if string(r.Method) == "CONNECT" {
		return t
	}
	if len(t) == 0 || t[0] == '/' || t[0] == '*' {
		return r.Host
	}
	if i := bytes.Index(t, []byte("://")); i >= 0 {
		t = t[i+3:]
		for j, c := range t {
			if c == '/' || c == '?' {
				return t[:j]
			}
		}
		return t
	}
	return r.Host
}

// IsHopByHop reports whether a field of this request must not be forwarded:
// Connection, Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Upgrade,
// and every option listed in a Connection field (RFC 9110 §7.6.1), except
// Content-Length and Host, which stay end-to-end even when listed so that a
// client cannot strip the framing or authority of the forwarded message.
// Trailer and Proxy-Authorization are end-to-end. Case-insensitive, no
// allocation. Valid after a successful Parse.
func (r *Request) IsHopByHop(name []byte) bool {
	return r.h.isHopByHop(name)
}

// Body returns the framing of the request body (RFC 9112 §6.3): BodyChunked
// (n = -1), BodyLength with n = Content-Length > 0, or BodyNone (n = 0) when
// there is neither Content-Length nor Transfer-Encoding, or Content-Length 0.
func (r *Request) Body() (BodyKind, int64) {
	switch {
	case r.Chunked:
		return BodyChunked, -1
	case r.ContentLength > 0:
		return BodyLength, r.ContentLength
	}
	return BodyNone, 0
}

// BodyKind is how a message body is delimited (RFC 9112 §6.3).
type BodyKind int

const (
	BodyNone       BodyKind = iota // no body (HEAD, 1xx, 204, 304, or CL 0 / request without CL/TE)
	BodyLength                     // exactly n bytes
	BodyChunked                    // chunked transfer coding; decode with ChunkedDecoder
	BodyUntilClose                 // response with neither CL nor chunked: read until upstream closes
)

// String returns the constant's name without the Body prefix.
func (k BodyKind) String() string {
	switch k {
	case BodyNone:
		return "none"
	case BodyLength:
		return "length"
	case BodyChunked:
		return "chunked"
	case BodyUntilClose:
		return "until-close"
	}
	return "invalid"
}
