package loop

import (
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// A loop that sleeps in its own epoll_wait (BlockingWait) keeps its P. When
// it never goes idle and the spare P is busy too, a goroutine it readies
// must still run within about yieldNanos, not wait for sysmon's 10 ms
// preemption. Here the loop is kept busy by a task that posts itself again
// on every turn, a goroutine spins on the only other P, and the test
// goroutine, woken by the loop, measures how long it took to run.
func TestBusyLoopYieldsItsP(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	g, _ := startEcho(t, Config{Loops: 1, BlockingWait: true}, &echo{})
	l := g.Loops[0]

	var stop atomic.Bool
	defer stop.Store(true)
	go func() { // holds the spare P (preemptible: it is Go code)
		for !stop.Load() {
		}
	}()

	woke := make(chan time.Time, 1)
	var tasks [2]Task
	var turns int
	deadline := time.Now().Add(30 * time.Second)
	for i := range tasks {
		next := &tasks[1-i]
		tasks[i].Run = func() {
			turns++
			if turns%100 == 0 {
				select {
				case woke <- time.Now():
				default:
				}
			}
			if !stop.Load() && time.Now().Before(deadline) {
				l.Post(next) // the loop never goes idle
			}
		}
	}
	l.Post(&tasks[0])

	var waits []time.Duration
	for len(waits) < 25 {
		sent := <-woke
		waits = append(waits, time.Since(sent))
	}
	stop.Store(true)
	slices.Sort(waits)
	median := waits[len(waits)/2]
	t.Logf("wake-up delays: median %v, max %v", median, waits[len(waits)-1])
	// Measured: 1.1 ms, 5 ms under -race (whose scheduler randomizes run
	// queues), 20 ms without the yield.
	if median > 10*time.Millisecond {
		t.Fatalf("a goroutine readied by a busy loop waited %v (median of %d) for a P; want about %v", median, len(waits), time.Duration(yieldNanos))
	}
}
