package proxy

import (
	"bytes"
	"strconv"

	"github.com/apex-epoll/apex/backend"
	"github.com/apex-epoll/apex/config"
	"github.com/apex-epoll/apex/h1parse"
)

// route is one [[route]] entry, resolved: either a backend or a fixed
// response.
type route struct {
	host    []byte // lower case, no port; nil matches any host
	prefix  []byte
	backend *backend.Backend
	// upstreamHost is sent as Host to the backend when the client sent
	// none (an HTTP/1.0 request): HTTP/1.1 requires one (RFC 9112 §3.2).
	upstreamHost []byte
	fixed        bool   // a "return" route: answered by Apex itself
	status       int    // the fixed status
	fixedHead    []byte // its status line and fields, without the final CRLF
	fixedBody    []byte
	stat         int    // metrics id of (label, backend name), stable across reloads
	label        string // routeLabel, for the access log
	backendName  string
	hashKey      config.HashKey // the backend's balancing key (balance = "hash")
}

// routeLabel names a route in metrics and logs: host and path prefix.
func routeLabel(r *config.Route) string { return r.Host + r.PathPrefix }

// routes is an immutable table: loops read it without locks.
type routes struct {
	list []route
}

// buildRoutes resolves cfg's routes; statID gives each its metrics id.
func buildRoutes(cfg *config.Config, backends map[string]*backend.Backend, statID func(label, backend string) int) *routes {
	rt := &routes{}
	for _, r := range cfg.Routes {
		e := route{prefix: []byte(r.PathPrefix), stat: statID(routeLabel(&r), r.Backend),
			label: routeLabel(&r), backendName: r.Backend}
		if r.Host != "" {
			e.host = bytes.ToLower([]byte(r.Host))
		}
		if r.Backend != "" {
			e.backend = backends[r.Backend]
			for _, b := range cfg.Backends {
				if b.Name == r.Backend && len(b.Servers) > 0 {
					e.upstreamHost = []byte(b.Servers[0].Addr)
					if b.Balance == "hash" {
						e.hashKey = b.HashKey
					}
				}
			}
		} else {
			e.fixed = true
			e.status = r.Return
			e.fixedHead = fixedHead(r.Return, r.Body)
			e.fixedBody = []byte(r.Body)
		}
		rt.list = append(rt.list, e)
	}
	return rt
}

func fixedHead(status int, body string) []byte {
	b := []byte("HTTP/1.1 ")
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, statusText(status)...)
	b = append(b, "\r\n"...)
	if status >= 200 && status != 204 && status != 304 {
		b = append(b, "Content-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, "\r\n"...)
	}
	// The final CRLF is added by the writer after any Connection field.
	return b
}

// match returns the first route, in file order, whose host and path prefix
// match; nil when none does (404). host is the request's Host (or the
// absolute-form authority): compared case-insensitively, port ignored.
func (rt *routes) match(host, path []byte) *route {
	host = stripPort(host)
	for i := range rt.list {
		r := &rt.list[i]
		if r.host != nil && !equalFoldBytes(host, r.host) {
			continue
		}
		if !bytes.HasPrefix(path, r.prefix) {
			continue
		}
		return r
	}
	return nil
}

func stripPort(h []byte) []byte {
	if len(h) > 0 && h[0] == '[' { // [v6]:port
		if i := bytes.IndexByte(h, ']'); i >= 0 {
			return h[:i+1]
		}
		return h
	}
	if i := bytes.LastIndexByte(h, ':'); i >= 0 {
		return h[:i]
	}
	return h
}

func equalFoldBytes(a, lowerB []byte) bool {
	if len(a) != len(lowerB) {
		return false
	}
	for i := range a {
		c := a[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lowerB[i] {
			return false
		}
	}
	return true
}

// splitTarget returns the authority (absolute-form only) and the path of a
// request target.
func splitTarget(t []byte) (authority, path []byte) {
	if len(t) > 0 && t[0] == '/' {
		return nil, t
	}
	var rest []byte
	switch {
	case len(t) >= 7 && h1parse.EqualFold(t[:7], "http://"):
		rest = t[7:]
	case len(t) >= 8 && h1parse.EqualFold(t[:8], "https://"):
		rest = t[8:]
	default:
		return nil, t // "*" for OPTIONS
	}
	i := bytes.IndexAny(rest, "/?")
	if i < 0 {
		return rest, []byte("/")
	}
	if rest[i] == '?' {
		return rest[:i], rest[i:]
	}
	return rest[:i], rest[i:]
}
