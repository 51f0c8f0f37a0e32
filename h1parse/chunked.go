package h1parse

import (
	"bytes"
	"strconv"
)

const (
	// MaxChunkExt bounds the chunk-ext of one size line (from the first
	// ';' to the CR); extensions are ignored but must not be a way to make
	// the decoder scan unboundedly without progress.
	MaxChunkExt = 4096
	// MaxTrailer bounds the trailer section (all field lines with their
	// CRLFs, without the final empty line).
	MaxTrailer = 8192
	// maxSizeDigits keeps chunk sizes below 2^60, well inside int64.
	maxSizeDigits = 15
)

// Decoder states. The ext states are contiguous so the length check is a
// range test.
const (
	stSizeStart     uint8 = iota // expecting the first HEXDIG of a chunk-size
	stSize                       // in chunk-size
	stExtName0                   // after ';': first tchar of an ext name
	stExtName                    // in ext name
	stExtVal0                    // after '=': token or DQUOTE
	stExtValTok                  // in token ext value
	stExtQuoted                  // in quoted-string ext value
	stExtQuotedPair              // after '\' in a quoted-string
	stExtAfterQuote              // after the closing DQUOTE
	stSizeLF                     // after the size line's CR
	stData                       // in chunk-data, n bytes left
	stDataCR                     // expecting CR after chunk-data
	stDataLF                     // expecting LF after chunk-data
	stTrailerStart               // at the start of a trailer line or the final CRLF
	stTrailerLine                // in a trailer field line
	stTrailerLF                  // after a trailer line's CR
	stEndLF                      // after the final CR
	stDone
)

// ChunkedDecoder decodes a chunked body (RFC 9112 §7.1) incrementally and
// without allocation. The zero value is ready to use.
//
// Invariant: 0 <= tline <= tlen <= MaxTrailer; trailer[:tline] are complete,
// validated field lines, each ending in CRLF.
// Invariant: in the size states n < 1<<(4*ndigits) and ndigits <= 15; in
// stData n > 0 is the number of payload bytes left in the chunk.
// Invariant: in the ext states 0 < extLen <= MaxChunkExt.
// Invariant: err != nil makes every later Decode return it (until Reset).
type ChunkedDecoder struct {
	state   uint8
	ndigits uint8
	extLen  int
	n       int64
	err     *Error
	tlen    int
	tline   int
	trailer [MaxTrailer]byte
}

// Reset prepares d for a new body. The trailer array is not cleared.
func (d *ChunkedDecoder) Reset() {
	d.state, d.ndigits, d.extLen, d.n, d.err, d.tlen, d.tline = stSizeStart, 0, 0, 0, nil, 0, 0
}

// Done reports whether the last-chunk and the trailer section have been
// fully consumed.
func (d *ChunkedDecoder) Done() bool { return d.state == stDone }

// Trailer returns the validated trailer field lines, raw ("Name: value\r\n"
// each, without the final blank line), held in a fixed internal array;
// valid until Reset. Empty when there are no trailers. Meaningful once Done.
func (d *ChunkedDecoder) Trailer() []byte { return d.trailer[:d.tline:d.tline] }

// Decode consumes framing and data from in. It returns how many bytes of in
// it consumed, and data, a sub-slice of in holding chunk payload bytes found
// in that consumed span (possibly empty). One call returns at most one
// contiguous run of payload; callers loop while consumed < len(in) &&
// !d.Done(). Partial framing (half a size line, a lone CR, part of a
// trailer) is kept in d, so consumed == len(in) whenever no error occurs and
// the body is not finished: the caller never keeps unconsumed bytes.
//
// Errors are *Error with Status 400 (the proxy maps them to 502 for
// responses). If an error follows payload within one call, that payload is
// returned with a nil error and consumed stopping at the offending byte;
// the next call returns the error. Decode with an empty in on an unfinished
// body returns ErrNeedMore. Strictness beyond the grammar: no whitespace
// (BWS) is accepted around chunk-ext, since hops that disagree on it are a
// smuggling vector, and chunk sizes have at most 15 hex digits.
func (d *ChunkedDecoder) Decode(in []byte) (consumed int, data []byte, err error) {
	if d.err != nil {
		return 0, nil, d.err
	}
	if d.state == stDone {
		return 0, nil, nil
	}
	if len(in) == 0 {
		return 0, nil, ErrNeedMore
	}
	i := 0
	for i < len(in) {
		if d.state == stData {
			if data != nil {
				break
			}
			k := len(in) - i
			if int64(k) >= d.n {
				k = int(d.n)
				d.state = stDataCR
			}
			d.n -= int64(k)
			data = in[i : i+k : i+k] // capped: appending to data cannot clobber in
			i += k
			continue
		}
		var c errCode
		i, c = d.framing(in, i)
		if c != eNone {
			d.err = reqErr[c]
			if data != nil {
				return i, data, nil
			}
			return i, nil, d.err
		}
		if d.state == stDone {
			break
		}
	}
	return i, data, nil
}

