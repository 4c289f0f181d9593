package crdt

import (
	"cmp"
	"slices"
	"sort"
)

// bigKey is the number of siblings beyond which a key's dots are kept in a
// set instead of a sorted slice, so that adding or removing one sibling of a
// key with very many (a process group of 100,000 members) stays O(1).
var bigKey = 32 // a variable only so tests can exercise both forms

// liveRef is a live dot as a key's index holds it: the store of its origin
// and its counter. A read follows it to the entry without looking the
// origin up by name, and a set of them hashes 16 bytes, not a name.
type liveRef[K, V any] struct {
	o *originStore[K, V]
	n uint64
}

func (r liveRef[K, V]) dot() Dot { return Dot{r.o.id, r.n} }

func (r liveRef[K, V]) entry() entry[K, V] {
	e, _ := r.o.live.get(r.n)
	return e
}

func (r liveRef[K, V]) compare(o liveRef[K, V]) int {
	if r.o != o.o {
		if c := r.o.id.Compare(o.o.id); c != 0 {
			return c
		}
	}
	return cmp.Compare(r.n, o.n)
}

// keyDots holds the live dots of one key. The common key with one sibling
// keeps it inline (no allocation); a key that has had two or more keeps
// them in a dotSet. An origin's store lives as long as it has a live dot,
// so the references stay valid. It is a value; callers write it back
// after changing it.
type keyDots[K, V any] struct {
	one  liveRef[K, V] // the single dot, when rest is nil (one.o nil: none)
	rest *dotSet[K, V]
}

// dotSet holds the dots of a key with several: a sorted slice while small,
// a set beyond bigKey.
type dotSet[K, V any] struct {
	small []liveRef[K, V]
	big   map[liveRef[K, V]]struct{}
}

func (s keyDots[K, V]) len() int {
	switch {
	case s.rest != nil:
		return s.rest.len()
	case s.one.o != nil:
		return 1
	}
	return 0
}

// add adds the dot r.
func (s keyDots[K, V]) add(r liveRef[K, V]) keyDots[K, V] {
	switch {
	case s.rest != nil:
		s.rest.add(r)
		return s
	case s.one.o == nil:
		return keyDots[K, V]{one: r}
	}
	rs := &dotSet[K, V]{}
	rs.add(s.one)
	rs.add(r)
	return keyDots[K, V]{rest: rs}
}

func (s keyDots[K, V]) remove(r liveRef[K, V]) keyDots[K, V] {
	switch {
	case s.rest != nil:
		s.rest.remove(r)
		return s
	case s.one == r:
		return keyDots[K, V]{}
	}
	return s
}

// sorted returns a new slice of the dots in canonical order.
func (s keyDots[K, V]) sorted() []Dot {
	var buf [1]liveRef[K, V]
	refs := s.view(&buf)
	out := make([]Dot, len(refs))
	for i, r := range refs {
		out[i] = r.dot()
	}
	return out
}

// view returns the dots in canonical order without copying when small
// (buf holds a single one); the result must not be modified or kept across
// changes of the key.
func (s keyDots[K, V]) view(buf *[1]liveRef[K, V]) []liveRef[K, V] {
	switch {
	case s.rest != nil:
		if s.rest.big == nil {
			return s.rest.small
		}
		return s.rest.sorted()
	case s.one.o != nil:
		buf[0] = s.one
		return buf[:]
	}
	return nil
}

// each calls f on every dot, in no particular order.
func (s keyDots[K, V]) each(f func(liveRef[K, V])) {
	switch {
	case s.rest != nil:
		s.rest.each(f)
	case s.one.o != nil:
		f(s.one)
	}
}

// clone returns a deep copy whose references point to the stores idOf
// returns (the clone's own).
func (s keyDots[K, V]) clone(idOf func(*originStore[K, V]) *originStore[K, V]) keyDots[K, V] {
	switch {
	case s.rest != nil:
		return keyDots[K, V]{rest: s.rest.clone(idOf)}
	case s.one.o != nil:
		return keyDots[K, V]{one: liveRef[K, V]{idOf(s.one.o), s.one.n}}
	}
	return s
}

func (s *dotSet[K, V]) len() int {
	if s.big != nil {
		return len(s.big)
	}
	return len(s.small)
}

func (s *dotSet[K, V]) add(r liveRef[K, V]) {
	if s.big != nil {
		s.big[r] = struct{}{}
		return
	}
	if len(s.small) >= bigKey {
		s.big = make(map[liveRef[K, V]]struct{}, 2*bigKey)
		for _, x := range s.small {
			s.big[x] = struct{}{}
		}
		s.big[r] = struct{}{}
		s.small = nil
		return
	}
	i := sort.Search(len(s.small), func(i int) bool { return s.small[i].compare(r) >= 0 })
	s.small = slices.Insert(s.small, i, r)
}

func (s *dotSet[K, V]) remove(r liveRef[K, V]) {
	if s.big != nil {
		delete(s.big, r)
		return
	}
	if i, found := slices.BinarySearchFunc(s.small, r, liveRef[K, V].compare); found {
		s.small = slices.Delete(s.small, i, i+1)
	}
}

func (s *dotSet[K, V]) sorted() []liveRef[K, V] {
	if s.big == nil {
		return slices.Clone(s.small)
	}
	out := make([]liveRef[K, V], 0, len(s.big))
	for r := range s.big {
		out = append(out, r)
	}
	slices.SortFunc(out, liveRef[K, V].compare)
	return out
}

func (s *dotSet[K, V]) each(f func(liveRef[K, V])) {
	if s.big != nil {
		for r := range s.big {
			f(r)
		}
		return
	}
	for _, r := range s.small {
		f(r)
	}
}

func (s *dotSet[K, V]) clone(idOf func(*originStore[K, V]) *originStore[K, V]) *dotSet[K, V] {
	if s.big != nil {
		big := make(map[liveRef[K, V]]struct{}, len(s.big))
		for r := range s.big {
			big[liveRef[K, V]{idOf(r.o), r.n}] = struct{}{}
		}
		return &dotSet[K, V]{big: big}
	}
	small := make([]liveRef[K, V], len(s.small))
	for i, r := range s.small {
		small[i] = liveRef[K, V]{idOf(r.o), r.n}
	}
	return &dotSet[K, V]{small: small}
}
