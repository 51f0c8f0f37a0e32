package retry

import "testing"

func BenchmarkSafe(b *testing.B) {
	methods := [][]byte{[]byte("GET"), []byte("POST"), []byte("DELETE"), []byte("get")}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		Safe(methods[i&3], false, AfterWrite)
	}
}

// BenchmarkBudgetRequest is the cost every request pays.
func BenchmarkBudgetRequest(b *testing.B) {
	bu := NewBudget(Config{})
	b.ReportAllocs()
	now := int64(0)
	for b.Loop() {
		now += 1000
		bu.Request(now)
	}
}

// BenchmarkBudgetTryRetry is the cost a failed request pays to ask.
func BenchmarkBudgetTryRetry(b *testing.B) {
	bu := NewBudget(Config{})
	b.ReportAllocs()
	now := int64(0)
	for b.Loop() {
		now += 1000
		bu.Request(now)
		bu.TryRetry(now)
	}
}
