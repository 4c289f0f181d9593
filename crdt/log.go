package crdt

import (
	"maps"
	"slices"
)

// originLog keeps recent events of one origin: counter -> the dots that
// event removed (nil when it removed nothing). Every key is >= lo.
type originLog struct {
	ev map[uint64][]Dot
	lo uint64
}

// eventLog is the bounded per-origin event log (Algorithm 2's delta buffer,
// indexed by origin instead of by neighbour). What an event added is not kept:
// it is read from the state, where it is live unless a later event removed it.
type eventLog struct {
	m map[ReplicaID]*originLog
}

func (l *eventLog) record(d Dot, removed []Dot, limit int) {
	if limit <= 0 {
		return
	}
	if l.m == nil {
		l.m = make(map[ReplicaID]*originLog)
	}
	o := l.m[d.Replica]
	if o == nil {
		o = &originLog{ev: make(map[uint64][]Dot), lo: d.Counter}
		l.m[d.Replica] = o
	}
	if _, ok := o.ev[d.Counter]; ok {
		return
	}
	if len(removed) == 0 {
		removed = nil
	}
	o.ev[d.Counter] = removed
	o.lo = min(o.lo, d.Counter)
	o.trim(limit)
}

// trim drops the oldest events until at most limit remain; the kept set is
// always the newest limit events ever recorded, whatever the arrival order.
func (o *originLog) trim(limit int) {
	for len(o.ev) > limit {
		if _, ok := o.ev[o.lo]; ok {
			delete(o.ev, o.lo)
			o.lo++
			continue
		}
		lo := ^uint64(0)
		for n := range o.ev {
			lo = min(lo, n)
		}
		o.lo = lo
	}
}

func (l *eventLog) trimAll(limit int) {
	for r, o := range l.m {
		if limit == 0 {
			delete(l.m, r)
			continue
		}
		o.trim(limit)
	}
}

func (l *eventLog) merge(o *eventLog, limit int) {
	for r, ol := range o.m {
		for n, removed := range ol.ev {
			l.record(Dot{r, n}, removed, limit)
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
	delete(l.m, r)
	for _, o := range l.m {
		for n, rm := range o.ev {
			if !slices.ContainsFunc(rm, func(d Dot) bool { return d.Replica == r }) {
				continue
			}
			rm = slices.DeleteFunc(slices.Clone(rm), func(d Dot) bool { return d.Replica == r })
			if len(rm) == 0 {
				rm = nil
			}
			o.ev[n] = rm
		}
	}
}

func (l *eventLog) mentions(r ReplicaID) bool {
	if _, ok := l.m[r]; ok {
		return true
	}
	for _, o := range l.m {
		for _, rm := range o.ev {
			for _, d := range rm {
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
		out.m[r] = &originLog{ev: maps.Clone(o.ev), lo: o.lo}
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
	for n := range o.ev {
		if n <= upTo {
			delete(o.ev, n)
		}
	}
	if len(o.ev) == 0 {
		delete(m.log.m, r)
		return
	}
	o.lo = max(o.lo, upTo+1)
}
