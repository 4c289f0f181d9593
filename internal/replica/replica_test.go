package replica

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal/crdt"
	"github.com/nodal-go/nodal/p2p/p2ptest"
)

func hasChange(cs []Change[string, string], op crdt.Op, key string, why Reason) bool {
	for _, c := range cs {
		if c.Op == op && c.Key == key && c.Reason == why {
			return true
		}
	}
	return false
}

// A local mutation is pushed to every node at once; a partition hides the
// other side's entries (NodeDown) and the heal shows them again (NodeUp),
// without losing or purging them.
func TestReplicaPushHideShow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 1, testConfig(), "a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3")
		defer c.stop()
		a, b, cc := c.members[0], c.members[1], c.members[2]
		d := a.add(t, "k", "v")
		for _, m := range []*member{b, cc} {
			p2ptest.Eventually(t, 5*time.Second, func() bool { return len(m.visible(t)["k"]) == 1 }, "pushed")
		}
		require.True(t, hasChange(a.changes(), crdt.Added, "k", Local))
		require.True(t, hasChange(b.changes(), crdt.Added, "k", Remote))

		c.net.Partition(a.n.Name(), b.n.Name())
		p2ptest.Eventually(t, 60*time.Second, func() bool { return !b.up(t, a.n.Name()) }, "a down on b")
		require.Empty(t, b.visible(t)["k"], "hidden while a is down")
		require.True(t, hasChange(b.changes(), crdt.Removed, "k", NodeDown))
		_, _, live := b.state(t).Lookup(d)
		require.True(t, live, "hidden, not deleted")
		require.Len(t, cc.visible(t)["k"], 1, "c still sees a")

		c.rejoin()
		p2ptest.Eventually(t, 10*time.Second, func() bool { return len(b.visible(t)["k"]) == 1 }, "shown again")
		require.True(t, hasChange(b.changes(), crdt.Added, "k", NodeUp))
	})
}

// Deltas made during a partition never reach the other side; after the
// heal, the digest exchange alone brings it up to date, removals included,
// and what it transfers follows the difference, not the state's size.
func TestReplicaConvergesByDigestAfterPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 2, testConfig(), "a@10.0.0.1", "b@10.0.0.2")
		defer c.stop()
		a, b := c.members[0], c.members[1]
		var dots []crdt.Dot
		for i := range 1000 {
			dots = append(dots, a.add(t, fmt.Sprintf("old%04d", i), "v"))
		}
		p2ptest.Eventually(t, 10*time.Second, func() bool { return len(b.visible(t)) == 1000 }, "pushed before the split")

		c.net.Partition(a.n.Name(), b.n.Name())
		p2ptest.Eventually(t, 60*time.Second, func() bool { return !a.up(t, b.n.Name()) && !b.up(t, a.n.Name()) }, "split")
		for i := range 50 {
			a.add(t, fmt.Sprintf("new%02d", i), "v")
		}
		a.remove(t, dots[:10]...)
		b.add(t, "fromb", "v")
		before := b.r.Stats()

		c.rejoin()
		p2ptest.Eventually(t, 30*time.Second, func() bool { return a.state(t).Equal(b.state(t)) }, "equal states")
		require.Len(t, b.visible(t), 1000-10+50+1)
		require.Len(t, a.visible(t)["fromb"], 1)
		after := b.r.Stats()
		got := after.EntriesReceived - before.EntriesReceived
		require.GreaterOrEqual(t, got, uint64(50), "the new entries came by anti-entropy")
		require.LessOrEqual(t, got, uint64(60), "only the difference is sent, not the 1,000 old entries")
		require.Greater(t, after.DigestsReceived+after.DigestsSent, before.DigestsReceived+before.DigestsSent)
		// What b exchanged with a since a came back is the heal's exchange:
		// the difference, not the pushes of the 1,000 before the split.
		tr := b.r.TrafficSinceUp(a.n.Name())
		require.GreaterOrEqual(t, tr.Entries, uint64(50))
		require.LessOrEqual(t, tr.Entries, uint64(60))
		require.Positive(t, tr.Bytes)
		require.Less(t, tr.Bytes, after.BytesReceived+after.BytesSent-(before.BytesReceived+before.BytesSent)+1)
		require.Zero(t, b.r.TrafficSinceUp("nobody@10.0.0.9"), "a node never up counts nothing")
	})
}

// Sync returns once this replica exchanged state both ways with every up
// peer: right after it, both sides hold what the other held.
func TestReplicaSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 3, testConfig(), "a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3")
		defer c.stop()
		a, b := c.members[0], c.members[1]
		c.net.Isolate(a.n.Name())
		p2ptest.Eventually(t, 60*time.Second, func() bool { return !b.up(t, a.n.Name()) }, "a isolated")
		for i := range 20 {
			a.add(t, fmt.Sprintf("a%d", i), "v")
			b.add(t, fmt.Sprintf("b%d", i), "v")
		}
		c.rejoin()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, a.r.Sync(ctx))
		require.Len(t, a.visible(t), 40, "a has b's entries when Sync returns")
		require.Len(t, b.visible(t), 40, "b has a's entries when a's Sync returns")
		require.Equal(t, uint64(1), a.r.Stats().Syncs)
	})
}

