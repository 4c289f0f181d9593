package groups

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
)

// Monitor: a snapshot, then every later change exactly once and in order,
// including the leaves of a node that goes down (hidden) and its joins
// when it comes back (shown), then what it did meanwhile.
func TestMonitorEventOrderAcrossNodeDownAndUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 3, Config{}, "a@10.0.0.1", "b@10.0.0.2")
		defer c.stop()
		ctx := context.Background()
		a, b := c.scopes[0], c.scopes[1]
		pa, pb, pb2 := idle(t, c.nodes[0]), idle(t, c.nodes[1]), idle(t, c.nodes[1])
		require.NoError(t, a.Join(ctx, "g", pa))

		snap, mon, err := a.Monitor("g")
		require.NoError(t, err)
		defer mon.Stop()
		require.Equal(t, pids(pa), snap)
		other, omon, err := a.Monitor("other")
		require.NoError(t, err)
		defer omon.Stop()
		require.Empty(t, other)
		ssnap, smon, err := a.MonitorScope()
		require.NoError(t, err)
		defer smon.Stop()
		require.Equal(t, map[string][]nodal.Pid{"g": pids(pa)}, ssnap)

		require.NoError(t, b.Join(ctx, "g", pb))
		eventually(t, "b's member on a", func() bool { return a.Count("g") == 2 })

		c.net.Isolate(c.nodes[1].Name())
		eventually(t, "b's member hidden on a", func() bool { return a.Count("g") == 1 })
		eventually(t, "a's member hidden on b", func() bool { return equalPids(b.Members("g"), pids(pb)) })
		require.NoError(t, b.Join(ctx, "g", pb2))
		require.NoError(t, a.Leave(ctx, "g", pa))
		require.Equal(t, sortedPids(pb, pb2), b.Members("g"), "b keeps its own view during the split")

		c.net.Heal()
		c.rejoin(0, 1)
		eventually(t, "b's members back on a", func() bool { return equalPids(a.Members("g"), sortedPids(pb, pb2)) })
		eventually(t, "a's leave reached b", func() bool { return equalPids(b.Members("g"), sortedPids(pb, pb2)) })

		want := []Event{
			{Kind: Joined, Group: "g", Pids: pids(pb), Cause: CauseRemote},
			{Kind: Left, Group: "g", Pids: pids(pb), Cause: CauseNodeDown},
			{Kind: Left, Group: "g", Pids: pids(pa), Cause: CauseLocal},
			{Kind: Joined, Group: "g", Pids: pids(pb), Cause: CauseNodeUp},
			{Kind: Joined, Group: "g", Pids: pids(pb2), Cause: CauseRemote},
		}
		require.Equal(t, want, drain(mon))
		require.Equal(t, want, drain(smon), "the scope monitor sees the same")
		require.Empty(t, drain(omon), "another group's monitor sees nothing")

		mon.Stop()
		_, ok := <-mon.Events()
		require.False(t, ok, "stopped monitor's channel is closed")
		require.NoError(t, mon.Err())
	})
}

// pg_SUITE netsplit: a node cut off from the others keeps its own members
// and loses theirs; both sides change during the split; after the heal
// every node shows the same, up-to-date members.
func TestNetsplit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 4, Config{}, "a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3")
		defer c.stop()
		ctx := context.Background()
		a, b, s3 := c.scopes[0], c.scopes[1], c.scopes[2]
		pa, pb, pc := idle(t, c.nodes[0]), idle(t, c.nodes[1]), idle(t, c.nodes[2])
		require.NoError(t, a.Join(ctx, "g", pa))
		require.NoError(t, b.Join(ctx, "g", pb))
		require.NoError(t, s3.Join(ctx, "g", pc))
		all := sortedPids(pa, pb, pc)
		for _, s := range c.scopes {
			eventually(t, "all members", func() bool { return equalPids(s.Members("g"), all) })
		}

		c.net.Isolate(c.nodes[2].Name())
		eventually(t, "majority side", func() bool {
			return equalPids(a.Members("g"), sortedPids(pa, pb)) && equalPids(b.Members("g"), sortedPids(pa, pb))
		})
		eventually(t, "minority side", func() bool { return equalPids(s3.Members("g"), pids(pc)) })

		pc2 := idle(t, c.nodes[2])
		require.NoError(t, s3.Join(ctx, "g", pc2))
		require.NoError(t, s3.Join(ctx, "only-c", pc2))
		require.NoError(t, a.Leave(ctx, "g", pa))
		eventually(t, "a's leave on b", func() bool { return equalPids(b.Members("g"), pids(pb)) })
		require.Equal(t, []string{"g"}, b.WhichGroups(), "b does not see c's group during the split")

		c.net.Heal()
		c.rejoin(2, 0)
		c.rejoin(2, 1)
		want := sortedPids(pb, pc, pc2)
		for i, s := range c.scopes {
			eventually(t, "converged after heal", func() bool {
				return equalPids(s.Members("g"), want) && equalPids(s.Members("only-c"), pids(pc2))
			})
			require.Equal(t, []string{"g", "only-c"}, s.WhichGroups(), "node %d", i)
		}
	})
}

