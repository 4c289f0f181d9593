package crdt

import (
	"fmt"
	"slices"
	"strings"
)

// Sibling is one value held under a key, with the dot that wrote it.
// Concurrent writes of one key survive as several siblings.
type Sibling[V any] struct {
	// Dot is the event that wrote Value; it identifies the sibling.
	Dot Dot
	// Value is what was written.
	Value V
}

type entry[K, V any] struct {
	key K
	val V
}

// flatEntry is one live dot of a decoded value, kept in encoding order.
type flatEntry[K, V any] struct {
	dot Dot
	key K
	val V
}

// originStore holds the live dots of one replica, with the running count and
// xor-hash of those dots that digests carry.
type originStore[K, V any] struct {
	id   ReplicaID // the origin; keys' inline dots point here
	seed uint64
	live liveSet[K, V]
	hash uint64
}

// ORMap is an observed-remove map whose value under each key is a causal
// CRDT: a dot function from dots to values (DotMap[K, DotFun[V]] in Almeida,
// Shoker and Baquero's terms). Under one key it behaves, depending on the
// mutator used, as a multi-value register (Put), an add-wins set of values
// (Insert, Delete) or a multiset with pg-style multiplicity (Add, RemoveDots).
// Remove(k) removes every observed dot of k; a concurrent write wins.
//
// This is the one shape the registry (name -> concurrent registrations, kept
// as siblings for a later resolve) and the groups (group -> memberships) are
// made of; AWORSet and MVRegister are thin views of it.
//
// Keys and values are of the caller's types, described by a Codec (a total
// order plus a binary encoding). A value written under a dot never changes.
//
// A state and a delta have the same type. Every mutator applies itself to the
// receiver and returns the delta, so that X.Join(delta) on any other replica
// has the same effect. An ORMap is not safe for concurrent use.
type ORMap[K comparable, V any] struct {
	self     ReplicaID
	kc       Codec[K]
	vc       Codec[V]
	ctx      Context // every dot seen, live or removed
	applied  Context // events whose whole effect has been joined (⊆ ctx)
	origins  map[ReplicaID]*originStore[K, V]
	keys     map[K]keyDots[K, V] // never empty
	log      eventLog
	logLimit int

	// A decoded value, and a delta made by mutators, keeps its live dots
	// in flat, with origins and keys nil, until something other than Len,
	// LiveLen, Context, Applied, encoding or being joined into another
	// value reads them (unflat builds the maps then): joining a received
	// delta builds no maps for it, and a delta is encoded from the slice.
	// flatKeys is the number of keys when flat is in encoding order (keys
	// ascending, dots ascending within a key; decoded values are), -1
	// until sortFlat puts it in that order.
	flat     []flatEntry[K, V]
	flatKeys int

	lastO *originStore[K, V] // the origin store used last, or nil
	refs  []idxDot           // the decoder's scratch, kept by Reset
}

// DefaultLogLimit is how many recent events per origin a new state keeps to
// serve peers' gaps. An older gap falls back to that origin's entries.
const DefaultLogLimit = 4096

const noLimit = int(^uint(0) >> 1)

// NewORMap returns an empty map replicated by self.
func NewORMap[K comparable, V any](self ReplicaID, kc Codec[K], vc Codec[V]) *ORMap[K, V] {
	m := newORMap[K, V](kc, vc)
	m.self = self
	m.logLimit = DefaultLogLimit
	return m
}

// newORMap returns an empty value; its maps are made on first write, so an
// empty or small delta costs few allocations.
func newORMap[K comparable, V any](kc Codec[K], vc Codec[V]) *ORMap[K, V] {
	return &ORMap[K, V]{kc: kc, vc: vc, logLimit: noLimit}
}

// emptyLike returns an empty delta of the same types (with an unbounded log,
// so a delta never drops the events it carries).
func (m *ORMap[K, V]) emptyLike() *ORMap[K, V] {
	d := newORMap[K, V](m.kc, m.vc)
	d.self = m.self
	return d
}

// Self returns the replica this state mutates as.
func (m *ORMap[K, V]) Self() ReplicaID { return m.self }

