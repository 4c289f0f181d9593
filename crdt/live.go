package crdt

import (
	"maps"
	"slices"
)

// minWindow is the size up to which a dense window grows whatever its
// density.
const minWindow = 64

// chunkLen is the number of slots of a window's chunk (a power of two).
const chunkLen = 1024

// liveSet holds the live dots of one origin, by counter: a dense window of
// slots for the counters [base, base+width) and a map for the live
// counters outside it. An origin makes its dots one after the other, so
// its recent entries are contiguous and live in the window, an array
// indexed by counter (no hashing, no per-entry overhead); the window grows
// only while two thirds full and is given up below half full, so that it
// never costs more per entry than the map would, and scattered
// survivors of old events go to the map instead of holding a mostly empty
// array, and a window left with a few survivors far behind the origin's
// new dots moves them to the map and starts again. Which slots are live
// is a parallel slice of bools (one byte a slot, where a flag inside the
// slot would pad it by a word).
//
// The window's slots sit in chunks of chunkLen, so that it grows without
// copying what it holds: one array grown by append (1.25x for large ones)
// would allocate and copy about five times its final size while an
// origin's 100,000 registrations arrive, and clear each new array. Only
// the first chunk grows by doubling, from one slot, so that a small origin
// costs little. Slots outside the window are zero. The zero value is empty.
type liveSet[K, V any] struct {
	base   uint64 // the counter of the window's first slot
	off    int    // the position of base in chunks[0]
	width  int    // the window's slots
	chunks []liveChunk[K, V]
	dense  int // live slots
	sparse map[uint64]entry[K, V]
}

// liveChunk holds the slots of positions [c*chunkLen, c*chunkLen+len) of a
// window (c its index); every chunk but the last holds chunkLen.
type liveChunk[K, V any] struct {
	slots []entry[K, V]
	ok    []bool // ok[i]: slots[i] is live; as long as slots
}

func (s *liveSet[K, V]) len() int { return s.dense + len(s.sparse) }

// window returns the index of n in the window, if it is in it.
func (s *liveSet[K, V]) window(n uint64) (int, bool) {
	if n < s.base || n-s.base >= uint64(s.width) {
		return 0, false
	}
	return int(n - s.base), true
}

// slot returns the chunk and the slot within it of window index i.
func (s *liveSet[K, V]) slot(i int) (*liveChunk[K, V], int) {
	p := s.off + i
	return &s.chunks[p/chunkLen], p % chunkLen
}

// liveAt reports whether window index i is live.
func (s *liveSet[K, V]) liveAt(i int) bool {
	c, j := s.slot(i)
	return c.ok[j]
}

func (s *liveSet[K, V]) get(n uint64) (entry[K, V], bool) {
	if i, ok := s.window(n); ok {
		c, j := s.slot(i)
		return c.slots[j], c.ok[j]
	}
	e, ok := s.sparse[n]
	return e, ok
}

// put makes window index i hold the live entry e.
func (s *liveSet[K, V]) put(i int, e entry[K, V]) {
	c, j := s.slot(i)
	c.slots[j], c.ok[j] = e, true
	s.dense++
}

// grow widens the window to size slots; the new ones are dead.
func (s *liveSet[K, V]) grow(size int) {
	end := s.off + size // positions [0, end) must have a slot
	for {
		last := len(s.chunks) - 1
		if last >= 0 && last*chunkLen+len(s.chunks[last].slots) >= end {
			break
		}
		if last < 0 || len(s.chunks[last].slots) == chunkLen {
			// A new chunk; the first grows from what it needs.
			n := chunkLen
			if last < 0 {
				n = min(end, chunkLen)
			}
			s.chunks = append(s.chunks, liveChunk[K, V]{make([]entry[K, V], n), make([]bool, n)})
			continue
		}
		c := &s.chunks[last]
		need := min(end-last*chunkLen, chunkLen)
		if need > cap(c.slots) || need > cap(c.ok) { // a clone's caps may differ
			n := min(max(need, 2*len(c.slots)), chunkLen)
			slots, ok := make([]entry[K, V], len(c.slots), n), make([]bool, len(c.ok), n)
			copy(slots, c.slots)
			copy(ok, c.ok)
			c.slots, c.ok = slots, ok
		}
		c.slots, c.ok = c.slots[:need], c.ok[:need] // zero beyond len: see liveSet
	}
	s.width = size
}

// restart empties the window and starts it again at n, live with e.
func (s *liveSet[K, V]) restart(n uint64, e entry[K, V]) {
	s.release()
	s.base = n
	s.grow(1)
	s.put(0, e)
}

