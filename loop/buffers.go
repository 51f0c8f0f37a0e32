package loop

import "math/bits"

// bufPool is a loop's free list of byte buffers by power-of-two size class,
// from minBufShift to maxBufShift. It is touched only by its loop, so it
// needs no lock; connections take a buffer when they have bytes to hold and
// give it back when they are empty, so an idle connection holds none.
//
// Invariant: every buffer in free[i] has cap exactly 1<<(minBufShift+i), and
// the bytes held in free[i] never exceed maxFreeBytes.
type bufPool struct {
	free [maxBufShift - minBufShift + 1][][]byte
}

const (
	minBufShift  = 9  // 512 B: a partial head or a small response holds no more
	maxBufShift  = 24 // 16 MiB
	maxFreeBytes = 4 << 20
)

func sizeClass(n int) int {
	if n <= 1<<minBufShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minBufShift
}

// get returns an empty buffer with capacity at least n.
func (p *bufPool) get(n int) []byte {
	c := sizeClass(n)
	if c >= len(p.free) {
		return make([]byte, 0, n) // beyond the largest class: not pooled
	}
	if l := p.free[c]; len(l) > 0 {
		b := l[len(l)-1]
		l[len(l)-1] = nil
		p.free[c] = l[:len(l)-1]
		return b[:0]
	}
	return make([]byte, 0, 1<<(minBufShift+c))
}

// put gives b back. Buffers of a foreign capacity are left to the GC.
func (p *bufPool) put(b []byte) {
	n := cap(b)
	if n == 0 || n&(n-1) != 0 {
		return
	}
	c := sizeClass(n)
	if c >= len(p.free) || (len(p.free[c])+1)*n > maxFreeBytes {
		return
	}
	p.free[c] = append(p.free[c], b[:0])
}

// grow returns b with room for n more bytes, moving it to a larger pooled
// buffer when needed.
func (p *bufPool) grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := p.get(len(b) + n)
	nb = append(nb, b...)
	p.put(b)
	return nb
}
