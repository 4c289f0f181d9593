package crdt

import (
	"slices"
	"sort"
)

// bigKey is the number of siblings beyond which a key's dots are kept in a
// set instead of a sorted slice, so that adding or removing one sibling of a
// key with very many (a process group of 100,000 members) stays O(1).
var bigKey = 32 // a variable only so tests can exercise both forms

// keyDots holds the live dots of one key. The common key with one sibling
// keeps it inline, as a pointer to the replica identity held by that
// origin's store plus the counter (no allocation); a key that has had two
// or more keeps them in a dotSet. It is a value; callers write it back after
// changing it.
type keyDots struct {
	id   *ReplicaID // the single dot's replica, when rest is nil
	n    uint64     // the single dot's counter
	rest *dotSet
}

// dotSet holds the dots of a key with several: a sorted slice while small,
// a set beyond bigKey.
type dotSet struct {
	small []Dot
	big   map[Dot]struct{}
}

func (s keyDots) len() int {
	switch {
	case s.rest != nil:
		return s.rest.len()
	case s.id != nil:
		return 1
	}
	return 0
}

func (s keyDots) one() Dot { return Dot{*s.id, s.n} }

// add adds d, whose replica identity id points into its origin's store.
func (s keyDots) add(d Dot, id *ReplicaID) keyDots {
	switch {
	case s.rest != nil:
		s.rest.add(d)
		return s
	case s.id == nil:
		return keyDots{id: id, n: d.Counter}
	}
	rs := &dotSet{}
	rs.add(s.one())
	rs.add(d)
	return keyDots{rest: rs}
}

func (s keyDots) remove(d Dot) keyDots {
	switch {
	case s.rest != nil:
		s.rest.remove(d)
		return s
	case s.id != nil && s.one() == d:
		return keyDots{}
	}
	return s
}

// sorted returns a new slice of the dots in canonical order.
func (s keyDots) sorted() []Dot {
	switch {
	case s.rest != nil:
		return s.rest.sorted()
	case s.id != nil:
		return []Dot{s.one()}
	}
	return nil
}

// view returns the dots in canonical order without copying when small
// (buf holds a single one); the result must not be modified or kept across
// changes of the key.
func (s keyDots) view(buf *[1]Dot) []Dot {
	switch {
	case s.rest != nil:
		if s.rest.big == nil {
			return s.rest.small
		}
		return s.rest.sorted()
	case s.id != nil:
		buf[0] = s.one()
		return buf[:]
	}
	return nil
}

// each calls f on every dot, in no particular order.
func (s keyDots) each(f func(Dot)) {
	switch {
	case s.rest != nil:
		s.rest.each(f)
	case s.id != nil:
		f(s.one())
	}
}

// clone returns a deep copy whose inline identity is looked up with idOf
// (the clone's own origin stores).
func (s keyDots) clone(idOf func(ReplicaID) *ReplicaID) keyDots {
	switch {
	case s.rest != nil:
		return keyDots{rest: s.rest.clone()}
	case s.id != nil:
		return keyDots{id: idOf(*s.id), n: s.n}
	}
	return s
}

func (s *dotSet) len() int {
	if s.big != nil {
		return len(s.big)
	}
	return len(s.small)
}

func (s *dotSet) add(d Dot) {
	if s.big != nil {
		s.big[d] = struct{}{}
		return
	}
	if len(s.small) >= bigKey {
		s.big = make(map[Dot]struct{}, 2*bigKey)
		for _, x := range s.small {
			s.big[x] = struct{}{}
		}
		s.big[d] = struct{}{}
		s.small = nil
		return
	}
	i := sort.Search(len(s.small), func(i int) bool { return s.small[i].Compare(d) >= 0 })
	s.small = slices.Insert(s.small, i, d)
}

func (s *dotSet) remove(d Dot) {
	if s.big != nil {
		delete(s.big, d)
		return
	}
	if i, found := slices.BinarySearchFunc(s.small, d, Dot.Compare); found {
		s.small = slices.Delete(s.small, i, i+1)
	}
}

func (s *dotSet) sorted() []Dot {
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

func (s *dotSet) each(f func(Dot)) {
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

func (s *dotSet) clone() *dotSet {
	if s.big != nil {
		big := make(map[Dot]struct{}, len(s.big))
		for d := range s.big {
			big[d] = struct{}{}
		}
		return &dotSet{big: big}
	}
	return &dotSet{small: slices.Clone(s.small)}
}
