package config

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// addrProblem checks a host:port address and returns what is wrong with
// it, or "". The port must be numeric, because a service name would make
// the meaning of the file depend on the machine's /etc/services. The host
// may be empty ("all interfaces") unless needHost is set, as for an
// upstream server, which must be somewhere.
func addrProblem(addr string, needHost bool) string {
	if addr == "" {
		return "empty; want host:port"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if !errors.As(err, &ae) {
			return err.Error()
		}
		msg := strings.TrimSuffix(ae.Err, " in address")
		if msg == "too many colons" {
			msg += "; write an IPv6 address in brackets, like [::1]:8080"
		}
		return msg
	}
	switch {
	case port == "":
		return "missing port"
	case !isDigits(port):
		return "non-numeric port " + strconv.Quote(port)
	}
	// A listener may ask for port 0 (the kernel picks a free port, which
	// the log then names): tests and ad-hoc runs use it. An upstream may not.
	lo := minPort
	if !needHost {
		lo = 0
	}
	if n, err := strconv.Atoi(port); err != nil || n < lo || n > maxPort {
		return "port " + port + " out of range " + strconv.Itoa(lo) + "..65535"
	}
	switch {
	case host == "":
		if needHost {
			return "missing host"
		}
	case strings.Contains(host, ":"):
		// SplitHostPort only returns a host with colons from inside
		// brackets.
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() {
			return "invalid IPv6 address " + strconv.Quote(host)
		}
	case !validHostname(host):
		return "invalid host " + strconv.Quote(host)
	}
	return ""
}

// canonicalAddr returns a form of a valid host:port address in which two
// spellings of the same address are equal, to find duplicates.
func canonicalAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if a, err := netip.ParseAddr(host); err == nil {
		host = a.String()
	}
	if n, err := strconv.Atoi(port); err == nil {
		port = strconv.Itoa(n)
	}
	return net.JoinHostPort(strings.ToLower(host), port)
}

// normalizeHost turns the host of a route into the form routes match on:
// lower case, without a port; a bracketed IPv6 address keeps its brackets,
// as it has them in a Host header. It returns the problem with h, or "".
// The empty host (any host) is valid.
func normalizeHost(h string) (host, problem string) {
	h = strings.ToLower(h)
	if h == "" {
		return "", ""
	}
	if strings.ContainsAny(h, "/ \t") {
		return h, "want a host name, without scheme, path or spaces"
	}
	var port string
	if h[0] == '[' {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return h, "missing ']'"
		}
		if a, err := netip.ParseAddr(h[1:end]); err != nil || !a.Is6() {
			return h, "invalid IPv6 address " + strconv.Quote(h[1:end])
		}
		rest := h[end+1:]
		h = h[:end+1]
		if rest != "" {
			var ok bool
			if port, ok = strings.CutPrefix(rest, ":"); !ok {
				return h, "unexpected " + strconv.Quote(rest) + " after ']'"
			}
		}
	} else {
		if strings.Count(h, ":") > 1 {
			return h, "write an IPv6 address in brackets, like [::1]"
		}
		var hasPort bool
		h, port, hasPort = strings.Cut(h, ":")
		if hasPort && port == "" {
			return h, "missing port after ':'"
		}
		if !validHostname(h) {
			return h, "want a host name such as example.com, or an IP address"
		}
	}
	if port != "" {
		if n, err := strconv.Atoi(port); !isDigits(port) || err != nil || n < minPort || n > maxPort {
			return h, "invalid port " + strconv.Quote(port)
		}
	}
	return h, ""
}

// validHostname reports whether h is a plausible DNS name or IPv4
// address: dot-separated labels of letters, digits, '-' and '_' (the
// latter is common in internal names). It is deliberately not a full
// RFC 1123 check; it exists to catch URLs, paths and typos.
func validHostname(h string) bool {
	if h == "" || len(h) > maxHostNameLen {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > maxHostLabelLen {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isAlnum(c) && c != '-' && c != '_' {
				return false
			}
		}
	}
	return true
}

// nameProblem checks a backend name, returning what is wrong or "". Names
// are restricted so that they can appear unquoted in logs and metrics.
func nameProblem(name string) string {
	switch {
	case name == "":
		return "must not be empty"
	case len(name) > maxBackendNameLen:
		return "longer than " + strconv.Itoa(maxBackendNameLen) + " bytes"
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isAlnum(c) && c != '_' && c != '.' && c != '-' {
			return "use only the characters A-Z a-z 0-9 _ . -"
		}
	}
	return ""
}

// pathPrefixProblem checks a route's path prefix, returning what is wrong
// or "". Request paths are origin-form, so a prefix that does not start
// with "/", or that contains a character no request target can contain,
// would never match.
func pathPrefixProblem(p string) string {
	if !strings.HasPrefix(p, "/") {
		return `must start with "/"`
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c == 0x7f {
			return "contains a space or control character"
		}
	}
	return ""
}
