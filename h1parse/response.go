package h1parse

// Response is a parsed response head. All []byte fields are sub-slices of
// the buffer passed to the last Parse call.
type Response struct {
	Minor         int
	Status        int // 100..999 (three digits)
	Reason        []byte
	Fields        []Field
	ContentLength int64 // -1 when absent
	Chunked       bool
	Close         bool // "Connection: close" or HTTP/1.0 without keep-alive
	HeadLen       int

	h headState
}

// Reset clears r for the next message, keeping the Fields capacity.
func (r *Response) Reset() {
	*r = Response{Fields: r.Fields[:0], ContentLength: -1}
}

// begin starts a message. r is zero or freshly Reset (phase phInit).
func (r *Response) begin() {
	r.Fields = r.Fields[:0]
	r.ContentLength = -1
	if cap(r.Fields) == 0 {
		r.Fields = make([]Field, 0, initialFields)
	}
	r.h.phase = phStart
}

// Parse parses the response head at the start of buf, with the same
// incremental contract as Request.Parse. Every error has Status 502: whatever
// is wrong with an upstream response, the client gets a Bad Gateway. Unlike
// requests, no empty line is tolerated before the status line (RFC 9112
// §2.2 grants that only for request-lines; on a response it signals a
// framing desync with the upstream).
func (r *Response) Parse(buf []byte, lim *Limits) error {
	h := &r.h
	switch h.phase {
	case phDone:
		return nil
	case phFailed:
		return respErr[h.err]
	case phInit:
		r.begin()
	default:
		if len(buf) < h.scan {
			r.Reset()
			r.begin()
		} else if h.moved(buf) {
			oc := cap(h.base)
			r.Reason = rebase(r.Reason, oc, buf)
			rebaseFields(r.Fields, oc, buf)
			h.rebase(oc, buf)
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
	return respErr[c]
}

func (r *Response) parse(buf []byte, l limits) errCode {
	h := &r.h
	if h.phase == phStart {
		lf, c := h.startLine(buf, l, false)
		if c != eNone {
			return c
		}
		if c := r.statusLine(buf[h.off : lf-1]); c != eNone {
			return c
		}
		h.off = lf + 1
		h.scan = h.off
		h.phase = phFields
	}
	if c := h.fields(buf, &r.Fields, l, false); c != eNone {
		return c
	}
	r.HeadLen = h.off
	return r.finish()
}

// statusLine parses HTTP-version SP 3DIGIT SP [ reason-phrase ]
// (RFC 9112 §4); the SP before an empty reason may be missing, as §4 asks
// recipients to accept.
func (r *Response) statusLine(line []byte) errCode {
	if len(line) < 12 || line[8] != ' ' {
		return eStatusLine
	}
	minor, c := parseVersion(line[:8])
	if c != eNone {
		return c
	}
	d0, d1, d2 := line[9], line[10], line[11]
	if d0 < '1' || d0 > '9' || class[d1]&cDigit == 0 || class[d2]&cDigit == 0 {
		return eStatusLine
	}
	reason := line[12:]
	if len(reason) > 0 {
		if reason[0] != ' ' {
			return eStatusLine
		}
		reason = reason[1:]
		for _, b := range reason {
			if class[b]&cVal == 0 {
				return eStatusLine
			}
		}
	}
	r.Minor = minor
	r.Status = int(d0-'0')*100 + int(d1-'0')*10 + int(d2-'0')
	r.Reason = reason
	return eNone
}

func (r *Response) finish() errCode {
	h := &r.h
	if h.teSeen {
		if h.clSeen {
			return eCLWithTE // RFC 9112 §6.3: faulty framing for a proxy
		}
		if r.Minor == 0 {
			return eTEInHTTP10 // RFC 9112 §6.1: MUST treat framing as faulty
		}
		// Only chunked is understood, so any other coding is as fatal
		// as on a request, but answered with 502.
		if c := h.checkTE(); c != eNone {
			return c
		}
		r.Chunked = true
	}
	if h.clSeen {
		r.ContentLength = h.cl
	}
	r.Close = h.close || (r.Minor == 0 && !h.keepAlive)
	return eNone
}

// IsHopByHop reports whether a field of this response must not be
// forwarded; same rules as Request.IsHopByHop.
func (r *Response) IsHopByHop(name []byte) bool {
	return r.h.isHopByHop(name)
}

// Body returns the framing of this response given whether the request was
// HEAD (RFC 9112 §6.3): BodyNone for HEAD, 1xx, 204, 304 and Content-Length
// 0; BodyChunked (n = -1); BodyLength (n = Content-Length); otherwise
// BodyUntilClose (n = -1). A 2xx answer to CONNECT is a tunnel, which the
// caller, knowing the method, must handle before asking.
func (r *Response) Body(headRequest bool) (BodyKind, int64) {
	switch {
	case headRequest, r.Status < 200, r.Status == 204, r.Status == 304:
		return BodyNone, 0
	case r.Chunked:
		return BodyChunked, -1
	case r.ContentLength == 0:
		return BodyNone, 0
	case r.ContentLength > 0:
		return BodyLength, r.ContentLength
	}
	return BodyUntilClose, -1
}
