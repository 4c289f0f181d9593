package p2p

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nodal-go/nodal/p2p/p2ptest"
	"github.com/stretchr/testify/require"
)

// crash ends h like a killed process: no goodbye, no leave; peers find out
// from the broken connection and from failure detection.
func (h *Host) crash(t *testing.T) {
	t.Helper()
	// A dead process accepts nothing: refuse new connections before the
	// wire goes, or a peer's reconnect could reach the dying host and get
	// a goodbye from its Stop below.
	h.mu.Lock()
	h.stopping = true
	h.mu.Unlock()
	h.lh.RemoveStreamHandler(DistProtocol)
	if h.ml != nil {
		require.NoError(t, h.ml.Shutdown())
		h.mlShutdown = true
	}
	require.NoError(t, h.lh.Close())
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = h.Stop(ctx) // reclaims our goroutines; the wire is already gone
}

func kinds(evs []event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Kind)
	}
	return out
}

// requireReplaced checks that n's last events for node are the old
// incarnation's down followed by the new incarnation's up.
func requireReplaced(t *testing.T, n *simNode, node string, oldInc, newInc uint64) {
	t.Helper()
	evs := n.rec.of(node)
	require.GreaterOrEqual(t, len(evs), 2, "%v", evs)
	require.Equal(t, "up", evs[len(evs)-1].Kind)
	require.Equal(t, newInc, evs[len(evs)-1].Inc, "the new incarnation")
	require.Equal(t, "down", evs[len(evs)-2].Kind, "old incarnation's down comes first")
	require.Equal(t, oldInc, evs[len(evs)-2].Inc)
}

func TestCrashThenRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New()
		defer net.Close()
		nodes := startCluster(t, net, 3)
		a, b := nodes[0], nodes[1]
		bName := b.Self().Name
		p2ptest.Eventually(t, 60*time.Second, func() bool { return meshed(nodes) })
		oldInc := b.Self().Incarnation
		for i := range 5 {
			require.NoError(t, b.Send(context.Background(), a.Self().Name, []byte(fmt.Sprint(i))))
		}
		p2ptest.Eventually(t, 10*time.Second, func() bool { return len(a.rec.frames(bName)) == 5 })
		b.crash(t)
		p2ptest.Eventually(t, 10*time.Second, func() bool { return !a.rec.isUp(bName) }, "a sees b down")
		require.ErrorIs(t, a.rec.downs(bName)[0], ErrConnClosed)
		// memberlist declares it dead; the name is then free again.
		p2ptest.Eventually(t, 60*time.Second, func() bool { return len(a.Members()) == 2 && len(nodes[2].Members()) == 2 }, "b dead")
		// Let the "b is dead" gossip die out first: memberlist lets the new b
		// take the name with a fresh (low) gossip incarnation, and a late
		// retransmission of the old death would briefly declare it dead too.
		time.Sleep(10 * time.Second)
		b2 := startSim(t, simConfig(net, bName, a.GossipAddr()))
		require.NotEqual(t, oldInc, b2.Self().Incarnation)
		p2ptest.Eventually(t, 60*time.Second, func() bool { return a.rec.isUp(bName) && nodes[2].rec.isUp(bName) })
		for _, n := range []*simNode{a, nodes[2]} {
			requireReplaced(t, n, bName, oldInc, b2.Self().Incarnation)
		}
		require.Equal(t, []string{"up", "frame", "frame", "frame", "frame", "frame", "down", "up"}, kinds(a.rec.of(bName)), "%v", a.rec.of(bName))
		stopSim(t, a, nodes[2], b2)
		settle()
	})
}

// A node that crashes and is restarted at once on the same gossip address
// (a process supervisor restarting it) joins at once, before the cluster
// has declared its previous start dead: the old start cannot hold the port
// any more. Peers see the old incarnation go down, then the new one come
// up, and the new one stays.
func TestCrashThenQuickRestartSameAddress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New()
		defer net.Close()
		nodes := startCluster(t, net, 3)
		a, b, c := nodes[0], nodes[1], nodes[2]
		bName, bGossip := b.Self().Name, b.GossipAddr()
		p2ptest.Eventually(t, 60*time.Second, func() bool { return meshed(nodes) })
		oldInc := b.Self().Incarnation
		b.crash(t)
		p2ptest.Eventually(t, 10*time.Second, func() bool { return !a.rec.isUp(bName) && !c.rec.isUp(bName) }, "old b down")
		cfg := simConfig(net, bName, a.GossipAddr())
		cfg.GossipAddr = bGossip
		b2 := startSim(t, cfg) // would fail with ErrNameInUse without the same-address rule
		require.NotEqual(t, oldInc, b2.Self().Incarnation)
		p2ptest.Eventually(t, 10*time.Second, func() bool { return a.rec.isUp(bName) && c.rec.isUp(bName) }, "new b up")
		time.Sleep(60 * time.Second) // long past any failure detection of the old start
		for _, n := range []*simNode{a, c} {
			require.True(t, n.rec.isUp(bName), "new b stays up on %s", n.Self().Name)
			requireReplaced(t, n, bName, oldInc, b2.Self().Incarnation)
		}
		for _, m := range a.Members() {
			if m.Name == bName {
				require.Equal(t, b2.Self().Incarnation, m.Incarnation, "a's member list has the new start")
			}
		}
		require.Len(t, a.Members(), 3)
		stopSim(t, a, c, b2)
		settle()
	})
}

