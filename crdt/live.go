package crdt

import (
	"maps"
	"slices"
)

// minWindow is the size up to which a dense window grows whatever its
// density.
const minWindow = 64

// liveSet holds the live dots of one origin, by counter: a dense window of
// slots for the counters [base, base+len(slots)) and a map for the live
// counters outside it. An origin makes its dots one after the other, so
// its recent entries are contiguous and live in the window, an array
// indexed by counter (no hashing, no per-entry overhead); the window grows
// only while two thirds full and is given up below half full, so that it
// never costs more per entry than the map would, and scattered
// survivors of old events go to the map instead of holding a mostly empty
// array, and a window left with a few survivors far behind the origin's
// new dots moves them to the map and starts again. Which slots are live
// is a parallel slice of bools (one byte a slot, where a flag inside the
// slot would pad it by a word). The zero value is empty.
type liveSet[K, V any] struct {
	base    uint64
	slots   []entry[K, V]
	ok      []bool // ok[i]: slots[i] is live; sliced and grown with slots
	dense   int    // live slots
	skipped int    // slots trimmed from the front of slots' array
	sparse  map[uint64]entry[K, V]
}

func (s *liveSet[K, V]) len() int { return s.dense + len(s.sparse) }

// window returns the index of n in the window, if it is in it.
func (s *liveSet[K, V]) window(n uint64) (int, bool) {
	if n < s.base || n-s.base >= uint64(len(s.slots)) {
		return 0, false
	}
	return int(n - s.base), true
}

func (s *liveSet[K, V]) get(n uint64) (entry[K, V], bool) {
	if i, ok := s.window(n); ok {
		return s.slots[i], s.ok[i]
	}
	e, ok := s.sparse[n]
	return e, ok
}

// put makes slot i hold the live entry e.
func (s *liveSet[K, V]) put(i int, e entry[K, V]) {
	s.slots[i], s.ok[i] = e, true
	s.dense++
}

// set adds the live dot n, which is not live.
func (s *liveSet[K, V]) set(n uint64, e entry[K, V]) {
	if s.dense == 0 && len(s.slots) == 0 {
		s.base = n
		s.slots, s.ok = append(s.slots, e), append(s.ok, true)
		s.dense = 1
		return
	}
	if i, ok := s.window(n); ok {
		s.put(i, e)
		return
	}
	if n > s.base {
		if size := n - s.base + 1; size <= minWindow || uint64(s.dense+1)*3 >= 2*size {
			old, oldCap := len(s.slots), cap(s.slots)
			s.slots = slices.Grow(s.slots, int(size)-old)[:size]
			s.ok = slices.Grow(s.ok, int(size)-old)[:size]
			if cap(s.slots) != oldCap {
				s.skipped = 0 // a new array
			}
			clear(s.slots[old:])
			clear(s.ok[old:])
			if len(s.sparse) > 0 { // counters the window now covers move in
				for c := s.base + uint64(old); c < n; c++ {
					if x, ok := s.sparse[c]; ok {
						delete(s.sparse, c)
						s.put(int(c-s.base), x)
					}
				}
			}
			s.put(int(size-1), e)
			return
		}
	}
	if n > s.base && s.dense <= minWindow/4 {
		// A few survivors hold the window far behind the origin's new
		// dots: they go to the map and the window starts again at n.
		s.toSparse()
		s.base = n
		s.slots, s.ok = append(s.slots, e), append(s.ok, true)
		s.dense = 1
		return
	}
	if s.sparse == nil {
		s.sparse = make(map[uint64]entry[K, V])
	}
	s.sparse[n] = e
}

// toSparse moves the window's live dots to the map and empties it.
func (s *liveSet[K, V]) toSparse() {
	if s.dense > 0 && s.sparse == nil {
		s.sparse = make(map[uint64]entry[K, V], s.dense)
	}
	for i := range s.slots {
		if s.ok[i] {
			s.sparse[s.base+uint64(i)] = s.slots[i]
		}
	}
	s.slots, s.ok, s.dense, s.skipped = nil, nil, 0, 0
}

// del removes the live dot n and returns its entry, if it was live.
func (s *liveSet[K, V]) del(n uint64) (entry[K, V], bool) {
	if i, ok := s.window(n); ok {
		e := s.slots[i]
		if !s.ok[i] {
			return e, false
		}
		s.slots[i], s.ok[i] = entry[K, V]{}, false
		s.dense--
		s.tidy()
		return e, true
	}
	e, ok := s.sparse[n]
	if ok {
		delete(s.sparse, n)
		if len(s.sparse) == 0 {
			s.sparse = nil
		}
	}
	return e, ok
}

// tidy trims dead slots from both ends of the window, moves the live ones
// to the map when fewer than half of a large window are live, and
// lets go of an array much larger than the window.
func (s *liveSet[K, V]) tidy() {
	k := 0
	for k < len(s.slots) && !s.ok[k] {
		k++
	}
	s.slots, s.ok = s.slots[k:], s.ok[k:]
	s.base += uint64(k)
	s.skipped += k
	j := len(s.slots)
	for j > 0 && !s.ok[j-1] {
		j--
	}
	s.slots, s.ok = s.slots[:j], s.ok[:j]
	if len(s.slots) > minWindow && s.dense*2 < len(s.slots) {
		s.toSparse()
	}
	if s.dense == 0 {
		s.slots, s.ok, s.skipped = nil, nil, 0
		return
	}
	if c := cap(s.slots) + s.skipped; c > 2*minWindow && c > 4*len(s.slots) {
		s.slots, s.ok, s.skipped = slices.Clone(s.slots), slices.Clone(s.ok), 0
	}
}

// all iterates over the live dots, the window's in counter order first; it
// must not be used while the set changes.
func (s *liveSet[K, V]) all(yield func(uint64, entry[K, V]) bool) {
	for i := range s.slots {
		if s.ok[i] && !yield(s.base+uint64(i), s.slots[i]) {
			return
		}
	}
	for n, e := range s.sparse {
		if !yield(n, e) {
			return
		}
	}
}

// counters returns the live counters, sorted.
func (s *liveSet[K, V]) counters() []uint64 {
	out := make([]uint64, 0, s.len())
	for n := range s.all {
		out = append(out, n)
	}
	if len(s.sparse) > 0 {
		slices.Sort(out)
	}
	return out
}

func (s *liveSet[K, V]) clone() liveSet[K, V] {
	c := liveSet[K, V]{base: s.base, slots: slices.Clone(s.slots), ok: slices.Clone(s.ok), dense: s.dense}
	if s.sparse != nil {
		c.sparse = maps.Clone(s.sparse)
	}
	return c
}
