package heal

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/p2p/p2ptest"
)

var errBoom = errors.New("boom")

// A and B cut, both still reaching C: nothing cascades (C keeps both, A
// and B keep C, memberlist keeps everyone a member), A reports B as a
// member C reaches but A cannot, and the report does not flap. When the
// link returns, A and B reconnect and heal.
func TestPartialPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New(p2ptest.WithSeed(3))
		defer net.Close()
		ms := startCluster(t, net, Config{ReconnectInterval: time.Second}, nil, "a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3")
		defer stopCluster(ms)
		a, b, c := ms[0], ms[1], ms[2]
		// A second reconciler on a, that fails: Healed reports its error and
		// what it still moved, and it was given the node that came back.
		var gotPeers []string
		require.NoError(t, a.h.AddReconciler("failing", ReconcilerFunc(func(ctx context.Context, peers []string) (Exchange, error) {
			gotPeers = peers
			return Exchange{Bytes: 7}, errBoom
		})))
		require.ErrorIs(t, a.h.AddReconciler("failing", ReconcilerFunc(nil)), ErrBadOption)
		net.Partition(a.name(), b.name())
		p2ptest.Eventually(t, 30*time.Second, func() bool {
			v := a.h.View()
			return len(v.Unreachable) == 1 && v.Unreachable[0].Node == b.name() && len(v.Unreachable[0].ReachedBy) == 1 && v.Partitioned
		}, "a reports b, reached by c: %s", views(ms))
		// A minute later, still the same: no cascade, no flapping.
		for range 60 {
			time.Sleep(time.Second)
			va, vb, vc := a.h.View(), b.h.View(), c.h.View()
			require.Equal(t, []string{b.name()}, va.UnreachableNames())
			require.Equal(t, []string{a.name()}, vb.UnreachableNames())
			require.Empty(t, vc.Unreachable, "c keeps both")
			l := va.Unreachable[0]
			require.Equal(t, []string{c.name()}, l.ReachedBy)
			require.True(t, l.Member, "the membership still counts b alive")
			require.True(t, va.Majority)
		}
		require.Equal(t, 1, a.count(isDetected), "one report on a, no flapping")
		require.Equal(t, 1, b.count(isDetected), "one report on b")
		require.Equal(t, 0, c.count(isDetected), "nothing on c")

		net.Heal()
		waitWhole(t, ms, 60*time.Second)
		p2ptest.Eventually(t, 30*time.Second, func() bool { return len(a.healed()) == 1 && len(b.healed()) == 1 }, "healed")
		ha := a.healed()[0]
		require.Equal(t, []string{b.name()}, ha.Returned)
		require.Equal(t, []string{b.name()}, gotPeers)
		require.Len(t, ha.Reconcilers, 2)
		require.NoError(t, ha.Reconcilers[0].Err)
		require.ErrorIs(t, ha.Reconcilers[1].Err, errBoom)
		require.Equal(t, ha.Reconcilers[0].Exchange.Bytes+7, ha.Exchange.Bytes)
	})
}

// A frozen node (its memberlist packets lost both ways while its libp2p
// connections stay open, as under SIGSTOP) is declared failed and
// disconnected; once it runs again heal joins it back, with no manual join.
func TestFrozenNodeResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New(p2ptest.WithSeed(4))
		defer net.Close()
		ms := startCluster(t, net, Config{ReconnectInterval: time.Second}, nil, "a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3")
		defer stopCluster(ms)
		c := ms[2]
		freeze := func(rate float64) {
			for _, m := range ms[:2] {
				net.Drop(m.name(), c.name(), rate)
				net.Drop(c.name(), m.name(), rate)
			}
		}
		freeze(1)
		p2ptest.Eventually(t, 60*time.Second, func() bool {
			return ms[0].h.View().Partitioned && ms[1].h.View().Partitioned && c.h.View().Partitioned
		}, "c frozen out: %s", views(ms))
		time.Sleep(2 * time.Minute) // far beyond the dead-node gossip window
		freeze(0)
		waitWhole(t, ms, 60*time.Second)
		for _, m := range ms {
			require.Len(t, m.n.Members(), 2, "%s members", m.name())
		}
	})
}

// A node restarted (a new incarnation, a new gossip port) during a split,
// on the other side, is found again after the heal: the nodes that lost it
// reach it through the others.
func TestRestartDuringSplit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New(p2ptest.WithSeed(5))
		defer net.Close()
		ms := startCluster(t, net, Config{ReconnectInterval: time.Second}, nil, "a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3")
		a, b, c := ms[0], ms[1], ms[2]
		net.Split([]string{a.name()}, []string{b.name(), c.name()})
		p2ptest.Eventually(t, 60*time.Second, func() bool { return len(a.h.View().Reachable) == 1 }, "a cut off")
		oldInc := b.n.Incarnation()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		require.NoError(t, b.n.Stop(ctx))
		cancel()
		<-b.done
		// Until c has heard of b's leave, the name is still taken (p2p's
		// duty 3: retry).
		var nb *nodal.Node
		p2ptest.Eventually(t, 30*time.Second, func() bool {
			var err error
			nb, err = startNode(net, "b@10.0.0.2", []string{c.n.GossipAddr()})
			return err == nil
		}, "b restarted")
		b = withHeal(t, nb, Config{ReconnectInterval: time.Second})
		ms[1] = b
		defer stopCluster(ms)
		require.NotEqual(t, oldInc, b.n.Incarnation())
		time.Sleep(time.Minute)
		net.Heal()
		waitWhole(t, ms, 90*time.Second)
		var incOnA uint64
		for _, m := range a.n.Members() {
			if m.Name == b.name() {
				incOnA = m.Incarnation
			}
		}
		require.Equal(t, b.n.Incarnation(), incOnA, "a knows b's new start")
		require.Equal(t, nodal.MemberStateAlive, a.n.Members()[0].State)
	})
}
