package crdt

import "slices"

// Ahead returns, in canonical order, the origins of which a state with
// digest g has something a peer with digest peer lacks: events the peer has
// not applied, dots it has not seen, or, when both applied the same events,
// live entries that differ (summaries). They are exactly the origins that
// DeltaFor(peer) of that state serves, so a replica that is behind several
// peers can take each origin's gap from one of them (DeltaForOrigins)
// instead of the whole difference from each. O(replicas), never O(entries).
func (g Digest) Ahead(peer Digest) []ReplicaID {
	var out []ReplicaID
	for r, x := range g.applied.m {
		if ahead(x, peer.applied.m[r]) {
			out = append(out, r)
		}
	}
	for r, x := range g.seen.m {
		if !slices.Contains(out, r) && ahead(x, peer.seen.m[r]) {
			out = append(out, r)
		}
	}
	if g.applied.Equal(&peer.applied) {
		for r := range g.seen.m {
			if !slices.Contains(out, r) && g.sums[r] != peer.sums[r] {
				out = append(out, r)
			}
		}
	}
	slices.SortFunc(out, ReplicaID.Compare)
	return out
}

// ahead reports whether mine covers a counter theirs does not.
func ahead(mine, theirs *rctx) bool {
	if mine == nil || mine.empty() {
		return false
	}
	if theirs == nil {
		return true
	}
	return len(subtractSpans(mine.spans(), theirs.spans())) > 0
}

// DeltaForOrigins is DeltaFor(peer) restricted to the given origins: for
// each of them what DeltaFor would send of it (its missed events with the
// dots they removed, its dots seen here only as removed, its entries when
// the summaries differ), nothing of the other origins. Joining the results
// of DeltaForOrigins over a partition of Ahead's origins, taken from
// several states that each include the peer's gap for their part, brings
// the peer as far as joining DeltaFor of each would for those parts.
func (m *ORMap[K, V]) DeltaForOrigins(peer Digest, origins []ReplicaID) *ORMap[K, V] {
	return m.deltaFor(peer, func(r ReplicaID) bool { return slices.Contains(origins, r) })
}
