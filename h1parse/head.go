package h1parse

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// Default limits, used for zero (or negative) Limits fields.
const (
	DefaultMaxRequestLine = 8192
	DefaultMaxHeaderBytes = 32768
	DefaultMaxFields      = 100

	// maxConnOptions bounds the Connection options remembered for
	// IsHopByHop; more is refused so the lookup never needs to allocate.
	maxConnOptions = 16
)

// Limits bounds what a peer can make the parser buffer. A nil *Limits means
// all defaults.
type Limits struct {
	MaxRequestLine int // bytes of the request line (or status line), without CRLF; over it: 414 (responses: 502). 0 = default 8192
	MaxHeaderBytes int // bytes of the whole head incl. start line and final CRLF; over it: 431 (responses: 502). 0 = default 32768
	MaxFields      int // number of header fields; over it: 431 (responses: 502). 0 = default 100
}

type limits struct{ line, head, fields int }

func (l *Limits) resolve() limits {
	v := limits{DefaultMaxRequestLine, DefaultMaxHeaderBytes, DefaultMaxFields}
	if l != nil {
		if l.MaxRequestLine > 0 {
			v.line = l.MaxRequestLine
		}
		if l.MaxHeaderBytes > 0 {
			v.head = l.MaxHeaderBytes
		}
		if l.MaxFields > 0 {
			v.fields = l.MaxFields
		}
	}
	return v
}

// Field is one header (or trailer) field line.
type Field struct {
	Name  []byte // as sent (case preserved), validated token
	Value []byte // leading/trailing OWS (SP, HTAB) trimmed
}

type phase uint8

const (
	phInit   phase = iota // nothing scanned yet (zero value, or after Reset)
	phStart               // looking for the start line
	phFields              // start line done, scanning field lines
	phDone                // head complete; Parse returns nil until Reset
	phFailed              // Parse returns err until Reset
)

// headState is the resumable scan state shared by Request and Response.
//
// Invariant: 0 <= off <= scan <= len(base). buf[:off] is a sequence of
// complete, validated lines; buf[off:scan] is the validated beginning of the
// current line, so a resumed Parse starts at scan and never looks at a byte
// twice (but for a CR waiting for its LF). colon == 0 or off < colon < scan.
//
// Invariant: every []byte recorded from the head (start-line parts, Fields,
// host, conn) is a two-index sub-slice base[a:b] with b <= off, so its offset
// is cap(base)-cap(s); that lets Parse re-point them when the caller hands in
// a longer buffer with a different backing array (see rebase).
//
// Invariant: nconn <= maxConnOptions. err != eNone iff phase == phFailed.
type headState struct {
	base  []byte // buf of the previous Parse call
	off   int
	scan  int
	colon int // index of the current field line's colon; 0 while in its name
	phase phase
	err   errCode

	cl        int64
	clSeen    bool
	teSeen    bool
	teChunked bool // "chunked" seen in some Transfer-Encoding element
	teLast    bool // the last coding seen so far is chunked
	teUnknown bool // some coding other than chunked
	hostSeen  bool
	close     bool
	keepAlive bool
	expect100 bool
	upgrade   bool
	host      []byte
	nconn     int
	conn      [maxConnOptions][]byte
}

// moved reports whether buf has a different backing array than the buffer
// of the previous call, i.e. recorded slices must be re-pointed.
func (h *headState) moved(buf []byte) bool {
	return len(buf) > 0 && len(h.base) > 0 && &buf[0] != &h.base[0]
}

// rebase re-points s, a two-index sub-slice of a previous buffer of capacity
// oldCap, at the same offset in buf. The caller promised buf has the same
// prefix, so the bytes are identical; only the backing array differs.
func rebase(s []byte, oldCap int, buf []byte) []byte {
	if s == nil {
		return nil
	}
	a := oldCap - cap(s)
	return buf[a : a+len(s)]
}

func (h *headState) rebase(oldCap int, buf []byte) {
	h.host = rebase(h.host, oldCap, buf)
	for i := range h.conn[:h.nconn] {
		h.conn[i] = rebase(h.conn[i], oldCap, buf)
	}
}

func rebaseFields(fs []Field, oldCap int, buf []byte) {
	for i := range fs {
		fs[i].Name = rebase(fs[i].Name, oldCap, buf)
		fs[i].Value = rebase(fs[i].Value, oldCap, buf)
	}
}

