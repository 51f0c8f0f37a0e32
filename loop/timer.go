package loop

// The loop's timers: one deadline per connection, kept in a hashed timing
// wheel of wheelSlots slots of tickNanos each. Arming, re-arming and
// disarming are O(1) and allocate nothing: the links live in Conn. A
// deadline further out than one turn of the wheel stays in its slot and is
// skipped until its turn comes (the deadline itself is compared, not the
// slot). Resolution is one tick, which is plenty for header, idle and
// linger timeouts measured in seconds.
const (
	tickNanos  = int64(50e6) // 50 ms
	wheelSlots = 512         // 25.6 s per turn
)

// wheel holds armed connections.
//
// Invariant: a Conn is in at most one slot list, and c.slot == -1 exactly
// when it is in none; lastTick <= now/tickNanos.
type wheel struct {
	slots    [wheelSlots]*Conn
	lastTick int64
	armed    int
	due      []*Conn // scratch for advance, reused
}

func (w *wheel) arm(c *Conn, deadline int64) {
	if c.slot >= 0 {
		w.disarm(c)
	}
	c.deadline = deadline
	// Round up: the slot is visited once, when its tick begins, and by
	// then the deadline must have passed or it would wait a whole turn.
	tick := (deadline + tickNanos - 1) / tickNanos
	if tick <= w.lastTick {
		tick = w.lastTick + 1
	}
	s := int(tick % wheelSlots)
	c.slot = s
	c.tprev = nil
	c.tnext = w.slots[s]
	if c.tnext != nil {
		c.tnext.tprev = c
	}
	w.slots[s] = c
	w.armed++
}

func (w *wheel) disarm(c *Conn) {
	if c.slot < 0 {
		return
	}
	if c.tprev != nil {
		c.tprev.tnext = c.tnext
	} else {
		w.slots[c.slot] = c.tnext
	}
	if c.tnext != nil {
		c.tnext.tprev = c.tprev
	}
	c.tprev, c.tnext = nil, nil
	c.slot = -1
	w.armed--
}

// advance fires every connection whose deadline is at or before now.
func (w *wheel) advance(now int64, fire func(*Conn)) {
	cur := now / tickNanos
	if cur <= w.lastTick {
		return
	}
	from := w.lastTick + 1
	if cur-from >= wheelSlots {
		from = cur - wheelSlots + 1
	}
	w.lastTick = cur
	// Collect first, then fire: a callback may close or re-arm any
	// connection, which would break a walk of the live lists.
	due := w.due[:0]
	for t := from; t <= cur; t++ {
		for c := w.slots[t%wheelSlots]; c != nil; c = c.tnext {
			if c.deadline <= now {
				due = append(due, c)
			}
		}
	}
	for _, c := range due {
		w.disarm(c)
	}
	for i, c := range due {
		// Skip one re-armed or closed by an earlier callback in this batch.
		if c.slot < 0 && c.fd >= 0 && c.deadline <= now {
			fire(c)
		}
		due[i] = nil
	}
	w.due = due[:0]
}
