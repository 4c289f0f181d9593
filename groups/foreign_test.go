package groups

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/crdt"
	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// A delta whose writer puts another node's pid (or its own pid of another
// incarnation) in a group is refused at the replica, whole: its honest
// memberships are dropped with it, counted as Refused, never shown.
func TestForeignMembershipRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 21, Config{}, "a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3")
		defer c.stop()
		a, b := c.scopes[0], c.scopes[1]
		onB, onC := idle(t, c.nodes[1]), idle(t, c.nodes[2])
		stale := onB
		stale.Incarnation++
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for i, forged := range []nodal.Pid{onC, stale} {
			d := crdt.NewORMap(b.rep.Self(), groupCodec{}, membershipCodec{})
			d.Add("honest", Membership{Pid: onB})
			d.Add("stolen", Membership{Pid: forged})
			enc, err := d.MarshalBinary()
			require.NoError(t, err)
			// 1: the replica's delta frame.
			require.NoError(t, c.nodes[1].SendService(ctx, c.nodes[0].Name(), c.scopes[0].name, append([]byte{1}, enc...)))
			p2ptest.Eventually(t, 5*time.Second, func() bool { return a.Stats().Refused == uint64(i+1) }, "refused")
			require.Empty(t, a.Members("stolen"))
			require.Empty(t, a.Members("honest"), "the whole delta is dropped")
		}
		require.NoError(t, b.Join(ctx, "real", onB))
		p2ptest.Eventually(t, 5*time.Second, func() bool { return len(a.Members("real")) == 1 }, "b's own membership spreads")
		require.Zero(t, a.Stats().BadFrames)
		require.Zero(t, a.Stats().BadOwner)
	})
}
