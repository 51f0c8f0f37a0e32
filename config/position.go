package config

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Error is a problem in a configuration document, located by line and key.
// Parse and Load report every problem in the document itself as an *Error,
// so a caller can recover the position with errors.As.
type Error struct {
	File string // the name given to Parse, or the path given to Load
	Line int    // 1-based line of the offending key, value or table header

	// Key is the path of the offending key in dotted form, with [index]
	// for array elements and arrays of tables, e.g. "backend[0].servers[1]"
	// or "route[2].backend". A key that is not a bare TOML key is quoted.
	// Key is empty only for a syntax error that no key can be blamed for,
	// such as a malformed table header.
	Key string

	Msg string // what is wrong, without position or key
}

// Error returns "FILE:LINE: KEY: message", or "FILE:LINE: message" when
// Key is empty.
func (e *Error) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Key, e.Msg)
}

// index maps the key paths of a document to where they are written.
//
// go-toml decodes into values that no longer know their position, and its
// own errors name keys without array indexes. The index is built from a
// second pass with go-toml's unstable parser, which exposes the byte range
// of every key and value, so that any problem found after decoding can be
// reported at the line of the key path that caused it.
type index struct {
	data       []byte
	lineStarts []int          // byte offset at which each line starts
	first      map[string]int // key path -> offset of its first definition
	arrays     map[string]int // array-of-tables path -> elements seen so far
	spans      []span         // key/value and table header ranges, in order
	headers    []span         // table headers only, in order
	lastEnd    int            // end of the last expression parsed

	// errOff and errMsg describe a syntax error met by the unstable
	// parser; errMsg is empty if it parsed the whole document.
	errOff int
	errMsg string
}

// span is the byte range [start, end) of one key/value or table header,
// and the key path it defines.
type span struct {
	start, end int
	path       string
}

func newIndex(data []byte) *index {
	ix := &index{
		data:       data,
		lineStarts: []int{0},
		first:      make(map[string]int),
		arrays:     make(map[string]int),
	}
	for i, c := range data {
		if c == '\n' {
			ix.lineStarts = append(ix.lineStarts, i+1)
		}
	}

	var p unstable.Parser
	p.Reset(data)
	table := "" // the path of the table that key/values belong to
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			parts, start, end := keyParts(e.Key())
			table = ix.tablePath(parts, e.Kind == unstable.ArrayTable, start)
			sp := span{start, end, table}
			ix.spans = append(ix.spans, sp)
			ix.headers = append(ix.headers, sp)
			ix.lastEnd = end
		case unstable.KeyValue:
			ix.keyValue(table, e)
			ix.lastEnd = int(e.Raw.Offset + e.Raw.Length)
		}
	}
	if err := p.Error(); err != nil {
		ix.errOff = len(data)
		ix.errMsg = err.Error()
		var pe *unstable.ParserError
		if errors.As(err, &pe) {
			ix.errMsg = pe.Message
			if len(pe.Highlight) > 0 {
				ix.errOff = int(p.Range(pe.Highlight).Offset)
			}
		}
	}
	return ix
}

// keyParts returns the parts of a (possibly dotted) key and the byte range
// the key covers.
func keyParts(it unstable.Iterator) (parts []string, start, end int) {
	start = -1
	for it.Next() {
		k := it.Node()
		parts = append(parts, string(k.Data))
		if start < 0 {
			start = int(k.Raw.Offset)
		}
		end = int(k.Raw.Offset + k.Raw.Length)
	}
	return parts, start, end
}

// tablePath returns the path of the table a header opens. Headers name
// tables from the root; a part that names an array of tables refers to its
// last element, as in TOML.
func (ix *index) tablePath(parts []string, array bool, off int) string {
	path := ""
	for i, k := range parts {
		path = joinKey(path, k)
		if array && i == len(parts)-1 {
			n := ix.arrays[path]
			ix.arrays[path] = n + 1
			ix.define(path, off)
			path = indexKey(path, n)
		} else if n, ok := ix.arrays[path]; ok {
			path = indexKey(path, n-1)
		}
		ix.define(path, off)
	}
	return path
}

// keyValue indexes a key/value, top-level or inside an inline table.
func (ix *index) keyValue(table string, kv *unstable.Node) {
	parts, start, _ := keyParts(kv.Key())
	path := table
	for _, k := range parts {
		path = joinKey(path, k)
		ix.define(path, start)
	}
	ix.spans = append(ix.spans, span{int(kv.Raw.Offset), int(kv.Raw.Offset + kv.Raw.Length), path})
	ix.value(path, kv.Value(), start)
}

// value indexes the elements of arrays and the keys of inline tables
// within a value; off is the position to use for an element that has no
// position of its own (an empty nested array).
func (ix *index) value(path string, v *unstable.Node, off int) {
	switch v.Kind {
	case unstable.Array:
		i := 0
		for it := v.Children(); it.Next(); i++ {
			el := it.Node()
			p := indexKey(path, i)
			elOff, ok := nodeOffset(el)
			if !ok {
				elOff = off
			}
			ix.define(p, elOff)
			ix.value(p, el, elOff)
		}
	case unstable.InlineTable:
		for it := v.Children(); it.Next(); {
			ix.keyValue(path, it.Node())
		}
	}
}

// nodeOffset returns where a node starts. Container nodes carry no range
// of their own in go-toml's AST, so for them it is where their first
// element starts.
func nodeOffset(n *unstable.Node) (int, bool) {
	if n.Raw.Length > 0 {
		return int(n.Raw.Offset), true
	}
	for it := n.Children(); it.Next(); {
		if off, ok := nodeOffset(it.Node()); ok {
			return off, true
		}
	}
	return 0, false
}