// startLine locates the start line and returns the index of its LF.
// Requests may be preceded by empty lines (RFC 9112 §2.2), which count
// toward MaxHeaderBytes. The LF search is confined to the window the limits
// allow, so an over-long line fails as soon as the window is full, and the
// outcome does not depend on how the input was split.
func (h *headState) startLine(buf []byte, l limits, skipEmpty bool) (int, errCode) {
	for skipEmpty && h.off < len(buf) {
		c := buf[h.off]
		if c == '\n' {
			return 0, eLineEnding
		}
		if c != '\r' {
			break
		}
		if h.off+1 == len(buf) {
			return 0, eNeedMore
		}
		if buf[h.off+1] != '\n' {
			return 0, eLineEnding
		}
		h.off += 2
		h.scan = h.off
		if h.off >= l.head {
			return 0, eHeadTooLarge
		}
	}
	wend, over := h.off+l.line+2, eLineTooLong
	if wend > l.head {
		wend, over = l.head, eHeadTooLarge
	}
	end := min(len(buf), wend)
	if h.scan > end { // only if the limits shrank between calls
		return 0, over
	}
	i := bytes.IndexByte(buf[h.scan:end], '\n')
	if i < 0 {
		if len(buf) >= wend {
			return 0, over
		}
		h.scan = end
		return 0, eNeedMore
	}
	lf := h.scan + i
	if lf == h.off || buf[lf-1] != '\r' {
		return 0, eLineEnding // RFC 9112 §2.2: we do not accept a bare LF
	}
	return lf, eNone
}

// fields consumes field lines up to and including the empty line that ends
// the head, appending them to *fs and applying the framing rules. Every byte
// is examined once: the name through the tchar table, the value eight bytes
// at a time up to its CR. A line cut by the end of buf resumes at h.scan,
// h.colon remembering whether the name was complete. Bytes are checked in
// order and the limit is a fixed window, so the outcome does not depend on
// how the input was split.
func (h *headState) fields(buf []byte, fs *[]Field, l limits, req bool) errCode {
	fl := *fs
	c := h.fieldLines(buf, &fl, l, req)
	*fs = fl
	return c
}

func (h *headState) fieldLines(buf []byte, fs *[]Field, l limits, req bool) errCode {
	end := min(len(buf), l.head)
	incomplete := eNeedMore
	if len(buf) >= l.head {
		incomplete = eHeadTooLarge
	}
	p := h.scan
	for {
		if h.colon == 0 {
			if p == h.off {
				if p >= end {
					return incomplete
				}
				switch c := buf[p]; {
				case c == '\r':
					if p+1 >= end {
						return incomplete
					}
					if buf[p+1] != '\n' {
						return eLineEnding
					}
					h.off = p + 2
					h.scan = h.off
					return eNone
				case c == '\n':
					return eLineEnding // RFC 9112 §2.2: no bare LF
				case class[c]&cOWS != 0:
					// RFC 9112 §5.2: obs-fold (and whitespace before the
					// first field, §2.2) is rejected, not unfolded.
					return eObsFold
				}
			}
			p = skipToken(buf, p, end)
			if p >= end {
				h.scan = p
				return incomplete
			}
			if c := buf[p]; c != ':' {
				switch {
				case class[c]&cOWS != 0:
					// RFC 9112 §5.1: MUST reject; lenient parsers disagree
					// on the name, a classic smuggling vector.
					return eSpaceBeforeColon
				case c == '\r' || c == '\n':
					return eNoColon
				}
				return eFieldName
			}
			if p == h.off {
				return eFieldName // empty name
			}
			h.colon = p
			p++
		}
		for {
			p = skipValue(buf, p, end)
			if p >= end {
				h.scan = p
				return incomplete
			}
			c := buf[p]
			if c == '\t' {
				p++
				continue
			}
			if c != '\r' {
				// NUL, LF, other CTLs and DEL (RFC 9110 §5.5).
				return eFieldValue
			}
			if p+1 >= end {
				h.scan = p
				return incomplete
			}
			if buf[p+1] != '\n' {
				return eFieldValue // bare CR
			}
			break
		}
		name, value := buf[h.off:h.colon], trimOWS(buf[h.colon+1:p])
		h.off = p + 2
		h.scan = h.off
		h.colon = 0
		p = h.off
		if len(*fs) >= l.fields {
			return eTooManyFields
		}
		*fs = appendField(*fs, name, value)
		if len(name) < 64 && specialLens&(1<<len(name)) != 0 {
			if c := h.field(name, value, req); c != eNone {
				return c
			}
		}
	}
}