// SetLogLimit sets how many recent events per origin are kept to serve
// peers' gaps (DefaultLogLimit for a new state; unbounded for decoded values
// and deltas). 0 keeps none: every gap is served from origin entries.
func (m *ORMap[K, V]) SetLogLimit(n int) {
	m.logLimit = max(n, 0)
	m.log.trimAll(m.logLimit)
}

// ---- store primitives ----

// unflat builds the maps of a decoded value (see ORMap.flat).
func (m *ORMap[K, V]) unflat() {
	if m.flat == nil {
		return
	}
	fl := m.flat
	m.flat, m.flatKeys = nil, 0
	m.origins = make(map[ReplicaID]*originStore[K, V])
	m.keys = make(map[K]keyDots[K, V], len(fl))
	var o *originStore[K, V]
	for i := range fl {
		e := &fl[i]
		if o == nil || o.id != e.dot.Replica {
			o = m.origin(e.dot.Replica, len(fl))
		}
		m.addLiveIn(o, e.dot.Counter, e.key, e.val)
	}
}

// sortFlat puts flat in encoding order and counts its keys.
func (m *ORMap[K, V]) sortFlat() {
	if m.flatKeys >= 0 {
		return
	}
	slices.SortFunc(m.flat, func(a, b flatEntry[K, V]) int {
		if c := m.kc.Compare(a.key, b.key); c != 0 {
			return c
		}
		return a.dot.Compare(b.dot)
	})
	n := 0
	for i := range m.flat {
		if i == 0 || m.kc.Compare(m.flat[i-1].key, m.flat[i].key) != 0 {
			n++
		}
	}
	m.flatKeys = n
}

// origin returns the store of r, made (with room for hint dots) if absent.
func (m *ORMap[K, V]) origin(r ReplicaID, hint int) *originStore[K, V] {
	o := m.originOf(r)
	if o == nil {
		if m.origins == nil {
			m.origins = make(map[ReplicaID]*originStore[K, V])
			m.keys = make(map[K]keyDots[K, V], hint)
		}
		o = &originStore[K, V]{id: r, seed: replicaSeed(r)}
		m.origins[r] = o
	}
	return o
}

// originOf returns the store of r, nil if none; most lookups are of the
// store used last.
func (m *ORMap[K, V]) originOf(r ReplicaID) *originStore[K, V] {
	if m.lastO != nil && m.lastO.id == r {
		return m.lastO
	}
	o := m.origins[r]
	if o != nil {
		m.lastO = o
	}
	return o
}

func (m *ORMap[K, V]) lookupLive(d Dot) (entry[K, V], bool) {
	m.unflat()
	o := m.originOf(d.Replica)
	if o == nil {
		return entry[K, V]{}, false
	}
	return o.live.get(d.Counter)
}

func (m *ORMap[K, V]) addLive(d Dot, k K, v V) {
	m.unflat()
	m.addLiveIn(m.origin(d.Replica, 1), d.Counter, k, v)
}

// addLiveIn adds the live dot (o's origin, n).
func (m *ORMap[K, V]) addLiveIn(o *originStore[K, V], n uint64, k K, v V) {
	o.live.set(n, entry[K, V]{k, v})
	o.hash ^= dotHash(o.seed, n)
	m.keys[k] = m.keys[k].add(liveRef[K, V]{o, n})
}

func (m *ORMap[K, V]) removeLive(d Dot) (entry[K, V], bool) {
	m.unflat()
	o := m.originOf(d.Replica)
	if o == nil {
		return entry[K, V]{}, false
	}
	e, ok := o.live.del(d.Counter)
	if !ok {
		return e, false
	}
	o.hash ^= dotHash(o.seed, d.Counter)
	if o.live.len() == 0 {
		delete(m.origins, d.Replica)
		m.lastO = nil
	}
	if ds := m.keys[e.key].remove(liveRef[K, V]{o, d.Counter}); ds.len() == 0 {
		delete(m.keys, e.key)
	} else {
		m.keys[e.key] = ds
	}
	return e, true
}

// ---- mutators ----