// A second live node may not take a name at another address, even if it
// says it is a restart.
func TestSameNameOtherAddressStillRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New()
		defer net.Close()
		nodes := startCluster(t, net, 2)
		a, b := nodes[0], nodes[1]
		p2ptest.Eventually(t, 60*time.Second, func() bool { return meshed(nodes) })
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := Start(ctx, simConfig(net, b.Self().Name, a.GossipAddr()), newRecorder())
		require.ErrorIs(t, err, ErrNameInUse)
		stopSim(t, nodes...)
		settle()
	})
}

func TestGracefulLeave(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New()
		defer net.Close()
		nodes := startCluster(t, net, 3)
		p2ptest.Eventually(t, 60*time.Second, func() bool { return meshed(nodes) })
		a, c := nodes[0], nodes[2]
		cName := c.Self().Name
		// Frames queued before Stop are delivered before the node-down.
		for i := range 100 {
			require.NoError(t, c.Send(context.Background(), a.Self().Name, []byte(fmt.Sprint(i))))
		}
		stopSim(t, c)
		p2ptest.Eventually(t, 10*time.Second, func() bool { return !a.rec.isUp(cName) && !nodes[1].rec.isUp(cName) })
		for _, n := range nodes[:2] {
			require.Len(t, n.rec.downs(cName), 1)
			require.ErrorIs(t, n.rec.downs(cName)[0], ErrLeft)
			require.Contains(t, n.rec.downs(cName)[0].Error(), "left")
		}
		require.Len(t, a.rec.frames(cName), 100)
		evs := a.rec.of(cName)
		require.Equal(t, "down", evs[len(evs)-1].Kind)
		p2ptest.Eventually(t, 30*time.Second, func() bool { return len(a.Members()) == 2 && len(nodes[1].Members()) == 2 })
		// The stopping node saw its own connections go down with ErrShutdown.
		for _, e := range c.rec.snapshot() {
			if e.Kind == "down" {
				require.ErrorIs(t, e.Reason, ErrShutdown)
			}
		}
		stopSim(t, nodes[:2]...)
		settle()
	})
}

func TestFrozenNodeFailureDetected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New()
		defer net.Close()
		nodes := startCluster(t, net, 4)
		p2ptest.Eventually(t, 60*time.Second, func() bool { return meshed(nodes) })
		d := nodes[3]
		dName := d.Self().Name
		// Gossip to and from d is lost but its streams stay open, as when a
		// process is frozen: only failure detection can tell.
		for _, n := range nodes[:3] {
			net.Drop(n.Self().Name, dName, 0.9999)
			net.Drop(dName, n.Self().Name, 0.9999)
		}
		p2ptest.Eventually(t, 120*time.Second, func() bool {
			for _, n := range nodes[:3] {
				if n.rec.isUp(dName) {
					return false
				}
			}
			return true
		}, "failure detected")
		for _, n := range nodes[:3] {
			require.ErrorIs(t, n.rec.downs(dName)[0], ErrFailureDetected)
			require.NotContains(t, memberNames(n.Members()), dName)
		}
		net.Heal()
		stopSim(t, nodes...)
		settle()
	})
}

// Reach connects to a live member in the background and reports the
// outcome; a name that is not a live member is refused at once.
func TestReach(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New()
		defer net.Close()
		nodes := startCluster(t, net, 2)
		a, b := nodes[0], nodes[1]
		p2ptest.Eventually(t, 60*time.Second, func() bool { return meshed(nodes) })
		require.False(t, a.Reach(context.Background(), "ghost@127.0.0.1", func(error) { t.Error("done called for a non-member") }))
		require.NoError(t, a.Disconnect(b.Self().Name))
		p2ptest.Eventually(t, 10*time.Second, func() bool { return !a.rec.isUp(b.Self().Name) })
		done := make(chan error, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.True(t, a.Reach(ctx, b.Self().Name, func(err error) { done <- err }))
		require.NoError(t, recvWithin(t, done, 20*time.Second, "Reach's done"))
		p2ptest.Eventually(t, 10*time.Second, func() bool { return a.rec.isUp(b.Self().Name) })
		// A partitioned member: the attempt fails and says so.
		net.Partition(a.Self().Name, b.Self().Name)
		p2ptest.Eventually(t, 60*time.Second, func() bool { return !a.rec.isUp(b.Self().Name) })
		pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer pcancel()
		if a.Reach(pctx, b.Self().Name, func(err error) { done <- err }) {
			require.Error(t, recvWithin(t, done, 20*time.Second, "Reach's done"))
		}
		net.Heal()
		jctx, jcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer jcancel()
		require.NoError(t, b.Join(jctx, []string{a.GossipAddr()}))
		// ctx bounds the attempt: a cancelled ctx ends it with its error,
		// and done is called once.
		p2ptest.Eventually(t, 60*time.Second, func() bool { return a.member(b.Self().Name) != nil }, "b a member")
		if a.rec.isUp(b.Self().Name) {
			require.NoError(t, a.Disconnect(b.Self().Name))
			p2ptest.Eventually(t, 10*time.Second, func() bool { return !a.rec.isUp(b.Self().Name) })
		}
		cctx, ccancel := context.WithCancel(context.Background())
		ccancel()
		var calls atomic.Int32
		require.True(t, a.Reach(cctx, b.Self().Name, func(err error) { calls.Add(1); done <- err }))
		require.ErrorIs(t, recvWithin(t, done, 20*time.Second, "Reach's done"), context.Canceled)
		time.Sleep(30 * time.Second)
		require.Equal(t, int32(1), calls.Load(), "done is called exactly once")
		stopSim(t, a, b)
		settle()
	})
}
