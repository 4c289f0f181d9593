package crdt

import (
	"slices"
	"strconv"
	"strings"
)

// Summary describes the live dots of one origin: how many, and the xor of a
// fixed 64-bit hash of each. Two replicas with equal contexts hold the same
// live dots of an origin exactly when their summaries agree (up to hash
// collisions).
type Summary struct {
	// Count is the number of live dots of the origin.
	Count uint64
	// Hash is the xor of a fixed hash of each live dot.
	Hash uint64
}

// Digest is what a replica tells a peer in anti-entropy: its applied-event
// context (a version vector plus any out-of-order events, as ranges: a few
// bytes per replica) and a Summary of the live dots per origin. A peer answers with DeltaFor. The zero Digest is the
// digest of an empty state.
type Digest struct {
	applied Context
	seen    Context
	sums    map[ReplicaID]Summary
}

// Applied returns a copy of the digest's applied-event context.
func (g Digest) Applied() *Context { return g.applied.Clone() }

// Seen returns a copy of the digest's causal context (every dot seen).
func (g Digest) Seen() *Context { return g.seen.Clone() }

// Summary returns the digest's summary of origin r.
func (g Digest) Summary(r ReplicaID) Summary { return g.sums[r] }

// Equal reports whether two digests are identical.
func (g Digest) Equal(o Digest) bool {
	if !g.applied.Equal(&o.applied) || !g.seen.Equal(&o.seen) {
		return false
	}
	for r, s := range g.sums {
		if s != o.sums[r] {
			return false
		}
	}
	for r, s := range o.sums {
		if s != g.sums[r] {
			return false
		}
	}
	return true
}

// String prints the digest in canonical order.
func (g Digest) String() string {
	var b strings.Builder
	b.WriteString("digest")
	b.WriteString(g.applied.String())
	if !g.seen.Equal(&g.applied) {
		b.WriteString(" seen")
		b.WriteString(g.seen.String())
	}
	b.WriteString(" live{")
	rs := make([]ReplicaID, 0, len(g.sums))
	for r := range g.sums {
		rs = append(rs, r)
	}
	slices.SortFunc(rs, ReplicaID.Compare)
	for i, r := range rs {
		if i > 0 {
			b.WriteByte(' ')
		}
		s := g.sums[r]
		b.WriteString(r.String())
		b.WriteByte('=')
		b.WriteString(strconv.FormatUint(s.Count, 10))
		b.WriteByte('#')
		b.WriteString(strconv.FormatUint(s.Hash, 16))
	}
	b.WriteByte('}')
	return b.String()
}

// Digest returns this state's digest. Its size is O(replicas), never
// O(entries).
func (m *ORMap[K, V]) Digest() Digest {
	m.unflat()
	g := Digest{applied: *m.applied.Clone(), seen: *m.ctx.Clone(), sums: make(map[ReplicaID]Summary, len(m.origins))}
	for r, o := range m.origins {
		g.sums[r] = Summary{uint64(o.live.len()), o.hash}
	}
	return g
}

// DeltaFor computes the delta that brings a peer with digest peer up to date
// with m, removals included, at a cost that follows the difference:
//
//   - for each origin r, the events of r that m has applied and the peer has
//     not are served from the event log when it still holds every one of
//     them: the live ones as entries, the rest as context, plus the dots each
//     event removed (whatever their origin). Cost O(events missed).
//   - when the log no longer covers that gap, the delta carries all of r's live
//     entries and r's context instead: O(entries of r), never the whole state.
//   - when the peer's applied events equal m's and an origin's live summary
//     differs
//     (a removal that travelled only inside a fallback), that origin's entries
//     are sent. Repeated exchanges therefore always converge.
//
// Joining the result into the peer equals joining m itself whenever the logs
// covered the gaps. The result is a delta that carries its events, so the
// peer can log and relay them.
func (m *ORMap[K, V]) DeltaFor(peer Digest) *ORMap[K, V] { return m.deltaFor(peer, nil) }

// deltaFor is DeltaFor restricted to the origins want accepts (all if nil).
func (m *ORMap[K, V]) deltaFor(peer Digest, want func(ReplicaID) bool) *ORMap[K, V] {
	m.unflat()
	out := m.emptyLike()
	for _, r := range m.applied.Replicas() {
		if want != nil && !want(r) {
			continue
		}
		var theirs []span
		if pr := peer.applied.get(r); pr != nil {
			theirs = pr.spans()
		}
		missing := subtractSpans(m.applied.get(r).spans(), theirs)
		if len(missing) == 0 {
			continue
		}
		if !m.serveFromLog(out, r, missing) {
			m.snapshotOrigin(out, r)
		}
	}
	// Dots seen here only as removed (named by an event, never applied) go as
	// context. A live dot the peer has not seen is an event it has not
	// applied, so the loop above already put it in out's store.
	for _, r := range m.ctx.Replicas() {
		if want != nil && !want(r) {
			continue
		}
		var theirs []span
		if pr := peer.seen.get(r); pr != nil {
			theirs = pr.spans()
		}
		for _, s := range subtractSpans(m.ctx.get(r).spans(), theirs) {
			out.ctx.addRange(r, s.lo, s.hi)
		}
	}
	if m.applied.Equal(&peer.applied) {
		for _, r := range m.ctx.Replicas() {
			if want != nil && !want(r) {
				continue
			}
			var mine Summary
			if o := m.origins[r]; o != nil {
				mine = Summary{uint64(o.live.len()), o.hash}
			}
			if mine != peer.sums[r] {
				m.snapshotOrigin(out, r)
			}
		}
	}
	return out
}

func (m *ORMap[K, V]) serveFromLog(out *ORMap[K, V], r ReplicaID, missing []span) bool {
	ol := m.log.m[r]
	if ol == nil {
		return false
	}
	var total uint64
	for _, s := range missing {
		total += s.size()
		if total > uint64(ol.size()) {
			return false
		}
	}
	for _, s := range missing {
		for n := s.lo; ; n++ {
			if _, ok := ol.get(n); !ok {
				return false
			}
			if n == s.hi {
				break
			}
		}
	}
	o := m.origins[r]
	for _, s := range missing {
		out.ctx.addRange(r, s.lo, s.hi)
		out.applied.addRange(r, s.lo, s.hi)
		for n := s.lo; ; n++ {
			removed, _ := ol.get(n)
			for _, d := range removed {
				out.ctx.Add(d)
			}
			out.log.record(Dot{r, n}, removed, noLimit)
			if o != nil {
				if e, ok := o.live.get(n); ok {
					out.addLive(Dot{r, n}, e.key, e.val)
				}
			}
			if n == s.hi {
				break
			}
		}
	}
	return true
}

// snapshotOrigin adds to out every live dot of r and r's whole context.
func (m *ORMap[K, V]) snapshotOrigin(out *ORMap[K, V], r ReplicaID) {
	if x := m.ctx.get(r); x != nil {
		for _, s := range x.spans() {
			out.ctx.addRange(r, s.lo, s.hi)
		}
	}
	if x := m.applied.get(r); x != nil {
		for _, s := range x.spans() {
			out.applied.addRange(r, s.lo, s.hi)
		}
	}
	if o := m.origins[r]; o != nil {
		for n, e := range o.live.all {
			if _, ok := out.lookupLive(Dot{r, n}); !ok {
				out.addLive(Dot{r, n}, e.key, e.val)
			}
		}
	}
}