// appendField appends a Field storing the two slices directly: building a
// Field temporary and appending it makes the compiler copy it through the
// stack with mismatched store/load widths, a store-forwarding stall that
// cost a fifth of the parse time.
func appendField(fl []Field, name, value []byte) []Field {
	n := len(fl)
	if n < cap(fl) {
		fl = fl[:n+1]
	} else {
		fl = append(fl, Field{})
	}
	f := &fl[n]
	f.Name = name
	f.Value = value
	return fl
}

// skipToken returns the index of the first non-tchar byte of buf[p:end],
// or end. Four table lookups are combined per step, so a typical field
// name costs a couple of branches instead of one per byte.
func skipToken(buf []byte, p, end int) int {
	for p+4 <= end {
		b := buf[p : p+4 : p+4]
		if class[b[0]]&class[b[1]]&class[b[2]]&class[b[3]]&cTok == 0 {
			break
		}
		p += 4
	}
	for p < end && class[buf[p]]&cTok != 0 {
		p++
	}
	return p
}

// skipValue returns the index of the first byte of buf[p:end] that is below
// 0x20 or DEL (CR, HTAB, or an invalid byte), or end. Eight bytes are
// tested at a time: the lowest flagged byte of the SWAR masks is exact
// (borrows only propagate towards higher bytes).
func skipValue(buf []byte, p, end int) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	for p+8 <= end {
		w := binary.LittleEndian.Uint64(buf[p:])
		d := w ^ (0x7f * ones) // DEL becomes zero
		if m := ((w-0x20*ones)&^w | (d-ones)&^d) & highs; m != 0 {
			return p + bits.TrailingZeros64(m)>>3
		}
		p += 8
	}
	for p < end && buf[p] >= 0x20 && buf[p] != 0x7f {
		p++
	}
	return p
}

// splitField validates one non-empty field line (without CRLF) per
// RFC 9112 §5 and splits it into name and OWS-trimmed value. Both are
// two-index sub-slices of line.
func splitField(line []byte) (name, value []byte, c errCode) {
	if class[line[0]]&cOWS != 0 {
		// RFC 9112 §5.2: obs-fold (and whitespace before the first field,
		// §2.2) is rejected rather than unfolded.
		return nil, nil, eObsFold
	}
	i := 0
	for i < len(line) && class[line[i]]&cTok != 0 {
		i++
	}
	if i == len(line) {
		return nil, nil, eNoColon
	}
	if line[i] != ':' {
		if class[line[i]]&cOWS != 0 {
			// RFC 9112 §5.1: MUST reject; lenient parsers disagree on
			// the name, a classic smuggling vector.
			return nil, nil, eSpaceBeforeColon
		}
		return nil, nil, eFieldName
	}
	if i == 0 {
		return nil, nil, eFieldName
	}
	v := line[i+1:]
	if !validValue(v) {
		return nil, nil, eFieldValue
	}
	return line[:i], trimOWS(v), eNone
}

// validValue reports whether v has only field-vchar, SP, HTAB and obs-text
// (RFC 9110 §5.5): no NUL, CR, LF, other CTL or DEL.
func validValue(v []byte) bool {
	for p := 0; ; p++ {
		p = skipValue(v, p, len(v))
		if p == len(v) {
			return true
		}
		if v[p] != '\t' {
			return false
		}
	}
}

// specialLens has bit n set when some field that field handles has a name
// of length n, so most fields skip the call.
const specialLens = 1<<len("host") | 1<<len("expect") | 1<<len("upgrade") |
	1<<len("connection") | 1<<len("content-length") | 1<<len("transfer-encoding")

// field applies the semantics of the fields that decide framing and
// connection handling. It runs once per field line, in order.
func (h *headState) field(name, value []byte, req bool) errCode {
	switch len(name) {
	case 4:
		if req && EqualFold(name, "host") {
			if h.hostSeen {
				return eDupHost // RFC 9112 §3.2
			}
			if len(value) > 0 && !validHostPort(value, false) {
				return eBadHost
			}
			h.hostSeen = true
			h.host = value
		}
	case 6:
		if req && EqualFold(name, "expect") && EqualFold(value, "100-continue") {
			h.expect100 = true
		}
	case 7:
		if req && EqualFold(name, "upgrade") {
			h.upgrade = true
		}
	case 10:
		if EqualFold(name, "connection") {
			return h.connection(value)
		}
	case 14:
		if EqualFold(name, "content-length") {
			return h.contentLength(value)
		}
	case 17:
		if EqualFold(name, "transfer-encoding") {
			return h.transferEncoding(value)
		}
	}
	return eNone
}

