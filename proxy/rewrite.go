package proxy

import "github.com/apex-epoll/apex/h1parse"

// appendUpstreamHead writes the request head for the upstream: the request
// line with the target byte for byte, the end-to-end fields in order, the
// framing Apex chose and the X-Forwarded-* fields. Hop-by-hop fields
// (RFC 9110 §7.6.1: Connection and every field it names, Keep-Alive,
// Proxy-Connection, TE, Transfer-Encoding, Upgrade) are dropped, and so is
// Expect, which Apex answers itself.
func (cl *client) appendUpstreamHead(dst []byte, rt *route, host []byte) []byte {
	r := &cl.rs.req
	dst = append(dst, r.Method...)
	dst = append(dst, ' ')
	dst = append(dst, r.Target...)
	dst = append(dst, " HTTP/1.1\r\n"...)
	// The client address goes onto the last X-Forwarded-For that is
	// forwarded. A client naming X-Forwarded-For in Connection has its
	// own dropped, and still gets ours (CVE-2022-31813 was the opposite).
	lastXFF := -1
	for i := range r.Fields {
		if h1parse.EqualFold(r.Fields[i].Name, "x-forwarded-for") && !r.IsHopByHop(r.Fields[i].Name) {
			lastXFF = i
		}
	}
	ip := cl.c.RemoteAddr().Addr()
	for i := range r.Fields {
		f := &r.Fields[i]
		if r.IsHopByHop(f.Name) || h1parse.EqualFold(f.Name, "expect") ||
			h1parse.EqualFold(f.Name, "x-forwarded-proto") || h1parse.EqualFold(f.Name, "x-forwarded-host") {
			continue
		}
		dst = append(dst, f.Name...)
		dst = append(dst, ": "...)
		dst = append(dst, f.Value...)
		if i == lastXFF {
			dst = append(dst, ", "...)
			dst = ip.AppendTo(dst)
		}
		dst = append(dst, "\r\n"...)
	}
	if r.Host == nil {
		// An HTTP/1.0 client may omit Host; HTTP/1.1 requires one.
		dst = append(dst, "Host: "...)
		if host != nil {
			dst = append(dst, host...)
		} else {
			dst = append(dst, rt.upstreamHost...)
		}
		dst = append(dst, "\r\n"...)
	}
	if r.Chunked {
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
	}
	if lastXFF < 0 {
		dst = append(dst, "X-Forwarded-For: "...)
		dst = ip.AppendTo(dst)
		dst = append(dst, "\r\n"...)
	}
	if host != nil {
		dst = append(dst, "X-Forwarded-Host: "...)
		dst = append(dst, host...)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "X-Forwarded-Proto: http\r\n\r\n"...)
	return dst
}
