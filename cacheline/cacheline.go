// Package cacheline keeps the state that different event loops write on
// different cache lines. Each loop owns its own copies of the per-request
// state (upstream pools, balancers, limiters, health and breaker records),
// and most of them are made one after another by one goroutine at start and
// on reload, so the allocator tends to put loop 0's object right next to
// loop 1's. Two loops writing into one 64-byte line would bounce it between
// their CPUs on every request ("false sharing"), although they share no
// data. A type that a loop writes on the hot path therefore starts and ends
// with a Pad, and an array of them is made by Slice (padded as a whole, its
// elements belonging to one loop): what a loop writes is at least a line
// away from any neighbour's.
package cacheline

import (
	"fmt"
	"reflect"
	"unsafe"

	"golang.org/x/sys/cpu"
)

// Pad is one cache line of padding: the first and the last field of a
// padded type.
type Pad = cpu.CacheLinePad

// Size is the cache line size Pad is made of.
const Size = unsafe.Sizeof(Pad{})

// A Span is the bytes [Lo, Hi) of a padded value between its two pads:
// the part its owner writes.
type Span struct{ Lo, Hi uintptr }

var padType = reflect.TypeFor[Pad]()

// Inner returns the span of *p between its pads. It panics if T does not
// start and end with a Pad, so a test that uses it also checks the layout.
func Inner[T any](p *T) Span {
	t := reflect.TypeFor[T]()
	if t.Kind() != reflect.Struct || t.NumField() < 3 ||
		t.Field(0).Type != padType || t.Field(t.NumField()-1).Type != padType {
		panic(fmt.Sprintf("cacheline: %v does not start and end with a cacheline.Pad", t))
	}
	lo := uintptr(unsafe.Pointer(p))
	return Span{lo + Size, lo + unsafe.Sizeof(*p) - Size}
}

// Slice returns n zero Ts with at least a cache line of unused memory
// before the first and after the last: an array one loop writes, padded
// as a whole rather than element by element (its elements share lines
// only with each other). Its capacity is n, so an append moves it and
// loses the padding: use it for arrays of fixed length.
func Slice[T any](n int) []T {
	var zero T
	size := unsafe.Sizeof(zero)
	if size == 0 || n == 0 {
		return make([]T, n)
	}
	k := int((Size + size - 1) / size) // elements that make up a line
	return make([]T, n+2*k)[k : k+n : k+n]
}

// Array returns the span of the elements of s, from the first to the end
// of the last (empty for an empty s).
func Array[T any](s []T) Span {
	if len(s) == 0 {
		return Span{}
	}
	lo := uintptr(unsafe.Pointer(&s[0]))
	return Span{lo, lo + uintptr(len(s))*unsafe.Sizeof(s[0])}
}

// Shared reports whether some cache line holds bytes of a span of a and of
// a span of b.
func Shared(a, b []Span) bool {
	for _, x := range a {
		for _, y := range b {
			if x.Lo >= x.Hi || y.Lo >= y.Hi {
				continue
			}
			if x.Lo/Size <= (y.Hi-1)/Size && y.Lo/Size <= (x.Hi-1)/Size {
				return true
			}
		}
	}
	return false
}