// nextDot is the next unused dot of self.
func (m *ORMap[K, V]) nextDot() Dot {
	var top uint64
	if x := m.ctx.get(m.self); x != nil {
		top = x.top()
	}
	return Dot{m.self, top + 1}
}

// mutate makes one event: it removes the given live dots and, if add is set,
// writes one value under a fresh dot. It applies the delta and returns it.
// A mutation that would change nothing consumes no dot and returns an empty
// delta.
func (m *ORMap[K, V]) mutate(removed []Dot, add *entry[K, V]) *ORMap[K, V] {
	d := m.emptyLike()
	m.mutateInto(d, removed, add)
	return d
}

// mutateInto is mutate joining its delta into acc (acc := acc ⊔ delta)
// instead of returning it; it returns the event's dot (zero if the mutation
// changed nothing). acc is a delta of m's types, never m.
func (m *ORMap[K, V]) mutateInto(acc *ORMap[K, V], removed []Dot, add *entry[K, V]) Dot {
	if len(removed) == 0 && add == nil {
		return Dot{}
	}
	m.unflat()
	if len(removed) > 1 {
		slices.SortFunc(removed, Dot.Compare)
		removed = slices.Compact(removed)
	}
	ev := m.nextDot()
	acc.ctx.Add(ev)
	acc.applied.Add(ev)
	m.ctx.Add(ev)
	m.applied.Add(ev)
	for _, r := range removed {
		acc.ctx.Add(r)
		if acc.flat == nil || acc.applied.Contains(r) {
			acc.removeLive(r) // a sibling added earlier in the same delta
		}
		m.ctx.Add(r) // already there: r was live here
		m.removeLive(r)
	}
	if add != nil {
		if acc.origins == nil {
			// A delta keeps what it adds flat (see ORMap.flat) until read;
			// a batch's slice doubles (append's 1.25x for large slices
			// copies and allocates five times what the batch holds).
			if len(acc.flat) == cap(acc.flat) {
				acc.flat = slices.Grow(acc.flat, max(len(acc.flat), 8))
			}
			acc.flat = append(acc.flat, flatEntry[K, V]{ev, add.key, add.val})
			acc.flatKeys = -1
		} else {
			acc.addLive(ev, add.key, add.val)
		}
		m.addLive(ev, add.key, add.val)
	}
	acc.log.record(ev, removed, noLimit)
	m.log.record(ev, removed, m.logLimit)
	return ev
}

// Reset empties m, a delta no longer needed (made by mutators, AddInto's
// acc, and sent; or decoded and joined), so that it can be the next acc or
// DecodeORMapInto's dst: its entry buffer and its event log's array keep
// their capacity, so a batch of mutations or a decode then costs no growth
// of them. m must be a delta, never a state.
func (m *ORMap[K, V]) Reset() {
	fl := m.flat
	clear(fl) // keys and values held no longer than needed
	lg := m.log
	lg.reset()
	*m = ORMap[K, V]{self: m.self, kc: m.kc, vc: m.vc, logLimit: noLimit, refs: m.refs, log: lg}
	if fl != nil {
		m.flat = fl[:0]
	}
}

// into returns acc, or a new empty delta if acc is nil.
func (m *ORMap[K, V]) into(acc *ORMap[K, V]) *ORMap[K, V] {
	if acc == nil {
		return m.emptyLike()
	}
	return acc
}

// AddInto is Add joining its delta into acc (acc := acc ⊔ delta) instead of
// returning a new one: a batch of mutations accumulates one delta (a delta
// group) at the cost of the mutation alone. It returns acc (a new delta if
// acc is nil) and the new sibling's dot. acc must be a delta made by m's
// mutators, never m itself.
func (m *ORMap[K, V]) AddInto(acc *ORMap[K, V], k K, v V) (*ORMap[K, V], Dot) {
	acc = m.into(acc)
	return acc, m.mutateInto(acc, nil, &entry[K, V]{k, v})
}

// ReplaceInto is Replace joining its delta into acc, like AddInto; it
// returns acc and the new sibling's dot.
func (m *ORMap[K, V]) ReplaceInto(acc *ORMap[K, V], k K, v V, dots ...Dot) (*ORMap[K, V], Dot) {
	acc = m.into(acc)
	return acc, m.mutateInto(acc, m.liveOf(dots), &entry[K, V]{k, v})
}