// framing runs the state machine over in[i:] until payload starts, the body
// is done, in is exhausted, or an error occurs at in[i].
func (d *ChunkedDecoder) framing(in []byte, i int) (int, errCode) {
	for ; i < len(in); i++ {
		c := in[i]
		if d.state >= stExtName0 && d.state <= stExtAfterQuote && c != '\r' {
			d.extLen++
			if d.extLen > MaxChunkExt {
				return i, eChunkExtTooLong
			}
		}
		switch d.state {
		case stSizeStart:
			v := unhex[c]
			if v < 0 {
				return i, eChunkSize
			}
			d.n, d.ndigits, d.state = int64(v), 1, stSize
		case stSize:
			if v := unhex[c]; v >= 0 {
				if d.ndigits == maxSizeDigits {
					return i, eChunkSizeOverflow
				}
				d.n = d.n<<4 | int64(v)
				d.ndigits++
				continue
			}
			switch c {
			case '\r':
				d.state = stSizeLF
			case ';':
				d.extLen = 1
				d.state = stExtName0
			case '\n':
				return i, eChunkLineEnding
			default:
				return i, eChunkSize
			}
		case stExtName0, stExtVal0:
			switch {
			case class[c]&cTok != 0:
				d.state++ // stExtName or stExtValTok
			case c == '"' && d.state == stExtVal0:
				d.state = stExtQuoted
			default:
				return i, eChunkExt
			}
		case stExtName, stExtValTok, stExtAfterQuote:
			switch {
			case class[c]&cTok != 0 && d.state != stExtAfterQuote:
			case c == ';':
				d.state = stExtName0
			case c == '=' && d.state == stExtName:
				d.state = stExtVal0
			case c == '\r':
				d.state = stSizeLF
			default:
				return i, eChunkExt
			}
		case stExtQuoted:
			switch {
			case c == '"':
				d.state = stExtAfterQuote
			case c == '\\':
				d.state = stExtQuotedPair
			case class[c]&cQd == 0:
				return i, eChunkExt
			}
		case stExtQuotedPair:
			if class[c]&cVal == 0 {
				return i, eChunkExt
			}
			d.state = stExtQuoted
		case stSizeLF:
			if c != '\n' {
				return i, eChunkLineEnding
			}
			if d.n == 0 {
				d.state = stTrailerStart
				continue
			}
			d.state = stData
			return i + 1, eNone
		case stDataCR:
			if c != '\r' {
				return i, eChunkDataCRLF
			}
			d.state = stDataLF
		case stDataLF:
			if c != '\n' {
				return i, eChunkDataCRLF
			}
			d.state = stSizeStart
		case stTrailerStart:
			switch c {
			case '\r':
				d.state = stEndLF
				continue
			case '\n':
				return i, eChunkLineEnding
			case ' ', '\t':
				return i, eTrailer // obs-fold, RFC 9112 §5.2
			}
			d.state = stTrailerLine
			fallthrough
		case stTrailerLine:
			// Copy up to the CR in one go; LF or other invalid bytes in
			// the line are caught by splitField once the line is complete.
			j := bytes.IndexByte(in[i:], '\r')
			if j < 0 {
				j = len(in) - i
			} else {
				j++ // include the CR
				d.state = stTrailerLF
			}
			if d.tlen+j > MaxTrailer {
				return i, eTrailerTooLarge
			}
			d.tlen += copy(d.trailer[d.tlen:], in[i:i+j])
			i += j - 1
		case stTrailerLF:
			if c != '\n' {
				return i, eChunkLineEnding
			}
			if d.tlen == MaxTrailer {
				return i, eTrailerTooLarge
			}
			d.trailer[d.tlen] = '\n'
			d.tlen++
			if _, _, c := splitField(d.trailer[d.tline : d.tlen-2]); c != eNone {
				return i, eTrailer
			}
			d.tline = d.tlen
			d.state = stTrailerStart
		case stEndLF:
			if c != '\n' {
				return i, eChunkLineEnding
			}
			d.state = stDone
			return i + 1, eNone
		}
	}
	return i, eNone
}

// AppendChunkHeader appends a chunk-size line for n payload bytes:
// lowercase hex and CRLF. n must be positive (0 would be the last-chunk;
// use AppendLastChunk), negative n panics.
func AppendChunkHeader(dst []byte, n int) []byte {
	if n < 0 {
		panic("h1parse: negative chunk size")
	}
	dst = strconv.AppendUint(dst, uint64(n), 16)
	return append(dst, '\r', '\n')
}

// AppendChunkEnd appends the CRLF that follows chunk data.
func AppendChunkEnd(dst []byte) []byte {
	return append(dst, '\r', '\n')
}

// AppendLastChunk appends the last-chunk, the raw trailer field lines (as
// returned by ChunkedDecoder.Trailer: each ending in CRLF, possibly empty)
// and the final CRLF.
func AppendLastChunk(dst, trailer []byte) []byte {
	dst = append(dst, '0', '\r', '\n')
	dst = append(dst, trailer...)
	return append(dst, '\r', '\n')
}
