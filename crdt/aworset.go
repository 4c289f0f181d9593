package crdt

import (
	"fmt"
	"strings"
)

// AWORSet is an add-wins observed-remove set of elements of type E
// (DotMap[E, DotSet]). Add writes a fresh dot for the element and supersedes
// the element's observed dots; Remove removes the observed dots; an add
// concurrent with a remove wins. A removed element never comes back unless
// it is added again.
//
// Every mutator applies itself and returns the delta. Not safe for
// concurrent use.
type AWORSet[E comparable] struct {
	m *ORMap[E, Unit]
}

// NewAWORSet returns an empty set replicated by self, with elements ordered
// and encoded by c.
func NewAWORSet[E comparable](self ReplicaID, c Codec[E]) *AWORSet[E] {
	return &AWORSet[E]{NewORMap[E, Unit](self, c, UnitCodec{})}
}

// SetChanges lists the elements a Join made visible or invisible, each in
// canonical order.
type SetChanges[E any] struct {
	// Added lists elements that became members.
	Added []E
	// Removed lists elements that stopped being members.
	Removed []E
}

// Empty reports whether nothing visible changed.
func (c SetChanges[E]) Empty() bool { return len(c.Added) == 0 && len(c.Removed) == 0 }

// Add adds e and returns the delta.
func (s *AWORSet[E]) Add(e E) *AWORSet[E] { return &AWORSet[E]{s.m.Put(e, Unit{})} }

// Remove removes e as observed here and returns the delta (empty if e is
// absent).
func (s *AWORSet[E]) Remove(e E) *AWORSet[E] { return &AWORSet[E]{s.m.Remove(e)} }

// Contains reports whether e is in the set.
func (s *AWORSet[E]) Contains(e E) bool { return s.m.Contains(e) }

// Len returns the number of elements.
func (s *AWORSet[E]) Len() int { return s.m.Len() }

// Elements returns the elements in canonical order.
func (s *AWORSet[E]) Elements() []E { return s.m.Keys() }

// All iterates over the elements in canonical order.
func (s *AWORSet[E]) All() func(yield func(E) bool) {
	return func(yield func(E) bool) {
		for _, e := range s.m.Keys() {
			if !yield(e) {
				return
			}
		}
	}
}

// Join merges a state or delta and reports which elements appeared or went.
func (s *AWORSet[E]) Join(d *AWORSet[E]) SetChanges[E] { return setChanges(s.m.Join(d.m)) }

func setChanges[E any](ch MapChanges[E, Unit]) SetChanges[E] {
	var out SetChanges[E]
	for _, c := range ch.Keys {
		if c.Op == Added {
			out.Added = append(out.Added, c.Key)
		} else {
			out.Removed = append(out.Removed, c.Key)
		}
	}
	return out
}

// Merge is Join without the change report.
func (s *AWORSet[E]) Merge(d *AWORSet[E]) { s.m.Merge(d.m) }

// Clone returns a deep copy.
func (s *AWORSet[E]) Clone() *AWORSet[E] { return &AWORSet[E]{s.m.Clone()} }

// Equal reports lattice-state equality.
func (s *AWORSet[E]) Equal(o *AWORSet[E]) bool { return s.m.Equal(o.m) }

// Digest returns the anti-entropy digest.
func (s *AWORSet[E]) Digest() Digest { return s.m.Digest() }

// DeltaFor returns what a peer with that digest is missing (see ORMap.DeltaFor).
func (s *AWORSet[E]) DeltaFor(peer Digest) *AWORSet[E] { return &AWORSet[E]{s.m.DeltaFor(peer)} }

// Purge forgets r entirely (see ORMap.Purge) and reports the elements that
// went.
func (s *AWORSet[E]) Purge(r ReplicaID) SetChanges[E] { return setChanges(s.m.Purge(r)) }

// PurgeReplica is Purge without the change report.
func (s *AWORSet[E]) PurgeReplica(r ReplicaID) { s.m.PurgeReplica(r) }

// Mentions reports whether anything of r remains.
func (s *AWORSet[E]) Mentions(r ReplicaID) bool { return s.m.Mentions(r) }

// Context returns a copy of the causal context.
func (s *AWORSet[E]) Context() *Context { return s.m.Context() }

// LiveDots returns the live dots in canonical order.
func (s *AWORSet[E]) LiveDots() []Dot { return s.m.LiveDots() }

// SetLogLimit sets the per-origin event log bound (see ORMap.SetLogLimit).
func (s *AWORSet[E]) SetLogLimit(n int) { s.m.SetLogLimit(n) }

// TrimLog drops logged events of r up to upTo (see ORMap.TrimLog).
func (s *AWORSet[E]) TrimLog(r ReplicaID, upTo uint64) { s.m.TrimLog(r, upTo) }

// Self returns the replica this set mutates as.
func (s *AWORSet[E]) Self() ReplicaID { return s.m.Self() }

// Map returns the underlying ORMap (shared, not copied).
func (s *AWORSet[E]) Map() *ORMap[E, Unit] { return s.m }

// AppendBinary appends the canonical encoding.
func (s *AWORSet[E]) AppendBinary(dst []byte) ([]byte, error) {
	return s.m.appendTo(dst, kindAWORSet), nil
}

// MarshalBinary returns the canonical encoding.
func (s *AWORSet[E]) MarshalBinary() ([]byte, error) { return s.AppendBinary(nil) }

// DecodeAWORSet decodes a set encoded by MarshalBinary (same guarantees as
// DecodeORMap).
func DecodeAWORSet[E comparable](b []byte, c Codec[E]) (*AWORSet[E], error) {
	m, err := decodeORMap(b, kindAWORSet, c, Codec[Unit](UnitCodec{}))
	if err != nil {
		return nil, err
	}
	return &AWORSet[E]{m}, nil
}

// String prints the elements and context in canonical order, e.g.
// {a b} ctx{x/1:1-3}.
func (s *AWORSet[E]) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, e := range s.m.Keys() {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprint(&b, e)
	}
	b.WriteString("} ctx")
	b.WriteString(s.m.ctx.String())
	return b.String()
}
