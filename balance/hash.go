package balance

// FNV-1a, 64 bits (http://www.isthe.com/chongo/tech/comp/fnv/). Chosen
// over hash/maphash because it is fixed: the same key gives the same hash
// in every loop, process and release, which a consistent-hash key needs
// when several proxies must agree on a client's server. Its weak high-bit
// mixing does not matter: Pick mixes the key again before using it.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// Sum64 is the 64-bit FNV-1a hash of b, for Pick's key. It does not
// allocate.
func Sum64(b []byte) uint64 {
	h := uint64(fnvOffset)
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}

// Sum64String is Sum64 of a string, without converting it.
func Sum64String(s string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// mix64 is the MurmurHash3 finalizer: every input bit flips about half of
// the output bits. Pick applies it to the caller's key, so a weak key (a
// raw IPv4 address, a counter) still spreads over the whole ring.
func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
