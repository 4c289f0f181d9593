package crdt

import (
	"maps"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// liveSet against a map: the same answers for any mix of in-order,
// out-of-order and scattered counters, the window never holds a counter the
// map also holds, and a large window stays at least half full.
func TestLiveSetModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var s liveSet[string, int]
		model := map[uint64]int{}
		next := uint64(1)
		for i := range rapid.IntRange(1, 2000).Draw(t, "ops") {
			switch rapid.IntRange(0, 3).Draw(t, "op") {
			case 0, 1: // the origin's next counter, a jump ahead, or an older one arriving late
				n := next
				switch rapid.IntRange(0, 9).Draw(t, "kind") {
				case 0:
					n += rapid.Uint64Range(1, 5000).Draw(t, "by")
				case 1:
					n = rapid.Uint64Range(1, next).Draw(t, "late")
				}
				next = max(next, n+1)
				if _, ok := model[n]; ok {
					continue
				}
				s.set(n, entry[string, int]{"k", i})
				model[n] = i
			case 2: // remove a live one
				if len(model) == 0 {
					continue
				}
				ns := slices.Sorted(maps.Keys(model))
				n := ns[rapid.IntRange(0, len(ns)-1).Draw(t, "at")]
				e, ok := s.del(n)
				if !ok || e.val != model[n] {
					t.Fatalf("del %d: %v %v, want %d", n, e, ok, model[n])
				}
				delete(model, n)
			default: // remove one that is not live
				n := rapid.Uint64Range(1, next+10).Draw(t, "n")
				if _, ok := model[n]; ok {
					continue
				}
				if _, ok := s.del(n); ok {
					t.Fatalf("del %d: was not live", n)
				}
			}
			if s.len() != len(model) {
				t.Fatalf("len %d, want %d", s.len(), len(model))
			}
			for n := range s.sparse {
				if _, in := s.window(n); in {
					t.Fatalf("%d both in the window and the map", n)
				}
			}
			if s.width > minWindow && s.dense*2 < s.width {
				t.Fatalf("window of %d with %d live", s.width, s.dense)
			}
			if s.width > 0 && !s.liveAt(0) {
				t.Fatal("window starts on a dead slot")
			}
		}
		if got, want := s.counters(), slices.Sorted(maps.Keys(model)); !slices.Equal(got, want) {
			t.Fatalf("counters %v, want %v", got, want)
		}
		for n, v := range model {
			if e, ok := s.get(n); !ok || e.val != v {
				t.Fatalf("get %d: %v %v, want %d", n, e, ok, v)
			}
		}
		c := s.clone()
		for n, e := range s.all {
			if x, ok := c.get(n); !ok || x != e {
				t.Fatalf("clone lacks %d", n)
			}
		}
	})
}

// A counter kept in the map moves into the window when the window grows
// over it; a window left with few survivors starts again at a new counter.
func TestLiveSetWindowMoves(t *testing.T) {
	var s liveSet[string, int]
	var seq []uint64
	for n := uint64(1); n <= 20; n++ {
		seq = append(seq, n)
	}
	seq = append(seq, 60, 70) // 60 within the first window's size; 70 too far for 21 live: the map
	for n := uint64(21); n <= 59; n++ {
		seq = append(seq, n)
	}
	seq = append(seq, 71) // the window, full now, grows over 70
	for _, n := range seq {
		s.set(n, entry[string, int]{"k", int(n)})
	}
	if len(s.sparse) != 0 || s.dense != len(seq) {
		t.Fatalf("window %d live, map %d: 70 did not move in", s.dense, len(s.sparse))
	}
	for _, n := range seq {
		if e, ok := s.get(n); !ok || e.val != int(n) {
			t.Fatalf("get %d: %v %v", n, e, ok)
		}
	}
	// Churn leaves 3 survivors at the start; the origin's next dot far
	// ahead restarts the window there.
	for _, n := range seq[3:] {
		s.del(n)
	}
	s.set(10_000, entry[string, int]{"k", 10_000})
	if s.base != 10_000 || s.dense != 1 || len(s.sparse) != 3 {
		t.Fatalf("base %d dense %d map %d", s.base, s.dense, len(s.sparse))
	}
}

