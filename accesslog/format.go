package accesslog

import (
	"net/netip"
	"strconv"
	"time"
)

// Head is what a line says about a request, known once its head is
// parsed. The byte slices are read only during AppendHead.
type Head struct {
	Time      int64 // unix nanoseconds
	Remote    netip.AddrPort
	Method    []byte
	Target    []byte
	Minor     int // HTTP/1.x
	Host      []byte
	UserAgent []byte
	Referer   []byte
	Route     string
	Backend   string
}

// End is what a line says once the response is over.
type End struct {
	Status   int    // 0: no response was sent
	Bytes    uint64 // bytes sent to the client, head included (nginx's $bytes_sent)
	Duration int64  // nanoseconds from the first request byte to the last response byte
	Upstream int64  // nanoseconds from sending upstream to the response head; -1: none
}

// AppendHead appends the request's part of a line to b and returns b and
// the split point where AppendLine puts the response's fields. b is kept
// by the caller between the two (the request's own bytes are gone by the
// time the response ends).
func (f Format) AppendHead(b []byte, h *Head) ([]byte, int) {
	if f == Combined {
		// ip - - [time] "request" STATUS BYTES "referer" "user-agent"
		b = appendAddr(b, h.Remote.Addr())
		b = append(b, " - - ["...)
		b = time.Unix(0, h.Time).UTC().AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
		b = append(b, "] \""...)
		if len(h.Method) == 0 {
			b = append(b, '-')
		} else {
			b = appendCombined(b, h.Method)
			b = append(b, ' ')
			b = appendCombined(b, h.Target)
			b = append(b, " HTTP/1."...)
			b = strconv.AppendInt(b, int64(h.Minor), 10)
		}
		b = append(b, "\" "...)
		split := len(b)
		b = append(b, " \""...)
		b = appendCombinedOrDash(b, h.Referer)
		b = append(b, "\" \""...)
		b = appendCombinedOrDash(b, h.UserAgent)
		b = append(b, '"')
		return b, split
	}
	b = append(b, `{"time":"`...)
	b = time.Unix(0, h.Time).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, `","remote_addr":"`...)
	b = appendAddr(b, h.Remote.Addr())
	b = append(b, `","remote_port":`...)
	b = strconv.AppendUint(b, uint64(h.Remote.Port()), 10)
	if len(h.Method) > 0 {
		b = append(b, `,"method":"`...)
		b = appendJSON(b, h.Method)
		b = append(b, `","uri":"`...)
		b = appendJSON(b, h.Target)
		b = append(b, `","protocol":"HTTP/1.`...)
		b = strconv.AppendInt(b, int64(h.Minor), 10)
		b = append(b, `","host":"`...)
		b = appendJSON(b, h.Host)
		b = append(b, `","user_agent":"`...)
		b = appendJSON(b, h.UserAgent)
		b = append(b, `","referer":"`...)
		b = appendJSON(b, h.Referer)
		b = append(b, '"')
	}
	if h.Route != "" || h.Backend != "" {
		b = append(b, `,"route":"`...)
		b = appendJSON(b, []byte(h.Route))
		b = append(b, `","backend":"`...)
		b = appendJSON(b, []byte(h.Backend))
		b = append(b, '"')
	}
	return b, len(b)
}

// AppendLine appends a whole line, ending in '\n': rec and split from
// AppendHead, with the response's fields in between.
func (f Format) AppendLine(b, rec []byte, split int, e *End) []byte {
	b = append(b, rec[:split]...)
	if f == Combined {
		if e.Status == 0 {
			b = append(b, '-')
		} else {
			b = strconv.AppendInt(b, int64(e.Status), 10)
		}
		b = append(b, ' ')
		b = strconv.AppendUint(b, e.Bytes, 10)
		b = append(b, rec[split:]...)
		return append(b, '\n')
	}
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendUint(b, e.Bytes, 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, float64(e.Duration)/1e6, 'f', 3, 64)
	if e.Upstream >= 0 {
		b = append(b, `,"upstream_ms":`...)
		b = strconv.AppendFloat(b, float64(e.Upstream)/1e6, 'f', 3, 64)
	}
	return append(b, "}\n"...)
}

func appendAddr(b []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(b, '-')
	}
	return a.Unmap().AppendTo(b)
}

const hexDigits = "0123456789abcdef"

// appendJSON escapes s for a JSON string, cut at MaxField. Bytes that are
// not printable ASCII are written as \u00XX, so a line is valid JSON (and
// plain ASCII) whatever a client sent.
func appendJSON(b, s []byte) []byte {
	s, cut := clip(s)
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c >= 0x7f:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
		default:
			b = append(b, c)
		}
	}
	if cut {
		b = append(b, "..."...)
	}
	return b
}

// appendCombined escapes s as nginx does in its text logs: '"', '\' and
// bytes that are not printable ASCII become \xXX.
func appendCombined(b, s []byte) []byte {
	s, cut := clip(s)
	for _, c := range s {
		if c == '"' || c == '\\' || c < 0x20 || c >= 0x7f {
			b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&15])
			continue
		}
		b = append(b, c)
	}
	if cut {
		b = append(b, "..."...)
	}
	return b
}

func appendCombinedOrDash(b, s []byte) []byte {
	if len(s) == 0 {
		return append(b, '-')
	}
	return appendCombined(b, s)
}

func clip(s []byte) ([]byte, bool) {
	if len(s) > MaxField {
		return s[:MaxField], true
	}
	return s, false
}
