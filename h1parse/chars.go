package h1parse

// Character classes, one bit each, looked up in a single 256-byte table so
// every validation loop is one load and one test per byte.
const (
	cTok    = 1 << iota // tchar, RFC 9110 §5.6.2
	cVal                // field-vchar / SP / HTAB, incl. obs-text, RFC 9110 §5.5
	cTarget             // request-target byte: VCHAR except '#' and '\'
	cHost               // reg-name byte without '%': unreserved / sub-delims, RFC 3986 §3.2.2
	cQd                 // qdtext, RFC 9110 §5.6.4
	cHex                // HEXDIG
	cDigit              // DIGIT
	cOWS                // SP / HTAB
)

var class = func() (t [256]uint8) {
	set := func(bit uint8, s string) {
		for i := 0; i < len(s); i++ {
			t[s[i]] |= bit
		}
	}
	const (
		alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		digit = "0123456789"
	)
	set(cTok, alpha+digit+"!#$%&'*+-.^_`|~")
	set(cHost, alpha+digit+"-._~"+"!$&'()*+,;=")
	set(cHex, digit+"abcdefABCDEF")
	set(cDigit, digit)
	set(cOWS, " \t")
	for c := 0; c < 256; c++ {
		vchar := c > 0x20 && c < 0x7f
		obs := c >= 0x80
		if vchar || obs || c == ' ' || c == '\t' {
			t[c] |= cVal
		}
		if vchar && c != '#' && c != '\\' {
			t[c] |= cTarget
		}
		if (vchar && c != '"' && c != '\\') || obs || c == ' ' || c == '\t' {
			t[c] |= cQd
		}
	}
	return t
}()

// unhex maps a HEXDIG to its value and every other byte to -1.
var unhex = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = int8(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = int8(c - 'a' + 10)
		t[c-'a'+'A'] = int8(c - 'a' + 10)
	}
	return t
}()

// lower folds ASCII letters; other bytes map to themselves (no Unicode
// folding: field names and codings are ASCII tokens).
var lower = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
		if i >= 'A' && i <= 'Z' {
			t[i] = byte(i) + 'a' - 'A'
		}
	}
	return t
}()

// EqualFold reports whether a equals s under ASCII case folding. It never
// allocates; field names and coding names are case-insensitive (RFC 9110 §5.1).
func EqualFold(a []byte, s string) bool {
	if len(a) != len(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if lower[a[i]] != lower[s[i]] {
			return false
		}
	}
	return true
}

func equalFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if lower[a[i]] != lower[b[i]] {
			return false
		}
	}
	return true
}

// trimOWS removes leading and trailing SP/HTAB. The result is a two-index
// sub-slice of s (the rebasing in headState relies on that).
func trimOWS(s []byte) []byte {
	i, j := 0, len(s)
	for i < j && class[s[i]]&cOWS != 0 {
		i++
	}
	for j > i && class[s[j-1]]&cOWS != 0 {
		j--
	}
	return s[i:j]
}

// nextElem splits the first element off a comma-separated list
// (RFC 9110 §5.6.1) and trims its OWS. Empty elements are returned as such
// so callers can skip them, as recipients must.
func nextElem(list []byte) (elem, rest []byte) {
	for i, c := range list {
		if c == ',' {
			return trimOWS(list[:i]), list[i+1:]
		}
	}
	return trimOWS(list), nil
}
