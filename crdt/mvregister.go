package crdt

import (
	"fmt"
	"strings"
)

// MVRegister is a multi-value register (DotFun[V]): Write supersedes every
// value observed here; writes that were concurrent survive side by side as
// siblings, so a later resolve step can choose among them (the registry's
// shape for one name).
//
// Every mutator applies itself and returns the delta. Not safe for
// concurrent use.
type MVRegister[V any] struct {
	m *ORMap[Unit, V]
}

// NewMVRegister returns an empty register replicated by self, with values
// ordered and encoded by c.
func NewMVRegister[V any](self ReplicaID, c Codec[V]) *MVRegister[V] {
	return &MVRegister[V]{NewORMap[Unit, V](self, UnitCodec{}, c)}
}

// RegisterChanges lists the siblings a Join added or removed, by dot.
type RegisterChanges[V any] struct {
	// Added lists siblings that appeared.
	Added []Sibling[V]
	// Removed lists siblings that were superseded or cleared.
	Removed []Sibling[V]
}

// Empty reports whether nothing visible changed.
func (c RegisterChanges[V]) Empty() bool { return len(c.Added) == 0 && len(c.Removed) == 0 }

// Write sets the register to v (superseding observed siblings) and returns
// the delta.
func (r *MVRegister[V]) Write(v V) *MVRegister[V] { return &MVRegister[V]{r.m.Put(Unit{}, v)} }

// Clear removes every observed sibling and returns the delta.
func (r *MVRegister[V]) Clear() *MVRegister[V] { return &MVRegister[V]{r.m.Remove(Unit{})} }

// Values returns the siblings, ordered by dot (empty if never written or
// cleared).
func (r *MVRegister[V]) Values() []Sibling[V] { return r.m.Get(Unit{}) }

// Join merges a state or delta and reports which siblings appeared or went.
func (r *MVRegister[V]) Join(d *MVRegister[V]) RegisterChanges[V] {
	return registerChanges(r.m.Join(d.m))
}

func registerChanges[V any](ch MapChanges[Unit, V]) RegisterChanges[V] {
	var out RegisterChanges[V]
	for _, c := range ch.Values {
		s := Sibling[V]{c.Dot, c.Value}
		if c.Op == Added {
			out.Added = append(out.Added, s)
		} else {
			out.Removed = append(out.Removed, s)
		}
	}
	return out
}

// Merge is Join without the change report.
func (r *MVRegister[V]) Merge(d *MVRegister[V]) { r.m.Merge(d.m) }

// Clone returns a deep copy.
func (r *MVRegister[V]) Clone() *MVRegister[V] { return &MVRegister[V]{r.m.Clone()} }

// Equal reports lattice-state equality.
func (r *MVRegister[V]) Equal(o *MVRegister[V]) bool { return r.m.Equal(o.m) }

// Digest returns the anti-entropy digest.
func (r *MVRegister[V]) Digest() Digest { return r.m.Digest() }

// DeltaFor returns what a peer with that digest is missing.
func (r *MVRegister[V]) DeltaFor(peer Digest) *MVRegister[V] {
	return &MVRegister[V]{r.m.DeltaFor(peer)}
}

// Purge forgets rid entirely (see ORMap.Purge) and reports the siblings
// that went.
func (r *MVRegister[V]) Purge(rid ReplicaID) RegisterChanges[V] {
	return registerChanges(r.m.Purge(rid))
}

// PurgeReplica is Purge without the change report.
func (r *MVRegister[V]) PurgeReplica(rid ReplicaID) { r.m.PurgeReplica(rid) }

// Mentions reports whether anything of rid remains.
func (r *MVRegister[V]) Mentions(rid ReplicaID) bool { return r.m.Mentions(rid) }

// Context returns a copy of the causal context.
func (r *MVRegister[V]) Context() *Context { return r.m.Context() }

// LiveDots returns the live dots in canonical order.
func (r *MVRegister[V]) LiveDots() []Dot { return r.m.LiveDots() }

// SetLogLimit sets the per-origin event log bound.
func (r *MVRegister[V]) SetLogLimit(n int) { r.m.SetLogLimit(n) }

// TrimLog drops logged events of rid up to upTo (see ORMap.TrimLog).
func (r *MVRegister[V]) TrimLog(rid ReplicaID, upTo uint64) { r.m.TrimLog(rid, upTo) }

// Self returns the replica this register mutates as.
func (r *MVRegister[V]) Self() ReplicaID { return r.m.Self() }

// AppendBinary appends the canonical encoding.
func (r *MVRegister[V]) AppendBinary(dst []byte) ([]byte, error) {
	return r.m.appendTo(dst, kindMVRegister), nil
}

// MarshalBinary returns the canonical encoding.
func (r *MVRegister[V]) MarshalBinary() ([]byte, error) { return r.AppendBinary(nil) }

// DecodeMVRegister decodes a register encoded by MarshalBinary (same
// guarantees as DecodeORMap).
func DecodeMVRegister[V any](b []byte, c Codec[V]) (*MVRegister[V], error) {
	m, err := decodeORMap(b, kindMVRegister, Codec[Unit](UnitCodec{}), c)
	if err != nil {
		return nil, err
	}
	return &MVRegister[V]{m}, nil
}

// String prints the siblings and context in canonical order, e.g.
// [x@a/1:2 y@b/1:1] ctx{a/1:1-2 b/1:1}.
func (r *MVRegister[V]) String() string {
	var b strings.Builder
	b.WriteByte('[')
	for i, s := range r.Values() {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%v@%v", s.Value, s.Dot)
	}
	b.WriteString("] ctx")
	b.WriteString(r.m.ctx.String())
	return b.String()
}
