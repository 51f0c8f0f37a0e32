package balance

import (
	"fmt"
	"testing"
)

// BenchmarkPick measures one Pick per policy and backend size, with one
// server in eight unavailable and every server with a latency sample, as
// fresh as on a busy backend (under freshAge old).
func BenchmarkPick(b *testing.B) {
	for _, p := range policies {
		for _, n := range []int{2, 8, 64} {
			b.Run(fmt.Sprintf("%v/servers=%d", p, n), func(b *testing.B) {
				benchPick(b, p, n, 0)
			})
		}
	}
	// p2c's worst case: every sample older than freshAge, so both
	// candidates' prices are decayed with math.Exp2.
	b.Run("p2c-stale/servers=8", func(b *testing.B) { benchPick(b, P2C, 8, 60e9) })
}

func benchPick(b *testing.B, p Policy, n int, now int64) {
	bl := New(p, servers(n), 1)
	for i := range n {
		bl.Observe(i, 0, int64(1e6+i*1e4))
		if i%8 == 7 {
			bl.SetAvailable(i, false)
		}
	}
	b.ReportAllocs()
	key := uint64(0x243f6a8885a308d3)
	for b.Loop() {
		key += 0x9e3779b97f4a7c15
		if bl.Pick(now, key) < 0 {
			b.Fatal("no server")
		}
	}
}

// BenchmarkRequest is the balancer's whole share of one request with p2c:
// Pick, Start, Observe, Done.
func BenchmarkRequest(b *testing.B) {
	bl := New(P2C, servers(8), 1)
	b.ReportAllocs()
	var now int64
	for b.Loop() {
		now += 1e4
		i := bl.Pick(now, 0)
		bl.Start(i)
		bl.Observe(i, now, 1e6)
		bl.Done(i)
	}
}

func BenchmarkSetAvailable(b *testing.B) {
	bl := New(P2C, servers(8), 1)
	b.ReportAllocs()
	for b.Loop() {
		bl.SetAvailable(3, false)
		bl.SetAvailable(3, true)
	}
}

func BenchmarkSum64(b *testing.B) {
	for _, n := range []int{8, 32, 128} {
		key := make([]byte, n)
		for i := range key {
			key[i] = byte('a' + i%26)
		}
		b.Run(fmt.Sprintf("bytes=%d", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				_ = Sum64(key)
			}
		})
	}
}

// BenchmarkNew is the one-time cost of building a Balancer (the ring, for
// hash) and of cloning one for another loop.
func BenchmarkNew(b *testing.B) {
	s := servers(8)
	b.Run("hash", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = New(Hash, s, 1)
		}
	})
	b.Run("hash/Clone", func(b *testing.B) {
		bl := New(Hash, s, 1)
		b.ReportAllocs()
		for b.Loop() {
			_ = bl.Clone(2)
		}
	})
}
