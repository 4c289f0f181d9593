package replica

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/crdt"
	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// A node that comes back to three peers holding the same difference takes
// it about once: each origin's gap is asked of one peer, not answered by
// every peer that has it.
func TestReplicaPullsTheGapOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 7, testConfig(), "a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3", "d@10.0.0.4")
		defer c.stop()
		a, b := c.members[0], c.members[1]
		c.net.Isolate(a.n.Name())
		p2ptest.Eventually(t, 60*time.Second, func() bool { return !b.up(t, a.n.Name()) && !a.up(t, b.n.Name()) }, "a isolated")
		for i := range 300 {
			b.add(t, fmt.Sprintf("k%03d", i), strings.Repeat("v", 100))
		}
		for _, m := range c.members[2:] {
			p2ptest.Eventually(t, 10*time.Second, func() bool { return len(m.visible(t)) == 300 }, "pushed on b's side")
		}
		// One copy of the difference: what b alone would send a.
		var ga crdt.Digest
		require.NoError(t, a.r.Update(context.Background(), func(s *State[string, string]) error {
			ga = s.Map().Digest()
			return nil
		}))
		var one int
		require.NoError(t, b.r.Update(context.Background(), func(s *State[string, string]) error {
			one = len(encodeDelta(s.Map().DeltaFor(ga), 0))
			return nil
		}))
		c.rejoin()
		p2ptest.Eventually(t, 30*time.Second, func() bool {
			sa := a.state(t)
			for _, m := range c.members[1:] {
				if !sa.Equal(m.state(t)) {
					return false
				}
			}
			return true
		}, "equal states")
		var got uint64
		for _, m := range c.members[1:] {
			got += a.r.TrafficSinceUp(m.n.Name()).Bytes
		}
		t.Logf("one copy %d bytes; a exchanged %d with b, c and d since they came back", one, got)
		require.Greater(t, one, 30_000)
		// Digests and asks to and from three peers are a few hundred
		// bytes; a second copy would be 30 KB more.
		require.Less(t, got, uint64(one)+uint64(one)/2, "the difference crossed about once")
	})
}

// Each origin is asked of one peer at a time, the origin's own node first
// on a tie; when that peer goes down before answering, the origin is asked
// of another peer that offered it, and the replica converges.
func TestReplicaPullFallsBackWhenThePeerGoes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 8, testConfig(), "a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3")
		defer c.stop()
		a, b, cc := c.members[0], c.members[1], c.members[2]
		for i := range 20 {
			b.add(t, fmt.Sprintf("k%d", i), "v")
		}
		for _, m := range []*member{a, cc} {
			p2ptest.Eventually(t, 10*time.Second, func() bool { return len(m.visible(t)) == 20 }, "pushed")
		}
		digest := func(m *member) (g crdt.Digest) {
			require.NoError(t, m.r.Update(context.Background(), func(s *State[string, string]) error {
				g = s.Map().Digest()
				return nil
			}))
			return g
		}
		gb, gc := digest(b), digest(cc)
		bID := b.r.Self()
		ref := func(m *member) nodal.NodeRef { return nodal.NodeRef{Name: m.n.Name(), Incarnation: m.n.Incarnation()} }
		require.NoError(t, a.r.Update(context.Background(), func(*State[string, string]) error {
			r := a.r
			// a forgets b's entries (as after a permanent-down purge whose
			// incarnation is accepted again), then hears b's and c's digests.
			r.purge(bID, false)
			delete(r.purged, bID.Name)
			r.offered(ref(b), gb)
			r.offered(ref(cc), gc)
			require.Len(t, r.pl.asks, 1, "b's origin asked of one peer only")
			require.Equal(t, b.n.Name(), r.pl.asks[r.pl.taking[bID]].peer, "the origin's own node first")
			r.peerGone(b.n.Name()) // b goes before its answer is handled
			require.Len(t, r.pl.asks, 1)
			require.Equal(t, cc.n.Name(), r.pl.asks[r.pl.taking[bID]].peer, "asked of c instead")
			return nil
		}))
		p2ptest.Eventually(t, 10*time.Second, func() bool {
			var n int
			_ = a.r.Update(context.Background(), func(s *State[string, string]) error {
				n = len(s.Map().LiveDots())
				return nil
			})
			return n == 20
		}, "b's entries back on a")
	})
}
