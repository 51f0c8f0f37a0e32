package cacheline

import (
	"testing"
	"unsafe"
)

type padded struct {
	_ Pad
	n uint64
	_ Pad
}

type bare struct{ n uint64 }

var _ = bare{}.n + padded{}.n

func TestInnerSkipsThePads(t *testing.T) {
	var p padded
	s := Inner(&p)
	if got := uintptr(unsafe.Pointer(&p.n)); s.Lo != got || s.Hi != got+8 {
		t.Fatalf("Inner = [%#x, %#x), want [%#x, %#x)", s.Lo, s.Hi, got, got+8)
	}
}

func TestInnerRefusesUnpaddedTypes(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Inner accepted a type without pads")
		}
	}()
	Inner(&bare{})
}

func TestShared(t *testing.T) {
	for _, tc := range []struct {
		a, b Span
		want bool
	}{
		{Span{0, 8}, Span{8, 16}, true},      // one line
		{Span{0, 64}, Span{64, 128}, false},  // touching lines
		{Span{0, 65}, Span{127, 128}, true},  // byte 64 and byte 127 share line 1
		{Span{0, 64}, Span{128, 192}, false}, // a line apart
		{Span{10, 10}, Span{0, 64}, false},   // empty
	} {
		if got := Shared([]Span{tc.a}, []Span{tc.b}); got != tc.want {
			t.Errorf("Shared(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if got := Shared([]Span{tc.b}, []Span{tc.a}); got != tc.want {
			t.Errorf("Shared(%v, %v) = %v, want %v", tc.b, tc.a, got, tc.want)
		}
	}
}

// Two padded values made one after the other share no line, and neither
// do two arrays made by Slice, whatever their element size.
func TestPaddingKeepsNeighboursApart(t *testing.T) {
	a, b := new(padded), new(padded)
	sink = append(sink, a, b) // on the heap, as per-loop state is
	if Shared([]Span{Inner(a)}, []Span{Inner(b)}) {
		t.Fatalf("padded neighbours %p and %p share a line", a, b)
	}
	for _, n := range []int{1, 3, 17} {
		x, y := Slice[bare](n), Slice[bare](n)
		u, v := Slice[[24]byte](n), Slice[[24]byte](n)
		if len(x) != n || cap(x) != n || len(u) != n {
			t.Fatalf("Slice(%d): len %d cap %d", n, len(x), cap(x))
		}
		sink = append(sink, x, y, u, v)
		if Shared([]Span{Array(x), Array(u)}, []Span{Array(y), Array(v)}) {
			t.Fatalf("two arrays of %d made by Slice share a line", n)
		}
	}
	if s := Slice[bare](0); len(s) != 0 || Array(s) != (Span{}) {
		t.Fatalf("Slice(0) = %v", s)
	}
}

var sink []any