// RemoveDotsInto is RemoveDots joining its delta into acc, like AddInto; it
// returns acc.
func (m *ORMap[K, V]) RemoveDotsInto(acc *ORMap[K, V], dots ...Dot) *ORMap[K, V] {
	acc = m.into(acc)
	m.mutateInto(acc, m.liveOf(dots), nil)
	return acc
}

// liveOf returns the dots of ds that are live.
func (m *ORMap[K, V]) liveOf(ds []Dot) []Dot {
	var live []Dot
	for _, d := range ds {
		if _, ok := m.lookupLive(d); ok {
			live = append(live, d)
		}
	}
	return live
}

// Put writes v as the only value of k, superseding every value of k this
// replica has observed (a multi-value register write). Values written
// concurrently elsewhere survive as siblings.
func (m *ORMap[K, V]) Put(k K, v V) *ORMap[K, V] {
	m.unflat()
	return m.mutate(m.keys[k].sorted(), &entry[K, V]{k, v})
}

// Add adds v under k as a new sibling, superseding nothing. Used for
// single-writer registrations and for memberships with multiplicity.
func (m *ORMap[K, V]) Add(k K, v V) *ORMap[K, V] {
	return m.mutate(nil, &entry[K, V]{k, v})
}

// Insert adds v to the add-wins set of values under k: it supersedes the
// observed siblings of k whose value equals v (by the value codec's Compare)
// and writes v under a fresh dot.
func (m *ORMap[K, V]) Insert(k K, v V) *ORMap[K, V] {
	return m.mutate(m.dotsWithValue(k, v), &entry[K, V]{k, v})
}

// Delete removes every observed sibling of k whose value equals v.
func (m *ORMap[K, V]) Delete(k K, v V) *ORMap[K, V] {
	return m.mutate(m.dotsWithValue(k, v), nil)
}

// Remove removes every observed sibling of k (observed-remove: a concurrent
// write of k survives).
func (m *ORMap[K, V]) Remove(k K) *ORMap[K, V] {
	m.unflat()
	return m.mutate(m.keys[k].sorted(), nil)
}

// RemoveDots removes the given siblings, wherever they are; dots that are
// not live are ignored. Under the single-writer rule an owner removes only
// its own dots this way.
func (m *ORMap[K, V]) RemoveDots(dots ...Dot) *ORMap[K, V] {
	return m.mutate(m.liveOf(dots), nil)
}

// Replace removes the given siblings (those that are live, under any key) and
// writes v under k, as one event with one delta: an owner updating its own
// registration or membership (Phoenix's leave_join) without a moment where
// neither is visible.
func (m *ORMap[K, V]) Replace(k K, v V, dots ...Dot) *ORMap[K, V] {
	return m.mutate(m.liveOf(dots), &entry[K, V]{k, v})
}

func (m *ORMap[K, V]) dotsWithValue(k K, v V) []Dot {
	var out []Dot
	m.unflat()
	m.keys[k].each(func(r liveRef[K, V]) {
		if m.vc.Compare(r.entry().val, v) == 0 {
			out = append(out, r.dot())
		}
	})
	return out
}

// ---- join ----

// Op says whether something became visible or stopped being visible.
type Op uint8

const (
	// Added means the key, element or sibling became visible.
	Added Op = 1
	// Removed means it stopped being visible.
	Removed Op = 2
)

// String returns "added" or "removed".
func (o Op) String() string {
	switch o {
	case Added:
		return "added"
	case Removed:
		return "removed"
	}
	return "op(" + fmt.Sprint(uint8(o)) + ")"
}

// KeyChange reports a key that appeared (its first sibling) or disappeared
// (its last sibling went).
type KeyChange[K any] struct {
	// Op is Added (first sibling appeared) or Removed (last one went).
	Op Op
	// Key is the key concerned.
	Key K
}

