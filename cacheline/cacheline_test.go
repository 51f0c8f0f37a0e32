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

// Two padded values made one after the other, as the allocator places
// them, share no line.
func TestPaddedNeighboursShareNoLine(t *testing.T) {
	a, b := new(padded), new(padded)
	if Shared([]Span{Inner(a)}, []Span{Inner(b)}) {
		t.Fatalf("padded neighbours %p and %p share a line", a, b)
	}
	es := Elems(make([]padded, 4))
	for i := 1; i < len(es); i++ {
		if Shared(es[:i], es[i:i+1]) {
			t.Fatalf("element %d shares a line with an earlier one", i)
		}
	}
}