// release lets go of the window's chunks; the window is then empty.
func (s *liveSet[K, V]) release() {
	s.chunks, s.off, s.width, s.dense = nil, 0, 0, 0
}

// set adds the live dot n, which is not live.
func (s *liveSet[K, V]) set(n uint64, e entry[K, V]) {
	if s.dense == 0 && s.width == 0 {
		s.restart(n, e)
		return
	}
	if i, ok := s.window(n); ok {
		s.put(i, e)
		return
	}
	if n > s.base {
		if size := n - s.base + 1; size <= minWindow || uint64(s.dense+1)*3 >= 2*size {
			old := s.width
			s.grow(int(size))
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
		s.restart(n, e)
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
	for n, e := range s.windowAll {
		s.sparse[n] = e
	}
	s.release()
}

// del removes the live dot n and returns its entry, if it was live.
func (s *liveSet[K, V]) del(n uint64) (entry[K, V], bool) {
	if i, ok := s.window(n); ok {
		c, j := s.slot(i)
		e := c.slots[j]
		if !c.ok[j] {
			return e, false
		}
		c.slots[j], c.ok[j] = entry[K, V]{}, false
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

// tidy trims dead slots from the front of the window (and the chunks left
// before it), moves the live ones to the map when fewer than half of a
// large window are live, and lets go of chunks much larger than a small
// window. Dead slots at the end stay until half the window is dead: a
// process that joins and leaves over and over makes a new dot at the end
// each time, and a window trimmed back after each leave grew again over
// all the dead slots since at the next join (a cost that grew with every
// join, for as long as the rest of the window kept it dense); kept, the
// window grows by a slot a dot, and is trimmed once per half.
func (s *liveSet[K, V]) tidy() {
	if s.dense == 0 {
		s.release()
		return
	}
	k := 0
	for !s.liveAt(k) { // dense > 0: a live slot ends the loop
		k++
	}
	s.base += uint64(k)
	s.off += k
	s.width -= k
	if drop := s.off / chunkLen; drop > 0 {
		clear(s.chunks[:drop])
		s.chunks = s.chunks[drop:]
		s.off -= drop * chunkLen
	}
	if s.width > minWindow && s.dense*2 < s.width {
		// Half dead: first the dead slots at the end go, once (a window
		// whose last dots died), then, still half dead, all to the map.
		for !s.liveAt(s.width - 1) {
			s.width--
		}
		if keep := (s.off+s.width-1)/chunkLen + 1; keep < len(s.chunks) {
			clear(s.chunks[keep:])
			s.chunks = s.chunks[:keep]
		}
		if s.width > minWindow && s.dense*2 < s.width {
			s.toSparse()
			return
		}
	}
	held := cap(s.chunks[0].slots)
	if len(s.chunks) > 1 {
		held = len(s.chunks) * chunkLen
	}
	if held > 2*minWindow && held > 4*s.width {
		s.compact()
	}
}

// compact moves the window, much smaller than the chunks that hold it,
// to one chunk of its size.
func (s *liveSet[K, V]) compact() {
	c := liveChunk[K, V]{make([]entry[K, V], s.width), make([]bool, s.width)}
	for i := range s.width {
		from, j := s.slot(i)
		c.slots[i], c.ok[i] = from.slots[j], from.ok[j]
	}
	s.chunks, s.off = append(s.chunks[:0:0], c), 0
}

// windowAll iterates over the window's live dots in counter order.
func (s *liveSet[K, V]) windowAll(yield func(uint64, entry[K, V]) bool) {
	n, p, end := s.base, s.off, s.off+s.width
	for ci := range s.chunks {
		c := &s.chunks[ci]
		for ; p < end && p < (ci+1)*chunkLen; p, n = p+1, n+1 {
			if j := p % chunkLen; c.ok[j] && !yield(n, c.slots[j]) {
				return
			}
		}
	}
}

// all iterates over the live dots, the window's in counter order first; it
// must not be used while the set changes.
func (s *liveSet[K, V]) all(yield func(uint64, entry[K, V]) bool) {
	for n, e := range s.windowAll {
		if !yield(n, e) {
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
	c := *s
	c.chunks = slices.Clone(s.chunks)
	for i := range c.chunks {
		c.chunks[i] = liveChunk[K, V]{slices.Clone(s.chunks[i].slots), slices.Clone(s.chunks[i].ok)}
	}
	if s.sparse != nil {
		c.sparse = maps.Clone(s.sparse)
	}
	return c
}