// ValueChange reports one sibling that appeared or went.
type ValueChange[K, V any] struct {
	// Op is Added or Removed.
	Op Op
	// Key is the key the sibling is under.
	Key K
	// Dot identifies the sibling.
	Dot Dot
	// Value is the sibling's value.
	Value V
}

// MapChanges is what a Join made visible or invisible, in canonical order
// (by key, then dot). It is computed while joining, in time proportional to
// the delta, never by diffing states.
type MapChanges[K, V any] struct {
	// Keys lists keys that appeared or disappeared.
	Keys []KeyChange[K]
	// Values lists every sibling that appeared or went, including those
	// under keys that stayed present.
	Values []ValueChange[K, V]
}

// Empty reports whether nothing visible changed.
func (c MapChanges[K, V]) Empty() bool { return len(c.Keys) == 0 && len(c.Values) == 0 }

type recorder[K comparable, V any] struct {
	values []ValueChange[K, V]
}

func (r *recorder[K, V]) note(op Op, k K, d Dot, v V) {
	if r == nil {
		return
	}
	r.values = append(r.values, ValueChange[K, V]{op, k, d, v})
}

// Join merges a state or a delta into m (m becomes m ⊔ d) and reports what
// became visible or invisible. d is not modified and may be used again.
func (m *ORMap[K, V]) Join(d *ORMap[K, V]) MapChanges[K, V] {
	n := len(d.flat)
	for _, o := range d.origins {
		n += o.live.len()
	}
	rec := &recorder[K, V]{values: make([]ValueChange[K, V], 0, n)}
	m.merge(d, rec)
	return m.changes(rec)
}

// JoinAppend merges d into m like Join and appends to dst the siblings that
// appeared or went, in canonical order (by key, then dot), without Join's
// key changes: for a caller that needs only the siblings and reuses one
// buffer, it costs no allocation and no lookup per key beyond the merge's.
func (m *ORMap[K, V]) JoinAppend(dst []ValueChange[K, V], d *ORMap[K, V]) []ValueChange[K, V] {
	n := len(d.flat)
	for _, o := range d.origins {
		n += o.live.len()
	}
	start := len(dst)
	rec := &recorder[K, V]{values: slices.Grow(dst, n)}
	m.merge(d, rec)
	if vs := rec.values[start:]; !slices.IsSortedFunc(vs, m.byKeyDot) {
		slices.SortFunc(vs, m.byKeyDot)
	}
	return rec.values
}

func (m *ORMap[K, V]) byKeyDot(a, b ValueChange[K, V]) int {
	if c := m.kc.Compare(a.Key, b.Key); c != 0 {
		return c
	}
	return a.Dot.Compare(b.Dot)
}

// changes sorts the recorded sibling changes and derives the key changes
// from them: per touched key, siblings added minus removed gives the count
// before the join.
func (m *ORMap[K, V]) changes(rec *recorder[K, V]) MapChanges[K, V] {
	var out MapChanges[K, V]
	out.Values = rec.values
	// A decoded delta's additions come in key order already.
	if !slices.IsSortedFunc(out.Values, m.byKeyDot) {
		slices.SortFunc(out.Values, m.byKeyDot)
	}
	vs := out.Values
	for i := 0; i < len(vs); {
		j, n := i, 0
		for ; j < len(vs) && (j == i || m.kc.Compare(vs[j].Key, vs[i].Key) == 0); j++ {
			if vs[j].Op == Added {
				n++
			} else {
				n--
			}
		}
		k := vs[i].Key
		after := m.keys[k].len()
		before := after - n
		switch {
		case before == 0 && after > 0:
			out.Keys = append(out.Keys, KeyChange[K]{Added, k})
		case before > 0 && after == 0:
			out.Keys = append(out.Keys, KeyChange[K]{Removed, k})
		}
		i = j
	}
	return out
}

// Merge is Join without the change report.
func (m *ORMap[K, V]) Merge(d *ORMap[K, V]) { m.merge(d, nil) }

