package crdt_test

import (
	"testing"

	"github.com/nodal-go/nodal/crdt"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func decodeMap(t require.TestingT, m *crdt.ORMap[string, uint64]) *crdt.ORMap[string, uint64] {
	b, err := m.MarshalBinary()
	require.NoError(t, err)
	d, err := crdt.DecodeORMap(b, crdt.StringCodec{}, crdt.Uint64Codec{})
	require.NoError(t, err)
	return d
}

// A decoded value (kept flat until read) answers every read, join and
// sync exactly as the value it was encoded from, and joining it reports
// the same changes: deltas and states, with keys of one and of many
// siblings (both forms of a key's dot index).
func TestDecodedActsLikeOriginal(t *testing.T) {
	for _, big := range []int{2, 32} {
		restore := crdt.SetBigKey(big)
		rapid.Check(t, func(t *rapid.T) {
			a, b := newMap(ra), newMap(rb)
			direct, viaWire := newMap(rc), newMap(rc)
			var deltas []*crdt.ORMap[string, uint64]
			for i := range rapid.IntRange(1, 40).Draw(t, "ops") {
				src := a
				if rapid.Bool().Draw(t, "b") {
					src = b
				}
				k := rapid.SampledFrom(small).Draw(t, "key")
				var d *crdt.ORMap[string, uint64]
				switch rapid.IntRange(0, 4).Draw(t, "op") {
				case 0:
					d = src.Add(k, uint64(i))
				case 1:
					d = src.Put(k, uint64(i))
				case 2:
					d = src.Remove(k)
				case 3:
					live := src.LiveDots()
					if len(live) == 0 {
						continue
					}
					d = src.RemoveDots(live[rapid.IntRange(0, len(live)-1).Draw(t, "dot")])
				default:
					other := b
					if src == b {
						other = a
					}
					src.Merge(decodeMap(t, other))
					continue
				}
				deltas = append(deltas, d)
			}
			// Deliver in a random order, some twice.
			for range rapid.IntRange(0, len(deltas)).Draw(t, "dups") {
				deltas = append(deltas, deltas[rapid.IntRange(0, len(deltas)-1).Draw(t, "dup")])
			}
			order := rapid.Permutation(deltas).Draw(t, "order")
			for _, d := range order {
				dec := decodeMap(t, d)
				require.Equal(t, d.Len(), dec.Len())
				require.Equal(t, direct.Join(d), viaWire.Join(dec))
				require.True(t, direct.Equal(viaWire), "%v\n%v", direct, viaWire)
			}
			for _, s := range []*crdt.ORMap[string, uint64]{a, b, direct} {
				// reads of a decoded state, each on a fresh decode
				require.Equal(t, s.Keys(), decodeMap(t, s).Keys())
				require.Equal(t, s.LiveDots(), decodeMap(t, s).LiveDots())
				require.Equal(t, s.String(), decodeMap(t, s).String())
				require.True(t, s.Digest().Equal(decodeMap(t, s).Digest()))
				require.True(t, decodeMap(t, s).Clone().Equal(s))
				require.True(t, s.Equal(decodeMap(t, s)))
				for _, k := range small {
					require.Equal(t, s.Get(k), decodeMap(t, s).Get(k))
					require.Equal(t, s.Count(k), decodeMap(t, s).Count(k))
					require.Equal(t, s.Contains(k), decodeMap(t, s).Contains(k))
				}
				// a decoded state joined into a replica that holds part of it
				// (its dots already known, some removed since)
				x, y := newMap(rc), newMap(rc)
				for _, d := range deltas[:len(deltas)/2] {
					x.Merge(d)
					y.Merge(d)
				}
				require.Equal(t, x.Join(s), y.Join(decodeMap(t, s)))
				require.True(t, x.Equal(y))
				// joining into a decoded value and syncing from one
				u := decodeMap(t, s)
				w := s.Clone()
				require.Equal(t, w.Join(a), u.Join(a))
				require.True(t, w.Equal(u))
				require.True(t, s.DeltaFor(b.Digest()).Equal(decodeMap(t, s).DeltaFor(b.Digest())))
			}
		})
		restore()
	}
}

// A bounded log keeps exactly the newest events of each origin however
// many go through it (its array is reused in place once full), whatever
// the interleaving of origins: a peer missing only logged events is served
// them from the log, a peer missing an older one gets the origin's entries.
func TestBoundedLogKeepsNewest(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		limit := rapid.IntRange(1, 20).Draw(t, "limit")
		a, b, c := newMap(ra), newMap(rb), newMap(rc)
		c.SetLogLimit(limit)
		var deltas []*crdt.ORMap[string, uint64]
		var fromA []int // indexes in deltas of a's events
		for i := range rapid.IntRange(1, 300).Draw(t, "events") {
			src := a
			if rapid.Bool().Draw(t, "b") {
				src = b
			}
			d := src.Add(small[i%len(small)], uint64(i))
			c.Merge(d)
			if src == a {
				fromA = append(fromA, len(deltas))
			}
			deltas = append(deltas, d)
		}
		require.Equal(t, min(len(fromA), limit), c.LogLen(ra))
		require.Equal(t, min(len(deltas)-len(fromA), limit), c.LogLen(rb))
		for _, missing := range []int{limit, limit + 1} {
			if missing > len(fromA) {
				continue
			}
			// a peer with every event but a's newest `missing`
			peer := newMap(rc)
			skip := map[int]bool{}
			for _, i := range fromA[len(fromA)-missing:] {
				skip[i] = true
			}
			for i, d := range deltas {
				if !skip[i] {
					peer.Merge(d)
				}
			}
			d := c.DeltaFor(peer.Digest())
			if missing <= limit {
				require.Equal(t, missing, d.LogLen(ra), "served from the log")
			} else {
				require.Equal(t, 0, d.LogLen(ra), "older than the log: the origin's entries")
				require.Equal(t, len(fromA), d.LiveLen())
			}
			peer.Merge(d)
			require.True(t, peer.Equal(c))
		}
	})
}
