package balance

import (
	"cmp"
	"math/bits"
	"slices"
)

// Ring size. A server gets pointsPerWeight points per unit of weight, so
// its point count depends on its own weight only and adding or removing a
// server leaves every other server's points, and keys, in place. The share
// of a server with p points strays from its weight's share by about
// 1/sqrt(p): 6% at 256. A backend whose weights add up to more than
// maxRingPoints/pointsPerWeight (256) gets fewer points per weight, so the
// ring stays within maxRingPoints (12 bytes a point, plus the bucket table,
// once per backend: clones share it); every server keeps at least one
// point. Its points are then a prefix of the same sequence, so a change of
// scale moves only the keys of the points added or dropped.
const (
	pointsPerWeight = 256
	maxRingPoints   = 1 << 16
)

// ring is a consistent-hash ring: the owner of a key is the server of the
// first point at or after mix64(key), wrapping around.
//
// Invariant: hashes is sorted ascending and len(owners) == len(hashes) >=
// len(servers) when there is at least one server; bucket has 1<<shiftBits
// + 1 entries, and bucket[k] is the index of the first point whose top
// shiftBits bits are >= k (bucket[1<<shiftBits] == len(hashes)). A ring is
// never written after newRing, so Balancers on different goroutines share
// it.
type ring struct {
	hashes    []uint64
	owners    []int32
	bucket    []uint32
	shiftBits uint
}

func newRing(servers []Server) *ring {
	r := &ring{}
	if len(servers) == 0 {
		return r
	}
	var total int64
	for _, s := range servers {
		total += int64(max(s.Weight, 1))
	}
	size := min(pointsPerWeight*total, maxRingPoints)
	type point struct {
		h     uint64
		owner int32
	}
	var pts []point
	for i, s := range servers {
		w := int64(max(s.Weight, 1))
		n := max(1, w*size/total) // w*pointsPerWeight unless capped
		// The points of a server are a splitmix64 sequence seeded by the
		// hash of its name: stable, independent of the other servers, so
		// adding or removing a server leaves every other point in place.
		base := Sum64String(s.Name)
		for v := int64(1); v <= n; v++ {
			pts = append(pts, point{mix64(base + uint64(v)*0x9e3779b97f4a7c15), int32(i)})
		}
	}
	// Equal hashes (as good as never with 64 bits, but equal names make
	// them) are ordered by server index, so the ring stays deterministic.
	slices.SortFunc(pts, func(a, b point) int {
		if c := cmp.Compare(a.h, b.h); c != 0 {
			return c
		}
		return cmp.Compare(a.owner, b.owner)
	})
	r.hashes = make([]uint64, len(pts))
	r.owners = make([]int32, len(pts))
	for k, p := range pts {
		r.hashes[k], r.owners[k] = p.h, p.owner
	}
	// About one point per bucket, so a lookup is an index and a short scan
	// rather than a binary search over the whole ring.
	r.shiftBits = uint(min(16, max(1, bits.Len(uint(len(pts))))))
	nb := 1 << r.shiftBits
	r.bucket = make([]uint32, nb+1)
	k := 0
	for b := 0; b <= nb; b++ {
		for k < len(pts) && pts[k].h>>(64-r.shiftBits) < uint64(b) {
			k++
		}
		r.bucket[b] = uint32(k)
	}
	return r
}

// search returns the index of the first point >= h, wrapping to 0.
func (r *ring) search(h uint64) int {
	b := h >> (64 - r.shiftBits)
	lo, hi := int(r.bucket[b]), int(r.bucket[b+1])
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r.hashes[m] < h {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(r.hashes) {
		return 0
	}
	return lo
}

// pickHash returns the owner of key's point, or, when that server is
// unavailable, the owner of the next point clockwise whose server is
// available: the keys of an unavailable server spread over the others in
// proportion to their points, and no other key moves.
func (b *Balancer) pickHash(key uint64) int {
	if len(b.avail) == 0 {
		return -1
	}
	r := b.ring
	k := r.search(mix64(key))
	for {
		if i := int(r.owners[k]); b.servers[i].availPos >= 0 {
			return i
		}
		// Terminates: an available server owns at least one point.
		if k++; k == len(r.owners) {
			k = 0
		}
	}
}
