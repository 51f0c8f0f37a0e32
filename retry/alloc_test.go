package retry

import "testing"

// Safe and the budget allocate nothing, whatever the method bytes.
func TestHotPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race; run without it (.ci/run does)")
	}
	head := []byte("DELETE /x HTTP/1.1\r\nPOST get GET\r\n")
	methods := [][]byte{head[:6], head[20:24], head[25:28], head[29:32]}
	b := NewBudget(Config{})
	now := int64(0)
	n := 0
	f := func() {
		now += 1e6
		for _, m := range methods {
			for s := AfterResponse; s <= BeforeWrite; s++ {
				if Safe(m, false, s) {
					n++
				}
			}
		}
		b.Request(now)
		if b.TryRetry(now) {
			n++
		}
		n += int(b.Available(now))
	}
	if a := testing.AllocsPerRun(1000, f); a != 0 {
		t.Fatalf("%v allocations per run", a)
	}
	if n == 0 {
		t.Fatal("nothing exercised")
	}
}