// contentLength accepts exactly one field of 1-18 digits. Lists, even of
// equal values, and duplicates are refused: RFC 9112 §6.3 permits that, and
// it leaves no room for two hops to pick different lengths.
func (h *headState) contentLength(v []byte) errCode {
	if h.clSeen {
		return eDupCL
	}
	if len(v) == 0 || len(v) > 18 {
		return eBadCL
	}
	var n int64
	for _, c := range v {
		if class[c]&cDigit == 0 {
			return eBadCL
		}
		n = n*10 + int64(c-'0')
	}
	h.clSeen = true
	h.cl = n
	return eNone
}

// transferEncoding records the codings of one Transfer-Encoding field.
// Several fields form one list (RFC 9110 §5.3); the verdict on the whole
// list is made when the head is complete (headState.checkTE).
func (h *headState) transferEncoding(v []byte) errCode {
	h.teSeen = true
	for len(v) > 0 {
		var e []byte
		e, v = nextElem(v)
		if len(e) == 0 {
			continue
		}
		if EqualFold(e, "chunked") {
			if h.teChunked {
				return eChunkedTwice // RFC 9112 §6.1: MUST NOT apply chunked more than once
			}
			h.teChunked = true
			h.teLast = true
			continue
		}
		// Any other transfer-coding: token *( OWS ";" OWS transfer-parameter ).
		i := 0
		for i < len(e) && class[e[i]]&cTok != 0 {
			i++
		}
		if i == 0 {
			return eBadTE
		}
		for i < len(e) && class[e[i]]&cOWS != 0 {
			i++
		}
		if i < len(e) && e[i] != ';' {
			return eBadTE
		}
		h.teLast = false
		h.teUnknown = true
	}
	return eNone
}

// checkTE is the verdict on the complete Transfer-Encoding list. A final
// coding other than chunked leaves the length undeterminable (RFC 9112 §6.3:
// MUST 400), which takes precedence over an unknown but well-placed coding
// (§6.1: SHOULD 501).
func (h *headState) checkTE() errCode {
	if !h.teLast {
		return eChunkedNotFinal
	}
	if h.teUnknown {
		return eUnsupportedTE
	}
	return eNone
}

// connection records the options of a Connection field (RFC 9110 §7.6.1).
func (h *headState) connection(v []byte) errCode {
	for len(v) > 0 {
		var e []byte
		e, v = nextElem(v)
		if len(e) == 0 {
			continue
		}
		if h.nconn == maxConnOptions {
			return eTooManyConnOptions
		}
		h.conn[h.nconn] = e
		h.nconn++
		switch {
		case EqualFold(e, "close"):
			h.close = true
		case EqualFold(e, "keep-alive"):
			h.keepAlive = true
		}
	}
	return eNone
}

// isHopByHop implements Request/Response.IsHopByHop (RFC 9110 §7.6.1).
//
// Content-Length and Host are never hop-by-hop, even when a Connection
// field names them: a sender must not nominate fields meant for all
// recipients (§7.6.1), and honouring it would let a client strip the framing
// or the authority of the message a proxy forwards ("Connection:
// Content-Length" turns the body into a smuggled request).
func (h *headState) isHopByHop(name []byte) bool {
	switch len(name) {
	case 4:
		if EqualFold(name, "host") {
			return false
		}
	case 14:
		if EqualFold(name, "content-length") {
			return false
		}
	case 2:
		if EqualFold(name, "te") {
			return true
		}
	case 7:
		if EqualFold(name, "upgrade") {
			return true
		}
	case 10:
		if EqualFold(name, "connection") || EqualFold(name, "keep-alive") {
			return true
		}
	case 16:
		if EqualFold(name, "proxy-connection") {
			return true
		}
	case 17:
		if EqualFold(name, "transfer-encoding") {
			return true
		}
	}
	for _, o := range h.conn[:h.nconn] {
		if equalFoldBytes(o, name) {
			return true
		}
	}
	return false
}