func (m *ORMap[K, V]) merge(d *ORMap[K, V], rec *recorder[K, V]) {
	m.unflat()
	// 1. Dots d has seen but does not hold are removed here. The cost is the
	// smaller of d's covered range and our live dots of that origin.
	var flatLive map[ReplicaID][]uint64 // d's flat dots per origin, sorted, made on first need
	for r, dr := range d.ctx.m {
		o := m.origins[r]
		if o == nil {
			continue
		}
		dlive := d.origins[r]
		keep := func(n uint64) bool {
			if d.flat != nil {
				if flatLive == nil {
					flatLive = d.flatCounters()
				}
				_, ok := slices.BinarySearch(flatLive[r], n)
				return ok
			}
			if dlive == nil {
				return false
			}
			_, ok := dlive.live.get(n)
			return ok
		}
		total := dr.max
		for _, s := range dr.cloud {
			if total > uint64(o.live.len()) {
				break
			}
			total += s.size()
		}
		var gone []uint64
		if total <= uint64(o.live.len()) {
			top := uint64(0) // above it nothing is live here: never seen
			if x := m.ctx.get(r); x != nil {
				top = x.top()
			}
			visit := func(lo, hi uint64) {
				hi = min(hi, top)
				for n := lo; n >= lo && n <= hi; n++ { // n >= lo: stop on wrap
					if _, ok := o.live.get(n); ok && !keep(n) {
						gone = append(gone, n)
					}
				}
			}
			visit(1, dr.max)
			for _, s := range dr.cloud {
				visit(s.lo, s.hi)
			}
		} else {
			for n := range o.live.all {
				if dr.contains(n) && !keep(n) {
					gone = append(gone, n)
				}
			}
		}
		for _, n := range gone {
			dot := Dot{r, n}
			if e, ok := m.removeLive(dot); ok {
				rec.note(Removed, e.key, dot, e.val)
			}
		}
	}
	// 2. Dots d holds that we have never seen are added. A decoded delta's
	// dots come in key order, so the changes are recorded sorted.
	var (
		last *ReplicaID
		mine *rctx
		o    *originStore[K, V]
	)
	for i := range d.flat {
		e := &d.flat[i]
		if last == nil || *last != e.dot.Replica {
			last, mine, o = &e.dot.Replica, m.ctx.get(e.dot.Replica), nil
		}
		if mine != nil && mine.contains(e.dot.Counter) {
			continue
		}
		if o == nil {
			o = m.origin(e.dot.Replica, 1)
		}
		m.addLiveIn(o, e.dot.Counter, e.key, e.val)
		rec.note(Added, e.key, e.dot, e.val)
	}
	for r, do := range d.origins {
		mine := m.ctx.get(r)
		var o *originStore[K, V]
		for n, e := range do.live.all {
			if mine != nil && mine.contains(n) {
				continue
			}
			if o == nil {
				o = m.origin(r, 1)
			}
			m.addLiveIn(o, n, e.key, e.val)
			rec.note(Added, e.key, Dot{r, n}, e.val)
		}
	}
	m.ctx.Join(&d.ctx)
	m.applied.Join(&d.applied)
	m.log.merge(&d.log, m.logLimit)
}

// flatCounters returns the counters of a decoded value's live dots per
// origin, sorted.
func (m *ORMap[K, V]) flatCounters() map[ReplicaID][]uint64 {
	out := map[ReplicaID][]uint64{}
	for i := range m.flat {
		d := m.flat[i].dot
		out[d.Replica] = append(out[d.Replica], d.Counter)
	}
	for _, ns := range out {
		slices.Sort(ns)
	}
	return out
}

// ---- reads ----

// Get returns the siblings of k, ordered by dot. It is empty if k is absent.
func (m *ORMap[K, V]) Get(k K) []Sibling[V] {
	return m.AppendSiblings(nil, k)
}

// AppendSiblings appends the siblings of k to dst, ordered by dot, and
// returns the extended slice: Get without an allocation when dst has room.
func (m *ORMap[K, V]) AppendSiblings(dst []Sibling[V], k K) []Sibling[V] {
	m.unflat()
	var buf [1]liveRef[K, V]
	refs := m.keys[k].view(&buf)
	if dst == nil {
		dst = make([]Sibling[V], 0, len(refs))
	}
	for _, r := range refs {
		dst = append(dst, Sibling[V]{r.dot(), r.entry().val})
	}
	return dst
}

