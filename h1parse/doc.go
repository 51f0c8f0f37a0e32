// Package h1parse is a strict, incremental, zero-allocation parser for
// HTTP/1.1 message heads and chunked bodies (RFC 9110, RFC 9112). It turns
// bytes into messages and nothing else: no I/O, no goroutines, no knowledge
// of proxies. Every []byte it returns is a sub-slice of the caller's buffer
// (or, for ChunkedDecoder.Trailer, of the decoder's own fixed array).
//
// # Contract
//
// Request.Parse and Response.Parse take the bytes read so far. While the head
// is incomplete they return ErrNeedMore; the caller appends more bytes (the
// buffer may be reallocated, but its prefix must not change) and calls Parse
// again, which resumes at the saved scan offset instead of rescanning. Limits
// are enforced on the partial input too, so a caller never buffers more than
// MaxHeaderBytes. On success HeadLen is the length of the head, including any
// leading empty lines and the final CRLF; the body (if any) starts there.
// Reset readies a value for the next message and keeps the Fields capacity,
// after which parsing allocates nothing.
//
// ChunkedDecoder.Decode consumes a chunked body in arbitrary pieces. Partial
// framing (half a size line, a lone CR, an unfinished trailer line) is kept
// inside the decoder, so the caller never holds on to unconsumed bytes; data
// is returned as sub-slices of the input.
//
// Every failure is one of the package-level *Error variables, whose Status
// is the response a server should send before closing the connection.
// Response.Parse reports every failure with Status 502.
//
// # Policy
//
// The parser is deliberately stricter than the grammar where leniency has
// led to request smuggling or desynchronisation between hops:
//
//	Status  Refused (requests)
//	400     Content-Length together with Transfer-Encoding (RFC 9112 §6.1)
//	400     more than one Content-Length field, or a list value ("5, 5")
//	400     Content-Length that is not 1-18 plain digits ("+5", "-1", "5a", "1 2", "")
//	400     Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1)
//	400     transfer coding chunked applied twice; final coding not chunked (§6.3)
//	400     HTTP/1.1 without Host; several Host fields; Host that is not
//	        reg-name / IPv4 / [IP-literal] with an optional port (RFC 9112 §3.2)
//	400     whitespace between field name and colon (RFC 9112 §5.1)
//	400     obs-fold: a field line starting with SP or HTAB (RFC 9112 §5.2)
//	400     a line not ending in CRLF (bare LF), a bare CR, NUL, DEL or any CTL
//	        other than HTAB in a field value (RFC 9110 §5.5); obs-text is allowed
//	400     field name empty or not a token (RFC 9110 §5.6.2)
//	400     request line other than METHOD SP TARGET SP HTTP/d.d; method not
//	        a token; malformed version ("HTTP/1.10", "http/1.1")
//	400     request target that is not origin-form, http(s) absolute-form with
//	        a non-empty authority and no userinfo, "*" for OPTIONS, or
//	        authority-form host:port for (and only for) CONNECT; any CTL, SP,
//	        DEL, byte >= 0x80, '#' or '\' in the target (RFC 9112 §3.2)
//	400     more than 16 Connection options
//	414     request line longer than MaxRequestLine
//	431     head longer than MaxHeaderBytes, or more than MaxFields fields
//	501     a transfer coding other than chunked (e.g. "gzip, chunked")
//	505     HTTP major version other than 1 (HTTP/2.0, HTTP/0.9, HTTP/3.0)
//
// When a list ends in something other than chunked, the 400 of RFC 9112 §6.3
// wins over the 501 for an unknown coding: "gzip" alone is 400, while
// "gzip, chunked" is 501. An HTTP/1.x version with x > 1 is read as 1.1
// (RFC 9110 §6.2). Leading empty lines before a request line are skipped
// (RFC 9112 §2.2) within MaxHeaderBytes.
//
// Responses follow the same field rules; a status line must be
// HTTP/1.x SP 3DIGIT SP reason or HTTP/1.x SP 3DIGIT (empty reason, with or
// without the SP), the status in 100..999. Every violation, including the
// framing ones (CL with TE, several or invalid CL, TE in HTTP/1.0, any coding
// other than a single final chunked), and any empty line before the status
// line, is 502.
//
// Chunked bodies (RFC 9112 §7.1) are refused with 400 when a chunk size is
// not 1-15 hex digits, a size or data is not followed by CRLF, a chunk-ext
// is not ;name, ;name=token or ;name="quoted" (no whitespace; at most
// MaxChunkExt bytes per line), or a trailer field line breaks the head field
// rules or the trailer section exceeds MaxTrailer bytes.
//
// IsHopByHop names Connection, Keep-Alive, Proxy-Connection, TE,
// Transfer-Encoding, Upgrade and every option of a Connection field, except
// Content-Length and Host: nominating those would let a client strip the
// framing or authority of the forwarded message.
//
// Field names are matched case-insensitively everywhere.
package h1parse
