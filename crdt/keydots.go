package crdt

import (
	"slices"
	"sort"
)

// bigKey is the number of siblings beyond which a key's dots are kept in a
// set instead of a sorted slice, so that adding or removing one sibling of a
// key with very many (a process group of 100,000 members) stays O(1).
var bigKey = 32 // a variable only so tests can exercise both forms

// keyDots holds the live dots of one key: a sorted slice while small, a set
// beyond bigKey. It is a value; callers write it back after changing it.
type keyDots struct {
	small []Dot
	big   map[Dot]struct{}
}

func (s keyDots) len() int {
	if s.big != nil {
		return len(s.big)
	}
	return len(s.small)
}

func (s keyDots) add(d Dot) keyDots {
	if s.big != nil {
		s.big[d] = struct{}{}
		return s
	}
	if len(s.small) >= bigKey {
		s.big = make(map[Dot]struct{}, 2*bigKey)
		for _, x := range s.small {
			s.big[x] = struct{}{}
		}
		s.big[d] = struct{}{}
		s.small = nil
		return s
	}
	i := sort.Search(len(s.small), func(i int) bool { return s.small[i].Compare(d) >= 0 })
	s.small = slices.Insert(s.small, i, d)
	return s
}

func (s keyDots) remove(d Dot) keyDots {
	if s.big != nil {
		delete(s.big, d)
		return s
	}
	if i, found := slices.BinarySearchFunc(s.small, d, Dot.Compare); found {
		s.small = slices.Delete(s.small, i, i+1)
	}
	return s
}

// sorted returns a new slice of the dots in canonical order.
func (s keyDots) sorted() []Dot {
	if s.big == nil {
		return slices.Clone(s.small)
	}
	out := make([]Dot, 0, len(s.big))
	for d := range s.big {
		out = append(out, d)
	}
	slices.SortFunc(out, Dot.Compare)
	return out
}

// view returns the dots in canonical order without copying when small; the
// result must not be modified or kept across changes of the key.
func (s keyDots) view() []Dot {
	if s.big == nil {
		return s.small
	}
	return s.sorted()
}

// each calls f on every dot, in no particular order.
func (s keyDots) each(f func(Dot)) {
	if s.big != nil {
		for d := range s.big {
			f(d)
		}
		return
	}
	for _, d := range s.small {
		f(d)
	}
}

func (s keyDots) clone() keyDots {
	if s.big != nil {
		big := make(map[Dot]struct{}, len(s.big))
		for d := range s.big {
			big[d] = struct{}{}
		}
		return keyDots{big: big}
	}
	return keyDots{small: slices.Clone(s.small)}
}
