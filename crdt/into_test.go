package crdt_test

import (
	"testing"

	"github.com/nodal-go/nodal/crdt"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// The Into mutators accumulate exactly the join of the deltas the plain
// mutators return: same state on the mutating replica, same accumulated
// delta (state, and what it does when joined elsewhere), same dots.
func TestIntoEqualsMergedDeltas(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		plain, into := newMap(ra), newMap(ra)
		other := newMap(rb)
		for range rapid.IntRange(0, 5).Draw(t, "remote") {
			d := other.Add(rapid.SampledFrom(small).Draw(t, "k"), 1)
			plain.Merge(d)
			into.Merge(d)
		}
		var merged, acc *crdt.ORMap[string, uint64]
		for i := range rapid.IntRange(1, 30).Draw(t, "ops") {
			k := rapid.SampledFrom(small).Draw(t, "key")
			var dots []crdt.Dot
			live := plain.LiveDots()
			for range rapid.IntRange(0, 3).Draw(t, "ndots") {
				if len(live) > 0 {
					dots = append(dots, live[rapid.IntRange(0, len(live)-1).Draw(t, "dot")])
				}
			}
			var d *crdt.ORMap[string, uint64]
			var dot crdt.Dot
			switch rapid.IntRange(0, 2).Draw(t, "op") {
			case 0:
				d = plain.Add(k, uint64(i))
				acc, dot = into.AddInto(acc, k, uint64(i))
				require.Equal(t, d.LiveDots(), []crdt.Dot{dot})
			case 1:
				d = plain.Replace(k, uint64(i), dots...)
				acc, dot = into.ReplaceInto(acc, k, uint64(i), dots...)
				require.Equal(t, d.LiveDots(), []crdt.Dot{dot})
			default:
				d = plain.RemoveDots(dots...)
				acc = into.RemoveDotsInto(acc, dots...)
			}
			if merged == nil {
				merged = d
			} else {
				merged.Merge(d)
			}
			require.True(t, plain.Equal(into), "state %v vs %v", plain, into)
			require.True(t, merged.Equal(acc), "delta %v vs %v", merged, acc)
			eb, err := merged.MarshalBinary()
			require.NoError(t, err)
			ab, err := acc.MarshalBinary()
			require.NoError(t, err)
			require.Equal(t, eb, ab)
		}
		x, y := newMap(rc), newMap(rc)
		require.Equal(t, x.Join(merged), y.Join(acc))
		require.True(t, x.Equal(y))
	})
}

func TestIntoNilAccumulator(t *testing.T) {
	m := newMap(ra)
	acc, dot := m.AddInto(nil, "k", 1)
	require.Equal(t, crdt.Dot{Replica: ra, Counter: 1}, dot)
	require.Equal(t, []crdt.Dot{dot}, acc.LiveDots())
	acc = m.RemoveDotsInto(acc, dot)
	require.Empty(t, acc.LiveDots())
	require.True(t, acc.Context().Contains(dot))
	require.Equal(t, 0, m.Len())
}