// The window grows by chunks without moving what it holds, and lets go of
// the chunks it no longer covers as its front and back dots go.
func TestLiveSetChunks(t *testing.T) {
	var s liveSet[string, int]
	const n = 10 * chunkLen
	s.set(1, entry[string, int]{"k", 1})
	for c := uint64(2); c <= chunkLen; c++ {
		s.set(c, entry[string, int]{"k", int(c)})
	}
	first := &s.chunks[0].slots[0]
	for c := uint64(chunkLen + 1); c <= n; c++ {
		s.set(c, entry[string, int]{"k", int(c)})
	}
	if &s.chunks[0].slots[0] != first || len(s.chunks) != n/chunkLen || len(s.sparse) != 0 {
		t.Fatalf("%d chunks, %d in the map; the first moved: %v", len(s.chunks), len(s.sparse), &s.chunks[0].slots[0] != first)
	}
	// The first three chunks' dots and the last chunk's go, but one.
	for c := uint64(1); c <= 3*chunkLen; c++ {
		s.del(c)
	}
	for c := uint64(n - chunkLen + 2); c <= n; c++ {
		s.del(c)
	}
	if s.base != 3*chunkLen+1 || s.width != 7*chunkLen || len(s.chunks) != 7 || s.off != 0 { // dead at the end stay
		t.Fatalf("base %d width %d off %d, %d chunks", s.base, s.width, s.off, len(s.chunks))
	}
	for c := uint64(1); c <= n; c++ {
		want := c > 3*chunkLen && c <= n-chunkLen+1
		if e, ok := s.get(c); ok != want || (ok && e.val != int(c)) {
			t.Fatalf("get %d: %v %v, want live %v", c, e, ok, want)
		}
	}
	if got := s.counters(); len(got) != s.len() || got[0] != 3*chunkLen+1 || got[len(got)-1] != n-chunkLen+1 {
		t.Fatalf("%d counters from %d to %d", len(got), got[0], got[len(got)-1])
	}
	// A few dots left across a chunk boundary move to one small chunk.
	lo, hi := uint64(5*chunkLen-10), uint64(5*chunkLen+10)
	for c := uint64(n); c > hi; c-- { // from the back, then the front: the window shrinks
		s.del(c)
	}
	for c := uint64(3*chunkLen + 1); c < lo; c++ {
		s.del(c)
	}
	if len(s.chunks) != 1 || cap(s.chunks[0].slots) > max(2*minWindow, 4*s.width) || s.len() != int(hi-lo+1) {
		t.Fatalf("%d live in %d chunks, the first of %d slots", s.len(), len(s.chunks), cap(s.chunks[0].slots))
	}
	for c := lo; c <= hi; c++ {
		if e, ok := s.get(c); !ok || e.val != int(c) {
			t.Fatalf("get %d: %v %v", c, e, ok)
		}
	}
}

// A dot made and removed at the end of a large dense window over and over
// (a process joining and leaving a big group) costs the same each time:
// the window does not shrink back after the removal and grow again over
// every dead dot since at the next one.
func TestLiveSetChurnAtTheEnd(t *testing.T) {
	var s liveSet[string, int]
	const live = 10 * chunkLen
	for c := uint64(1); c <= live; c++ {
		s.set(c, entry[string, int]{"k", int(c)})
	}
	next := uint64(live + 1)
	churn := func() {
		s.set(next, entry[string, int]{"x", 0})
		if _, ok := s.del(next); !ok {
			t.Fatal("churned dot not live")
		}
		next++
	}
	for range 3 * chunkLen { // the dead dots at the end now span chunks
		churn()
	}
	if allocs := testing.AllocsPerRun(1000, churn); allocs > 0.1 {
		t.Fatalf("%.2f allocations a join and leave", allocs)
	}
	if s.len() != live {
		t.Fatalf("len %d, want %d", s.len(), live)
	}
}