// Contains reports whether k has at least one sibling.
func (m *ORMap[K, V]) Contains(k K) bool {
	m.unflat()
	return m.keys[k].len() > 0
}

// Count returns the number of siblings of k in O(1).
func (m *ORMap[K, V]) Count(k K) int {
	m.unflat()
	return m.keys[k].len()
}

// Len returns the number of keys present.
func (m *ORMap[K, V]) Len() int {
	if m.flat != nil {
		m.sortFlat()
		return m.flatKeys
	}
	return len(m.keys)
}

// LiveLen returns the number of siblings under all keys (live dots), in
// O(replicas).
func (m *ORMap[K, V]) LiveLen() int {
	n := len(m.flat)
	for _, o := range m.origins {
		n += o.live.len()
	}
	return n
}

// Keys returns the keys present, in the key codec's order.
func (m *ORMap[K, V]) Keys() []K {
	m.unflat()
	out := make([]K, 0, len(m.keys))
	for k := range m.keys {
		out = append(out, k)
	}
	slices.SortFunc(out, m.kc.Compare)
	return out
}

// All iterates over keys in canonical order with their siblings.
func (m *ORMap[K, V]) All() func(yield func(K, []Sibling[V]) bool) {
	return func(yield func(K, []Sibling[V]) bool) {
		for _, k := range m.Keys() {
			if !yield(k, m.Get(k)) {
				return
			}
		}
	}
}

// Live iterates over every live entry, its key with its sibling (dot and
// value), in no particular order. Unlike All and ByReplica it builds nothing for a
// decoded value or a delta (see ORMap.flat), so that a received delta can
// be checked before it is joined.
func (m *ORMap[K, V]) Live() func(yield func(K, Sibling[V]) bool) {
	return func(yield func(K, Sibling[V]) bool) {
		if m.flat != nil {
			for i := range m.flat {
				e := &m.flat[i]
				if !yield(e.key, Sibling[V]{e.dot, e.val}) {
					return
				}
			}
			return
		}
		for r, o := range m.origins {
			for n, e := range o.live.all {
				if !yield(e.key, Sibling[V]{Dot{r, n}, e.val}) {
					return
				}
			}
		}
	}
}

// Lookup returns the key and value written under d, if d is live.
func (m *ORMap[K, V]) Lookup(d Dot) (K, V, bool) {
	e, ok := m.lookupLive(d)
	return e.key, e.val, ok
}

// LiveDots returns every live dot, in canonical order.
func (m *ORMap[K, V]) LiveDots() []Dot {
	m.unflat()
	var out []Dot
	for r, o := range m.origins {
		for n := range o.live.all {
			out = append(out, Dot{r, n})
		}
	}
	slices.SortFunc(out, Dot.Compare)
	return out
}

// Context returns a copy of the causal context: every dot seen, live or
// removed.
func (m *ORMap[K, V]) Context() *Context { return m.ctx.Clone() }

// Applied returns a copy of the applied-event context: the events whose whole
// effect has been joined here. It is a subset of Context: a removal names the
// dots it removes, and a receiver learns those dots (they are dead) without
// learning the effects of the events that made them. Digests carry Applied.
func (m *ORMap[K, V]) Applied() *Context { return m.applied.Clone() }

// Clone returns a deep copy (state, context, log and log limit).
func (m *ORMap[K, V]) Clone() *ORMap[K, V] {
	m.unflat()
	c := newORMap[K, V](m.kc, m.vc)
	c.self = m.self
	c.logLimit = m.logLimit
	c.ctx = *m.ctx.Clone()
	c.applied = *m.applied.Clone()
	c.origins = make(map[ReplicaID]*originStore[K, V], len(m.origins))
	c.keys = make(map[K]keyDots[K, V], len(m.keys))
	for r, o := range m.origins {
		c.origins[r] = &originStore[K, V]{id: o.id, seed: o.seed, live: o.live.clone(), hash: o.hash}
	}
	idOf := func(o *originStore[K, V]) *originStore[K, V] { return c.origins[o.id] }
	for k, ds := range m.keys {
		c.keys[k] = ds.clone(idOf)
	}
	c.log = m.log.clone()
	return c
}

