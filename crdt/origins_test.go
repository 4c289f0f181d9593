package crdt_test

import (
	"testing"

	"pgregory.net/rapid"

	"github.com/nodal-go/nodal/crdt"
)

// Taking each origin Ahead names with DeltaForOrigins, one origin at a
// time, brings a peer exactly where DeltaFor does; Ahead is empty exactly
// when DeltaFor has nothing to send; and a state serves nothing of the
// origins it is not asked for.
func TestDeltaForOriginsPartitionsDeltaFor(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ids := []crdt.ReplicaID{ra, rb, rc}
		reps := make([]*crdt.ORMap[string, uint64], len(ids))
		for i := range reps {
			reps[i] = newMap(ids[i])
			reps[i].SetLogLimit(rapid.IntRange(0, 3).Draw(t, "limit"))
		}
		for range rapid.IntRange(0, 30).Draw(t, "steps") {
			at := rapid.IntRange(0, len(reps)-1).Draw(t, "at")
			switch rapid.IntRange(0, 3).Draw(t, "kind") {
			case 0, 1:
				mutateORMap(t, reps[at])
			case 2: // a partial anti-entropy round
				from := reps[rapid.IntRange(0, len(reps)-1).Draw(t, "from")]
				reps[at].Merge(from.DeltaFor(reps[at].Digest()))
			case 3: // one pushed delta
				d := mutateORMap(t, reps[at])
				reps[rapid.IntRange(0, len(reps)-1).Draw(t, "to")].Merge(d)
			}
		}
		x, m := reps[0], reps[1]
		g := m.Digest()
		full := m.Clone()
		d := x.DeltaFor(g)
		full.Merge(d)
		ahead := x.Digest().Ahead(g)
		if (len(ahead) == 0) != (d.Len() == 0 && len(d.Context().Replicas()) == 0) {
			t.Fatalf("Ahead %v, DeltaFor %v", ahead, d)
		}
		parts := m.Clone()
		for _, r := range ahead {
			p := x.DeltaForOrigins(g, []crdt.ReplicaID{r})
			for _, id := range p.Applied().Replicas() {
				if id != r {
					t.Fatalf("the part for %v applies events of %v", r, id)
				}
			}
			parts.Merge(p)
		}
		if !parts.Equal(full) {
			t.Fatalf("per origin %v\nwhole %v", parts, full)
		}
		if p := x.DeltaForOrigins(g, nil); p.Len() != 0 || len(p.Context().Replicas()) != 0 {
			t.Fatalf("asked for nothing, sent %v", p)
		}
	})
}