func (ix *index) define(path string, off int) {
	if _, ok := ix.first[path]; !ok {
		ix.first[path] = off
	}
}

// has reports whether path is written in the document.
func (ix *index) has(path string) bool {
	_, ok := ix.first[path]
	return ok
}

// offset returns where path is first defined, or -1.
func (ix *index) offset(path string) int {
	if off, ok := ix.first[path]; ok {
		return off
	}
	return -1
}

// line returns the line of path. For a path that is not written, such as
// a missing required key, it is the line of the nearest enclosing table or
// key that is, and line 1 if none is.
func (ix *index) line(path string) int {
	for path != "" {
		if off, ok := ix.first[path]; ok {
			return ix.lineOf(off)
		}
		path = parentKey(path)
	}
	return 1
}

func (ix *index) lineOf(off int) int {
	return sort.Search(len(ix.lineStarts), func(i int) bool { return ix.lineStarts[i] > off })
}

// spanAt returns the path of the innermost key/value or table header
// containing off, or "".
func (ix *index) spanAt(off int) string {
	best := -1
	for i, s := range ix.spans {
		if s.start <= off && off < s.end && (best < 0 || s.start >= ix.spans[best].start) {
			best = i
		}
	}
	if best < 0 {
		return ""
	}
	return ix.spans[best].path
}

// tomlError turns an error from go-toml's decoder into an *Error.
func (ix *index) tomlError(file string, err error) *Error {
	var de *toml.DecodeError
	if !errors.As(err, &de) {
		return &Error{File: file, Line: 1, Msg: "invalid TOML: " + strings.TrimPrefix(err.Error(), "toml: ")}
	}
	row, col := de.Position()
	off := len(ix.data)
	if row >= 1 && row <= len(ix.lineStarts) {
		off = min(ix.lineStarts[row-1]+col-1, len(ix.data))
	}
	return ix.syntaxError(file, off, strings.TrimPrefix(de.Error(), "toml: "))
}

// syntaxError reports a document that is not valid TOML at offset off. The
// key is the key/value the offset falls in if the expression parsed (as
// for a duplicate key), else a guess from the text of the expression that
// failed to parse.
func (ix *index) syntaxError(file string, off int, msg string) *Error {
	key := ix.spanAt(off)
	if key == "" {
		key = ix.guessKey(off)
	}
	return &Error{File: file, Line: ix.lineOf(off), Key: key, Msg: "invalid TOML: " + msg}
}

var (
	// headerStart matches the start of a table header, capturing its name.
	headerStart = regexp.MustCompile(`^\[\[?[ \t]*([A-Za-z0-9_\-]+(?:[ \t]*\.[ \t]*[A-Za-z0-9_\-]+)*)`)
	// keyStart matches the start of a key/value with a bare (possibly
	// dotted) key, capturing the key.
	keyStart = regexp.MustCompile(`^([A-Za-z0-9_\-]+(?:[ \t]*\.[ \t]*[A-Za-z0-9_\-]+)*)[ \t]*=`)
	// ignorable matches blank space and comments between expressions.
	ignorable = regexp.MustCompile(`^(?:[ \t\r\n]|#[^\n]*)*`)
	// spaceDot matches a dot with the blanks TOML allows around it.
	spaceDot = regexp.MustCompile(`[ \t]*\.[ \t]*`)
)

// guessKey names the key of the expression that contains off and that the
// parser could not parse, from its text: the expression starts on the
// first line after the last expression parsed that is not blank or a
// comment. It returns the table the expression is in when the key is not
// recognisable, and "" for a table header it cannot read.
func (ix *index) guessKey(off int) string {
	start := 0
	if len(ix.spans) > 0 {
		// Skip the rest of the line the last expression ended on: a
		// header's closing brackets, a comment.
		start = ix.lastEnd
		if i := bytes.IndexByte(ix.data[start:], '\n'); i >= 0 {
			start += i + 1
		} else {
			start = len(ix.data)
		}
	}
	exprStart := off
	var text []byte // the failed expression, if it starts on its own line
	if start <= off {
		t := ix.data[start:]
		t = t[len(ignorable.Find(t)):]
		if s := len(ix.data) - len(t); s <= off && len(t) > 0 {
			exprStart, text = s, t
		}
	}
	if len(text) > 0 && text[0] == '[' {
		if m := headerStart.FindSubmatch(text); m != nil {
			return spaceDot.ReplaceAllString(string(m[1]), ".")
		}
		return ""
	}
	path := ""
	for i := len(ix.headers) - 1; i >= 0; i-- {
		if ix.headers[i].start < exprStart {
			path = ix.headers[i].path
			break
		}
	}
	if m := keyStart.FindSubmatch(text); m != nil {
		for _, k := range spaceDot.Split(string(m[1]), -1) {
			path = joinKey(path, k)
		}
	}
	return path
}

// joinKey appends key k to path, quoting k if it is not a bare TOML key,
// so that the result reads unambiguously.
func joinKey(path, k string) string {
	if !isBareKey(k) {
		k = strconv.Quote(k)
	}
	if path == "" {
		return k
	}
	return path + "." + k
}

// indexKey appends an array index to path.
func indexKey(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// parentKey removes the last key or index from path. It is used only to
// locate keys that are absent, which are always bare.
func parentKey(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

func isBareKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; !isAlnum(c) && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
