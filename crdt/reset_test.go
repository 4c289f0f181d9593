package crdt_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/nodal-go/nodal/crdt"
)

// A delta emptied by Reset and used again as AddInto's acc holds exactly
// what a new delta would: the same encoding, and joined into another
// replica the same state.
func TestResetDeltaReused(t *testing.T) {
	a := newMap(ra)
	twin := newMap(ra)
	b := newMap(rb)
	var reused *crdt.ORMap[string, uint64]
	for round := range 3 {
		var fresh *crdt.ORMap[string, uint64]
		for i := range 20 + round*7 {
			k := fmt.Sprintf("k%d-%d", round, i)
			reused, _ = a.AddInto(reused, k, uint64(i))
			fresh, _ = twin.AddInto(fresh, k, uint64(i))
		}
		got, _ := reused.MarshalBinary()
		want, _ := fresh.MarshalBinary()
		if !bytes.Equal(got, want) {
			t.Fatalf("round %d: reused delta encodes differently from a new one", round)
		}
		b.Join(reused)
		if reused.Reset(); reused.Len() != 0 || reused.LiveLen() != 0 || len(reused.Context().Replicas()) != 0 {
			t.Fatalf("round %d: Reset left %d keys, %d dots, context %v", round, reused.Len(), reused.LiveLen(), reused.Context().Replicas())
		}
	}
	if !a.Equal(b) {
		t.Fatal("replica joined from reused deltas differs from the owner")
	}
}
