package loop

import (
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Task is a unit of work handed to a loop from another goroutine. The
// poster owns the Task until the loop runs it; a Task must not be posted
// again before its Run has been called. Tasks are meant to be embedded in
// long-lived objects (a response chunk, an exchange) with Run set once, so
// posting allocates nothing.
type Task struct {
	next atomic.Pointer[Task]
	// Run is called on the loop goroutine.
	Run func()
}

// door is the only way into a loop from other goroutines: an intrusive
// multi-producer single-consumer queue (Vyukov's) plus an eventfd. A burst of
// posts costs one eventfd write: only the poster that flips wakePending from
// 0 to 1 writes it, and the loop clears the flag before draining.
//
// Invariant: head and tail are never nil (stub is the permanent sentinel);
// only the loop goroutine touches tail.
type door struct {
	head        atomic.Pointer[Task] // producers swap themselves in here
	_           [56]byte             // keep producers' cache line apart from the consumer's
	tail        *Task                // consumer end, loop goroutine only
	stub        Task
	wakePending atomic.Int32
	efd         int
}

func (d *door) init(efd int) {
	d.efd = efd
	d.stub.next.Store(nil)
	d.head.Store(&d.stub)
	d.tail = &d.stub
}

// post appends t and wakes the loop if it is not already being woken.
func (d *door) post(t *Task) {
	t.next.Store(nil)
	prev := d.head.Swap(t)
	prev.next.Store(t)
	if d.wakePending.CompareAndSwap(0, 1) {
		d.wake()
	}
}

// wakeWord is the eventfd increment; a package variable so that writing it
// does not allocate (a local array would escape through the syscall).
var wakeWord = [8]byte{1}

func (d *door) wake() { unix.Write(d.efd, wakeWord[:]) }

// pop removes the oldest task, or returns nil when the queue is empty or a
// producer is between its Swap and its Store (the loop will be woken again:
// that producer already set wakePending or saw it set).
func (d *door) pop() *Task {
	tail := d.tail
	next := tail.next.Load()
	if tail == &d.stub {
		if next == nil {
			return nil
		}
		d.tail = next
		tail = next
		next = next.next.Load()
	}
	if next != nil {
		d.tail = next
		return tail
	}
	if d.head.Load() != tail {
		return nil // a producer is mid-post; its wake brings us back
	}
	// tail is the last element: put the stub behind it so tail can be handed out.
	d.post0(&d.stub)
	next = tail.next.Load()
	if next != nil {
		d.tail = next
		return tail
	}
	return nil
}

// post0 enqueues without waking (used to re-insert the stub).
func (d *door) post0(t *Task) {
	t.next.Store(nil)
	prev := d.head.Swap(t)
	prev.next.Store(t)
}
