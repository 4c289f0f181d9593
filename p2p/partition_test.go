package p2p

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nodal-go/nodal/p2p/p2ptest"
	"github.com/stretchr/testify/require"
)

func TestPartitionAndHeal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New()
		defer net.Close()
		nodes := startCluster(t, net, 4)
		p2ptest.Eventually(t, 60*time.Second, func() bool { return meshed(nodes) })
		left, right := nodes[:2], nodes[2:]
		net.Split(names(left), names(right))
		sideOK := func(side, other []*simNode) bool {
			for _, n := range side {
				if len(n.Members()) != len(side) {
					return false
				}
				for _, o := range other {
					if n.rec.isUp(o.Self().Name) {
						return false
					}
				}
				if len(n.Peers()) != len(side)-1 {
					return false
				}
			}
			return true
		}
		p2ptest.Eventually(t, 120*time.Second, func() bool { return sideOK(left, right) && sideOK(right, left) }, "split seen")
		// A frame across the cut fails with ErrNoConnection.
		err := left[0].Send(context.Background(), right[0].Self().Name, []byte("x"))
		require.ErrorIs(t, err, ErrNoConnection)
		// Within a side, traffic flows.
		require.NoError(t, left[0].Send(context.Background(), left[1].Self().Name, []byte("in")))
		p2ptest.Eventually(t, 10*time.Second, func() bool { return len(left[1].rec.frames(left[0].Self().Name)) == 1 })

		net.Heal()
		// memberlist does not rejoin by itself (that is heal/'s job): join again.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, right[0].Join(ctx, []string{left[0].GossipAddr()}))
		p2ptest.Eventually(t, 120*time.Second, func() bool { return meshed(nodes) }, "healed mesh")
		for _, n := range nodes {
			for _, o := range nodes {
				if n == o {
					continue
				}
				evs := n.rec.of(o.Self().Name)
				// up ... then strictly alternating down/up, ending up.
				require.Equal(t, "up", evs[0].Kind)
				last := ""
				for _, e := range evs {
					if e.Kind == "frame" {
						continue
					}
					require.NotEqual(t, last, e.Kind, "%s about %s: %v", n.Self().Name, o.Self().Name, evs)
					last = e.Kind
				}
				require.Equal(t, "up", last)
			}
		}
		stopSim(t, nodes...)
		settle()
	})
}

func TestHiddenNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New()
		defer net.Close()
		nodes := startCluster(t, net, 2)
		p2ptest.Eventually(t, 60*time.Second, func() bool { return meshed(nodes) })
		a, b := nodes[0], nodes[1]
		cfg := simConfig(net, "ctl@127.0.0.1")
		cfg.Hidden = true
		ctl := startSim(t, cfg)
		require.Empty(t, ctl.GossipAddr())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p, err := ctl.ConnectAddr(ctx, a.ListenAddrs()[0])
		require.NoError(t, err)
		require.Equal(t, a.Self().Name, p.Name)
		require.Equal(t, a.Self().Incarnation, p.Incarnation)
		require.Equal(t, a.Self().ID, p.ID)
		p2ptest.Eventually(t, 10*time.Second, func() bool { return a.rec.isUp("ctl@127.0.0.1") })
		// Frames both ways.
		require.NoError(t, ctl.Send(ctx, a.Self().Name, []byte("hello")))
		require.NoError(t, a.Send(ctx, "ctl@127.0.0.1", []byte("hi")))
		p2ptest.Eventually(t, 10*time.Second, func() bool {
			return len(a.rec.frames("ctl@127.0.0.1")) == 1 && len(ctl.rec.frames(a.Self().Name)) == 1
		})
		// a sees it as a hidden peer; nobody sees it as a member; b never hears of it.
		ps := a.Peers()
		require.Equal(t, []string{"ctl@127.0.0.1", b.Self().Name}, peerNames(ps))
		require.True(t, ps[0].Hidden)
		require.False(t, ps[1].Hidden)
		time.Sleep(30 * time.Second) // plenty of gossip rounds
		for _, n := range nodes {
			require.NotContains(t, memberNames(n.Members()), "ctl@127.0.0.1")
		}
		require.NotContains(t, peerNames(b.Peers()), "ctl@127.0.0.1")
		require.Empty(t, b.rec.of("ctl@127.0.0.1"))
		require.Nil(t, ctl.Members())
		require.Equal(t, []string{a.Self().Name}, peerNames(ctl.Peers()))
		// A hidden node cannot reach a node it was not given.
		require.ErrorIs(t, ctl.Send(ctx, b.Self().Name, []byte("x")), ErrNoConnection)
		stopSim(t, ctl)
		p2ptest.Eventually(t, 10*time.Second, func() bool { return !a.rec.isUp("ctl@127.0.0.1") })
		require.ErrorIs(t, a.rec.downs("ctl@127.0.0.1")[0], ErrLeft)
		stopSim(t, nodes...)
		settle()
	})
}