// Equal reports whether m and o are the same lattice state: same context and
// same live dots with equal keys and values. The replica identity and the
// event log are not part of the state.
func (m *ORMap[K, V]) Equal(o *ORMap[K, V]) bool {
	m.unflat()
	o.unflat()
	if !m.ctx.Equal(&o.ctx) || !m.applied.Equal(&o.applied) || len(m.origins) != len(o.origins) || len(m.keys) != len(o.keys) {
		return false
	}
	for r, a := range m.origins {
		b := o.origins[r]
		if b == nil || a.live.len() != b.live.len() || a.hash != b.hash {
			return false
		}
		for n, ea := range a.live.all {
			eb, ok := b.live.get(n)
			if !ok || m.kc.Compare(ea.key, eb.key) != 0 || m.vc.Compare(ea.val, eb.val) != 0 {
				return false
			}
		}
	}
	return true
}

// Purge forgets r entirely: its live dots, its context entries and its
// logged events, and r's dots named by other events in the log. Use it for a
// replica known to be gone for good (left, restarted with a newer epoch, or
// down past the permanent-down period). Nothing of r remains; a purged
// replica that shows up again is a fresh replica. Purging is local: callers
// purge on every replica and stop joining deltas that carry r.
//
// It reports the siblings (and keys) that went, like Join. The cost is
// O(entries of r) plus the size of the log. Purging the replica's own
// identity does nothing: its next dot would reuse a counter peers have seen.
func (m *ORMap[K, V]) Purge(r ReplicaID) MapChanges[K, V] {
	if r == m.self {
		return MapChanges[K, V]{}
	}
	m.unflat()
	rec := &recorder[K, V]{}
	if o := m.origins[r]; o != nil {
		rec.values = make([]ValueChange[K, V], 0, o.live.len())
		for _, n := range o.live.counters() {
			dot := Dot{r, n}
			if e, ok := m.removeLive(dot); ok {
				rec.note(Removed, e.key, dot, e.val)
			}
		}
	}
	delete(m.origins, r)
	m.lastO = nil
	m.ctx.Purge(r)
	m.applied.Purge(r)
	m.log.purge(r)
	return m.changes(rec)
}

// PurgeReplica is Purge without the change report.
func (m *ORMap[K, V]) PurgeReplica(r ReplicaID) { m.Purge(r) }

// ByReplica iterates over the live siblings written by r, in dot order, with
// their keys: O(entries of r), for hiding or listing one replica's entries.
func (m *ORMap[K, V]) ByReplica(r ReplicaID) func(yield func(K, Sibling[V]) bool) {
	return func(yield func(K, Sibling[V]) bool) {
		m.unflat()
		o := m.origins[r]
		if o == nil {
			return
		}
		for _, n := range o.live.counters() {
			e, ok := o.live.get(n)
			if !ok {
				continue // removed by the caller meanwhile
			}
			if !yield(e.key, Sibling[V]{Dot{r, n}, e.val}) {
				return
			}
		}
	}
}

// Mentions reports whether anything of r remains: a live dot, a context
// entry, or a logged event or removed dot.
func (m *ORMap[K, V]) Mentions(r ReplicaID) bool {
	m.unflat()
	if _, ok := m.ctx.m[r]; ok {
		return true
	}
	if _, ok := m.origins[r]; ok {
		return true
	}
	return m.log.mentions(r)
}

// String prints the state in canonical order, e.g.
// {k1:[v@a/1:3] k2:[v@a/1:1 w@b/1:2]} ctx{a/1:1-3 b/1:1-2}.
func (m *ORMap[K, V]) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range m.Keys() {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%v:[", k)
		for j, s := range m.Get(k) {
			if j > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%v@%v", s.Value, s.Dot)
		}
		b.WriteByte(']')
	}
	b.WriteString("} ctx")
	b.WriteString(m.ctx.String())
	if !m.applied.Equal(&m.ctx) {
		b.WriteString(" applied")
		b.WriteString(m.applied.String())
	}
	return b.String()
}