// A graceful leave purges the node's entries everywhere at once; a restart
// under the same name is a new incarnation whose entries are its own.
func TestReplicaPurgeOnLeaveAndRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 4, testConfig(), "a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3")
		defer c.stop()
		a, b := c.members[0], c.members[1]
		b.add(t, "k", "old")
		p2ptest.Eventually(t, 5*time.Second, func() bool { return len(a.visible(t)["k"]) == 1 }, "pushed")
		old := b.r.Self()

		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		require.NoError(t, b.n.Stop(ctx))
		cancel()
		p2ptest.Eventually(t, 30*time.Second, func() bool { return !a.state(t).Mentions(old) }, "purged on leave")
		require.Empty(t, a.visible(t)["k"])

		b = c.start(b.n.Name())
		require.NotEqual(t, old, b.r.Self())
		c.waitMesh()
		b.add(t, "k", "new")
		p2ptest.Eventually(t, 5*time.Second, func() bool {
			v := a.visible(t)["k"]
			return len(v) == 1 && v[0] == "new"
		}, "the new incarnation's entry")
		require.False(t, a.state(t).Mentions(old))
	})
}

// A node down for longer than PermdownPeriod is purged; when it comes back
// with the same incarnation its entries are re-sent in full and shown.
func TestReplicaPermdownThenReturn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.PermdownPeriod = 2 * time.Minute
		c := startCluster(t, 5, cfg, "a@10.0.0.1", "b@10.0.0.2")
		defer c.stop()
		a, b := c.members[0], c.members[1]
		for i := range 10 {
			b.add(t, fmt.Sprintf("k%d", i), "v")
		}
		p2ptest.Eventually(t, 5*time.Second, func() bool { return len(a.visible(t)) == 10 }, "pushed")
		c.net.Partition(a.n.Name(), b.n.Name())
		p2ptest.Eventually(t, 60*time.Second, func() bool { return !a.up(t, b.n.Name()) }, "split")
		p2ptest.Eventually(t, 5*time.Minute, func() bool { return !a.state(t).Mentions(b.r.Self()) }, "purged after the permdown period")
		require.Len(t, b.visible(t), 10, "b keeps its own entries")

		c.rejoin()
		p2ptest.Eventually(t, 30*time.Second, func() bool { return len(a.visible(t)) == 10 }, "b's names are back on a")
	})
}

// Frames from a purged incarnation are dropped and resurrect nothing.
func TestReplicaDropsPurgedIncarnation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 6, testConfig(), "a@10.0.0.1", "b@10.0.0.2")
		defer c.stop()
		a := c.members[0]
		gone := crdt.ReplicaID{Name: "z@10.0.0.9", Epoch: 7}
		zombie := crdt.NewORMap(gone, crdt.StringCodec{}, crdt.StringCodec{})
		d := zombie.Add("ghost", "v")
		require.NoError(t, a.r.Update(context.Background(), func(*State[string, string]) error {
			a.r.purge(gone, true)
			a.r.joinRemote(d) // relayed by a live peer
			return nil
		}))
		require.False(t, a.state(t).Mentions(gone))
		require.Equal(t, uint64(1), a.r.Stats().Dropped)
	})
}

// A delta with an entry Config.Check refuses is dropped whole and counted;
// the good entries of later deltas still arrive.
func TestReplicaRefusesCheckedDelta(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Check = func(k string, sib crdt.Sibling[string]) error {
			if sib.Value == "forged" {
				return fmt.Errorf("entry %q of %v is forged", k, sib.Dot)
			}
			return nil
		}
		c := startCluster(t, 9, cfg, "a@10.0.0.1", "b@10.0.0.2")
		defer c.stop()
		a, b := c.members[0], c.members[1]
		bad := crdt.NewORMap(b.r.Self(), crdt.StringCodec{}, crdt.StringCodec{})
		bad.Add("good", "v")
		bad.Add("evil", "forged")
		require.NoError(t, b.n.SendService(context.Background(), a.n.Name(), cfg.Service, encodeDelta(bad, 0)))
		p2ptest.Eventually(t, 10*time.Second, func() bool { return a.r.Stats().Refused == 1 }, "the delta is refused")
		require.Empty(t, a.visible(t), "nothing of the refused delta is joined")
		require.Zero(t, a.r.Stats().BadFrames)

		b.add(t, "later", "w")
		p2ptest.Eventually(t, 10*time.Second, func() bool { return len(a.visible(t)["later"]) == 1 }, "a good delta arrives")
		require.NotContains(t, a.visible(t), "evil")
	})
}
