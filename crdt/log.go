package crdt

import (
	"cmp"
	"slices"
)

// logEvent is one logged event of an origin: its counter and the dots it
// removed (nil when it removed nothing).
type logEvent struct {
	n       uint64
	removed []Dot
}

// originLog keeps recent events of one origin, sorted by counter without
// duplicates. Events mostly arrive in order, so recording one is an append
// and trimming drops a prefix.
type originLog struct {
	ev  []logEvent
	buf []logEvent // ev's backing array from its start: ev = buf[i:j]
}

// room makes room to add one event without reallocating ev: a log at its
// limit drops a prefix per event, so the kept events move down to the
// start of the array instead of into a new one (a bounded log allocates
// nothing once full).
func (o *originLog) room() {
	if len(o.ev) < cap(o.ev) {
		return
	}
	if front := cap(o.buf) - cap(o.ev); front > len(o.ev)/2 {
		n := copy(o.buf, o.ev)
		clear(o.buf[n:])
		o.ev = o.buf[:n]
		return
	}
	nb := make([]logEvent, len(o.ev), max(2*len(o.ev), 8))
	copy(nb, o.ev)
	o.ev, o.buf = nb, nb[:cap(nb)]
}

// eventLog is the bounded per-origin event log (Algorithm 2's delta buffer,
// indexed by origin instead of by neighbour). What an event added is not kept:
// it is read from the state, where it is live unless a later event removed it.
type eventLog struct {
	m map[ReplicaID]*originLog
	// the origin recorded to last; lastID is valid when last is set
	lastID ReplicaID
	last   *originLog
	// spare is an emptied log that reset kept for the next origin logged:
	// a recycled delta (ORMap.Reset) records a batch's events without
	// growing an array again.
	spare *originLog
}

// maxSpare is the largest array, in events, reset keeps.
const maxSpare = 1 << 14

// reset forgets every event, keeping the map and the largest origin's
// array (up to maxSpare) for the events recorded next.
func (l *eventLog) reset() {
	keep := l.spare
	for _, o := range l.m {
		if cap(o.buf) <= maxSpare && (keep == nil || cap(o.buf) > cap(keep.buf)) {
			keep = o
		}
	}
	clear(l.m)
	l.last = nil
	l.spare = keep
	if keep != nil {
		clear(keep.ev) // the rest of buf is clear already (room, dropPrefix)
		keep.ev = keep.buf[:0]
	}
}

// get returns the log of origin r, nil if none (only record sets the
// cache it reads first).
func (l *eventLog) get(r ReplicaID) *originLog {
	if l.last != nil && l.lastID == r {
		return l.last
	}
	return l.m[r]
}

// del forgets origin r's log.
func (l *eventLog) del(r ReplicaID) {
	delete(l.m, r)
	l.last = nil
}

// find returns where counter n is or would be inserted, and whether it is
// there.
func (o *originLog) find(n uint64) (int, bool) {
	if k := len(o.ev); k == 0 || o.ev[k-1].n < n {
		return k, false
	}
	return slices.BinarySearchFunc(o.ev, n, func(e logEvent, n uint64) int { return cmp.Compare(e.n, n) })
}

// get returns the dots event n removed, and whether n is logged.
func (o *originLog) get(n uint64) ([]Dot, bool) {
	i, ok := o.find(n)
	if !ok {
		return nil, false
	}
	return o.ev[i].removed, true
}

func (o *originLog) size() int { return len(o.ev) }

func (l *eventLog) record(d Dot, removed []Dot, limit int) {
	if limit <= 0 {
		return
	}
	if l.m == nil {
		l.m = make(map[ReplicaID]*originLog)
	}
	o := l.get(d.Replica)
	if o == nil {
		o, l.spare = l.spare, nil
		if o == nil {
			o = &originLog{}
		}
		l.m[d.Replica] = o
	}
	l.lastID, l.last = d.Replica, o
	i, ok := o.find(d.Counter)
	if ok {
		return
	}
	if len(removed) == 0 {
		removed = nil
	}
	o.room()
	if i == len(o.ev) {
		o.ev = append(o.ev, logEvent{d.Counter, removed})
	} else {
		o.ev = slices.Insert(o.ev, i, logEvent{d.Counter, removed})
	}
	o.trim(limit)
}

// trim drops the oldest events until at most limit remain; the kept set is
// always the newest limit events ever recorded, whatever the arrival order.
func (o *originLog) trim(limit int) {
	if k := len(o.ev) - limit; k > 0 {
		o.dropPrefix(k)
	}
}

// dropPrefix forgets the k oldest events. The slice moves forward in its
// array (room moves it back when it reaches the end).
func (o *originLog) dropPrefix(k int) {
	clear(o.ev[:k])
	o.ev = o.ev[k:]
}

func (l *eventLog) trimAll(limit int) {
	for r, o := range l.m {
		if limit == 0 {
			l.del(r)
			continue
		}
		o.trim(limit)
	}
}

func (l *eventLog) merge(o *eventLog, limit int) {
	for r, ol := range o.m {
		for _, e := range ol.ev {
			l.record(Dot{r, e.n}, e.removed, limit)
		}
	}
}

func (l *eventLog) len(r ReplicaID) int {
	if o := l.m[r]; o != nil {
		return len(o.ev)
	}
	return 0
}

func (l *eventLog) purge(r ReplicaID) {
	l.del(r)
	for _, o := range l.m {
		for i, e := range o.ev {
			rm := e.removed
			if !slices.ContainsFunc(rm, func(d Dot) bool { return d.Replica == r }) {
				continue
			}
			rm = slices.DeleteFunc(slices.Clone(rm), func(d Dot) bool { return d.Replica == r })
			if len(rm) == 0 {
				rm = nil
			}
			o.ev[i].removed = rm
		}
	}
}

func (l *eventLog) mentions(r ReplicaID) bool {
	if _, ok := l.m[r]; ok {
		return true
	}
	for _, o := range l.m {
		for _, e := range o.ev {
			for _, d := range e.removed {
				if d.Replica == r {
					return true
				}
			}
		}
	}
	return false
}

func (l *eventLog) clone() eventLog {
	if l.m == nil {
		return eventLog{}
	}
	out := eventLog{m: make(map[ReplicaID]*originLog, len(l.m))}
	for r, o := range l.m {
		out.m[r] = &originLog{ev: slices.Clone(o.ev)}
	}
	return out
}

// LogLen returns how many events of origin r the log keeps.
func (m *ORMap[K, V]) LogLen(r ReplicaID) int { return m.log.len(r) }

// TrimLog drops the logged events of origin r with counters up to upTo: the
// caller knows every live peer has applied them (causal stability, the
// minimum of the peers' digests for r), so no peer will ask for them again.
// A peer that does is served r's entries instead.
func (m *ORMap[K, V]) TrimLog(r ReplicaID, upTo uint64) {
	o := m.log.m[r]
	if o == nil {
		return
	}
	k, found := o.find(upTo)
	if found {
		k++
	}
	o.dropPrefix(k)
	if len(o.ev) == 0 {
		m.log.del(r)
	}
}
