package groups

import (
	"testing"

	"pgregory.net/rapid"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/crdt"
	"github.com/nodal-go/nodal/crdt/crdttest"
)

// The groups' state meets the CRDT laws (crdt/crdttest) under the groups'
// own operations: joins with multiplicity and metadata, and leaves of one
// of the pid's own memberships, each replica writing only its own pids.
func TestStateLaws(t *testing.T) {
	crdttest.CheckLaws(t, crdttest.Gen[*state]{
		New: func(r crdt.ReplicaID, limit int) *state {
			s := newState(r)
			s.SetLogLimit(limit)
			return s
		},
		Mutate: func(t *rapid.T, s *state) *state {
			self := s.Self()
			group := rapid.SampledFrom([]string{"g1", "g2", "g3"}).Draw(t, "group")
			pid := nodal.Pid{Node: self.Name, ID: rapid.Uint64Range(1, 3).Draw(t, "pid"), Incarnation: self.Epoch}
			if rapid.IntRange(0, 2).Draw(t, "op") < 2 {
				meta := []byte(rapid.SampledFrom([]string{"", "m"}).Draw(t, "meta"))
				return s.Add(group, Membership{Pid: pid, Meta: clone(meta)})
			}
			// leave: one of pid's own memberships of group, if any
			var mine []crdt.Dot
			for _, sib := range s.Get(group) {
				if sib.Value.Pid == pid {
					mine = append(mine, sib.Dot)
				}
			}
			if len(mine) == 0 {
				return s.RemoveDots()
			}
			return s.RemoveDots(mine[rapid.IntRange(0, len(mine)-1).Draw(t, "which")])
		},
		Decode: decodeState,
	})
}