// parseVersion parses exactly "HTTP/" DIGIT "." DIGIT (RFC 9112 §2.3).
// A higher minor version of HTTP/1 is treated as 1.1 (RFC 9110 §6.2).
func parseVersion(v []byte) (int, errCode) {
	if len(v) != 8 || string(v[:5]) != "HTTP/" || v[6] != '.' ||
		class[v[5]]&cDigit == 0 || class[v[7]]&cDigit == 0 {
		return 0, eVersion
	}
	if v[5] != '1' {
		return 0, eVersionUnsupported
	}
	if v[7] == '0' {
		return 0, eNone
	}
	return 1, eNone
}

// validHostPort checks uri-host [ ":" port ] (RFC 3986 §3.2.2, §3.2.3):
// a reg-name (which covers IPv4) or a bracketed IPv6address / IPvFuture
// (zone identifiers are not part of http URIs), then an optional
// port of at most 5 digits (required, and non-empty, when needPort). The
// host part must not be empty. Userinfo ('@') is rejected (RFC 9110 §4.2.4).
func validHostPort(h []byte, needPort bool) bool {
	i := 0
	if len(h) > 0 && h[0] == '[' {
		j := bytes.IndexByte(h, ']')
		if j < 0 || !validIPLiteral(h[1:j]) {
			return false
		}
		i = j + 1
	} else {
		for i < len(h) {
			c := h[i]
			if class[c]&cHost != 0 {
				i++
				continue
			}
			if c == '%' && i+2 < len(h) && class[h[i+1]]&cHex != 0 && class[h[i+2]]&cHex != 0 {
				i += 3
				continue
			}
			break
		}
		if i == 0 {
			return false
		}
	}
	if i == len(h) {
		return !needPort
	}
	if h[i] != ':' {
		return false
	}
	port := h[i+1:]
	if len(port) > 5 || (needPort && len(port) == 0) {
		return false
	}
	for _, c := range port {
		if class[c]&cDigit == 0 {
			return false
		}
	}
	return true
}

// validIPLiteral checks the inside of "[...]": IPv6address or IPvFuture
// (RFC 3986 §3.2.2).
func validIPLiteral(s []byte) bool {
	if len(s) > 0 && (s[0] == 'v' || s[0] == 'V') {
		i := 1
		for i < len(s) && class[s[i]]&cHex != 0 {
			i++
		}
		if i == 1 || i+1 >= len(s) || s[i] != '.' {
			return false
		}
		for _, c := range s[i+1:] {
			if class[c]&cHost == 0 && c != ':' {
				return false
			}
		}
		return true
	}
	return validIPv6(s)
}

// validIPv6 checks RFC 4291 §2.2 text form: eight groups of 1-4 hex
// digits, at most one "::" standing for one or more zero groups, and
// optionally a dotted-quad IPv4 in place of the last two groups.
func validIPv6(s []byte) bool {
	groups, double, i := 0, false, 0
	if len(s) >= 2 && s[0] == ':' && s[1] == ':' {
		double, i = true, 2
	}
	for i < len(s) {
		j := i
		for j < len(s) && j-i < 5 && class[s[j]]&cHex != 0 {
			j++
		}
		if j < len(s) && s[j] == '.' {
			if !validIPv4(s[i:]) {
				return false
			}
			groups += 2
			break
		}
		if n := j - i; n == 0 || n > 4 {
			return false
		}
		groups++
		if j == len(s) {
			break
		}
		if s[j] != ':' || j+1 == len(s) {
			return false
		}
		j++
		if s[j] == ':' {
			if double {
				return false
			}
			double = true
			j++
		}
		i = j
	}
	if double {
		return groups < 8
	}
	return groups == 8
}

// validIPv4 checks dotted-decimal with dec-octets 0-255 without leading
// zeros (RFC 3986 §3.2.2).
func validIPv4(s []byte) bool {
	for part := 0; part < 4; part++ {
		n, v := 0, 0
		for n < len(s) && n < 4 && class[s[n]]&cDigit != 0 {
			v = v*10 + int(s[n]-'0')
			n++
		}
		if n == 0 || n > 3 || v > 255 || (n > 1 && s[0] == '0') {
			return false
		}
		s = s[n:]
		if part < 3 {
			if len(s) == 0 || s[0] != '.' {
				return false
			}
			s = s[1:]
		}
	}
	return len(s) == 0
}