// pg_SUITE trisplit: a and b cut from each other, both still see c. The
// view is not transitive (pg's documented behaviour): a sees c's members
// but not b's; c sees everyone. After the heal everyone sees everyone.
func TestTrisplitPartialPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 5, Config{}, "a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3")
		defer c.stop()
		ctx := context.Background()
		a, b, s3 := c.scopes[0], c.scopes[1], c.scopes[2]
		pa, pb, pc := idle(t, c.nodes[0]), idle(t, c.nodes[1]), idle(t, c.nodes[2])

		c.net.Partition(c.nodes[0].Name(), c.nodes[1].Name())
		require.NoError(t, a.Join(ctx, "g", pa))
		require.NoError(t, b.Join(ctx, "g", pb))
		require.NoError(t, s3.Join(ctx, "g", pc))
		eventually(t, "c sees all", func() bool { return equalPids(s3.Members("g"), sortedPids(pa, pb, pc)) })
		eventually(t, "a sees a and c", func() bool { return equalPids(a.Members("g"), sortedPids(pa, pc)) })
		eventually(t, "b sees b and c", func() bool { return equalPids(b.Members("g"), sortedPids(pb, pc)) })

		c.net.Heal()
		c.rejoin(0, 1)
		for _, s := range c.scopes {
			eventually(t, "all after heal", func() bool { return equalPids(s.Members("g"), sortedPids(pa, pb, pc)) })
		}
	})
}

// A node that restarts (a new incarnation) has its old members purged on
// every node, and its new ones shown; a node that stops gracefully has
// its members removed at once.
func TestRestartAndGracefulLeave(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 6, Config{}, "a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3")
		defer c.stop()
		ctx := context.Background()
		a := c.scopes[0]
		pb := idle(t, c.nodes[1])
		pc := idle(t, c.nodes[2])
		require.NoError(t, c.scopes[1].Join(ctx, "g", pb))
		require.NoError(t, c.scopes[2].Join(ctx, "g", pc))
		eventually(t, "joined", func() bool { return a.Count("g") == 2 })

		// graceful leave of c
		stopCtx, cancel := context.WithTimeout(ctx, 5e9)
		require.NoError(t, c.nodes[2].Stop(stopCtx))
		cancel()
		c.nodes[2], c.scopes[2] = nil, nil
		eventually(t, "c's member gone", func() bool { return equalPids(a.Members("g"), pids(pb)) })

		// b restarts under the same name: its old member never comes back
		stopCtx, cancel = context.WithTimeout(ctx, 5e9)
		require.NoError(t, c.nodes[1].Stop(stopCtx))
		cancel()
		c.nodes[1], c.scopes[1] = nil, nil
		eventually(t, "b's member gone", func() bool { return a.Members("g") == nil })
		n2, s2 := c.start("b@10.0.0.2")
		c.waitMesh()
		pb2 := idle(t, n2)
		require.NoError(t, s2.Join(ctx, "g", pb2))
		eventually(t, "new incarnation's member", func() bool { return equalPids(a.Members("g"), pids(pb2)) })
		require.NoError(t, s2.Sync(ctx))
		require.Equal(t, pids(pb2), s2.Members("g"), "the restarted node does not get its old member back")
	})
}
