package nodal

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// startSimCluster starts nodes on a p2ptest network (inside a synctest
// bubble) and waits for the full mesh.
func startSimCluster(t *testing.T, net *p2ptest.Network, names ...string) []*Node {
	t.Helper()
	return startSimClusterWith(t, net, nil, names...)
}

// startSimClusterWith is startSimCluster with mod applied to every config.
func startSimClusterWith(t *testing.T, net *p2ptest.Network, mod func(*Config), names ...string) []*Node {
	t.Helper()
	var nodes []*Node
	var seed string
	for _, name := range names {
		cfg := DefaultLocalConfig(name, testCookie)
		cfg.P2P.Network = net
		cfg.Stdout = &distBuffer{}
		if seed != "" {
			cfg.Seeds = []string{seed}
		}
		if mod != nil {
			mod(&cfg)
		}
		n, err := Start(context.Background(), cfg)
		require.NoError(t, err, "start %s", name)
		nodes = append(nodes, n)
		if seed == "" {
			seed = n.dist.host.GossipAddr()
		}
	}
	p2ptest.Eventually(t, 60*time.Second, func() bool {
		for _, n := range nodes {
			if len(n.Nodes()) != len(nodes)-1 {
				return false
			}
		}
		return true
	}, "full mesh")
	return nodes
}

func stopSimNodes(nodes []*Node) {
	for _, n := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = n.Stop(ctx)
		cancel()
	}
	// memberlist's probe goroutines end a few fake seconds after Shutdown.
	time.Sleep(10 * time.Second)
}

// Erlang: when a node becomes unreachable, every link and monitor towards
// it fires with reason noconnection — here on a partition, on both sides.
func TestDistPartitionFiresNoConnectionBothSides(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New(p2ptest.WithSeed(1))
		defer net.Close()
		nodes := startSimCluster(t, net, "a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3")
		defer stopSimNodes(nodes)
		a, b, c := nodes[0], nodes[1], nodes[2]

		got := func(n *Node, target Pid) chan []any {
			out := make(chan []any, 1)
			ready := make(chan struct{})
			_, err := n.Spawn(func(p *Process) error {
				p.TrapExit(true)
				p.Link(target)
				p.Monitor(target)
				close(ready)
				return collect(2, out)(p)
			})
			require.NoError(t, err)
			waitFor(t, nil, ready, "ready")
			return out
		}
		idle := func(p *Process) error { <-p.Context().Done(); return nil }
		onB, err := b.Spawn(idle)
		require.NoError(t, err)
		onA, err := a.Spawn(idle)
		require.NoError(t, err)
		onC, err := c.Spawn(idle)
		require.NoError(t, err)
		aWatchesB := got(a, onB)
		bWatchesA := got(b, onA)
		aWatchesC := got(a, onC)
		synctest.Wait()
		p2ptest.Eventually(t, 10*time.Second, func() bool {
			ib, _ := b.ProcessInfo(onB)
			ia, _ := a.ProcessInfo(onA)
			return len(ib.Links) == 1 && len(ia.Links) == 1
		}, "links established")

		net.Partition(a.Name(), b.Name())
		for _, ch := range []chan []any{aWatchesB, bWatchesA} {
			var msgs []any
			select {
			case msgs = <-ch:
			case <-time.After(60 * time.Second):
				t.Fatal("no noconnection within 60 s of the partition")
			}
			for _, m := range msgs {
				switch m := m.(type) {
				case Exit:
					require.ErrorIs(t, m.Reason, ReasonNoConnection)
				case Down:
					require.ErrorIs(t, m.Reason, ReasonNoConnection)
				default:
					t.Fatalf("unexpected %#v", m)
				}
			}
		}
		// c is still reachable from a: its link and monitor did not fire.
		select {
		case m := <-aWatchesC:
			t.Fatalf("a's link to c fired: %v", m)
		default:
		}
		require.Equal(t, []string{c.Name()}, a.Nodes())
		require.Contains(t, c.Nodes(), a.Name())

		// During the split a new monitor towards b fires at once.
		pt := newProcT()
		monitored := make(chan struct{})
		_, err = a.Spawn(func(p *Process) error {
			defer close(monitored)
			ref := p.Monitor(onB)
			m, err := p.Receive(context.Background())
			require.NoError(pt, err)
			require.Equal(pt, Down{Ref: ref, Pid: onB, Reason: ReasonNoConnection}, m)
			return nil
		})
		require.NoError(t, err)
		waitFor(t, pt, monitored, "the new monitor's Down")
		pt.check(t)

		// Heal and rejoin (heal/ will do this by itself): the mesh is back.
		net.Heal()
		require.NoError(t, a.dist.host.Join(context.Background(), []string{b.dist.host.GossipAddr()}))
		p2ptest.Eventually(t, 60*time.Second, func() bool {
			return len(a.Nodes()) == 2 && len(b.Nodes()) == 2
		}, "mesh after heal")
	})
}

// A Call to a process on a partitioned node fails fast with noconnection,
// and a Call that times out on a connected node says the node is up.
func TestDistCallErrorsSayWhy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New(p2ptest.WithSeed(2))
		defer net.Close()
		nodes := startSimCluster(t, net, "a@10.0.0.1", "b@10.0.0.2")
		defer stopSimNodes(nodes)
		a, b := nodes[0], nodes[1]
		slow, err := b.Spawn(func(p *Process) error { <-p.Context().Done(); return nil })
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = a.Call(ctx, slow, "hello")
		cancel()
		require.ErrorIs(t, err, ErrTimeout)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.NotErrorIs(t, err, ErrNoConnection)
		require.Contains(t, err.Error(), "is up")

		net.Isolate(b.Name())
		p2ptest.Eventually(t, 60*time.Second, func() bool { return len(a.Nodes()) == 0 }, "b lost")
		ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
		_, err = a.Call(ctx, slow, "hello")
		cancel()
		var ce *CallError
		require.ErrorAs(t, err, &ce)
		require.ErrorIs(t, err, ReasonNoConnection)
	})
}
