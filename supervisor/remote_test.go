package supervisor

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// startSimCluster starts nodes on a p2ptest network (inside a synctest
// bubble), or on loopback when net is nil, and waits for the full mesh.
func startSimCluster(t *testing.T, net *p2ptest.Network, names ...string) []*nodal.Node {
	t.Helper()
	var nodes []*nodal.Node
	var seed string
	for _, name := range names {
		cfg := nodal.DefaultLocalConfig(name, testCookie)
		if net != nil {
			cfg.P2P.Network = net
		}
		cfg.Stdout = io.Discard
		if seed != "" {
			cfg.Seeds = []string{seed}
		}
		n, err := nodal.Start(context.Background(), cfg)
		require.NoError(t, err, "start %s", name)
		nodes = append(nodes, n)
		if seed == "" {
			seed = n.GossipAddr()
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

func stopSimNodes(nodes []*nodal.Node) {
	for _, n := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = n.Stop(ctx)
		cancel()
	}
	// memberlist's probe goroutines end a few fake seconds after Shutdown.
	time.Sleep(10 * time.Second)
}

// census counts the running instances of remote workers, by id, across
// the in-process cluster: the test's view of "no process is doubled".
type census struct {
	mu      sync.Mutex
	running map[string][]nodal.Pid
	exits   map[nodal.Pid]error // trapped exit signals, by receiver
}

func newCensus() *census {
	return &census{running: map[string][]nodal.Pid{}, exits: map[nodal.Pid]error{}}
}

func (c *census) in(id string, pid nodal.Pid) {
	c.mu.Lock()
	c.running[id] = append(c.running[id], pid)
	c.mu.Unlock()
}

func (c *census) out(id string, pid nodal.Pid) {
	c.mu.Lock()
	c.running[id] = slices.DeleteFunc(c.running[id], func(p nodal.Pid) bool { return p == pid })
	c.mu.Unlock()
}

func (c *census) of(id string) []nodal.Pid {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.running[id])
}

func (c *census) trapped(pid nodal.Pid) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.exits[pid]
}

// behaviour is a remote worker: its args is its id. With trap it traps
// exits and records each Exit it gets, living on; without, an exit signal
// kills it. It exits with an error on "crash" and normally on "normal".
func (c *census) behaviour(trap bool) nodal.Behaviour {
	return func(p *nodal.Process, args any) error {
		id := args.(string)
		if trap {
			p.TrapExit(true)
		}
		c.in(id, p.Self())
		defer c.out(id, p.Self())
		for {
			m, err := p.Receive(p.Context())
			if err != nil {
				return err
			}
			switch m := m.(type) {
			case nodal.Exit:
				c.mu.Lock()
				c.exits[p.Self()] = m.Reason
				c.mu.Unlock()
			case string:
				switch m {
				case "crash":
					return errors.New(id + " crashed")
				case "normal":
					return nil
				}
			}
		}
	}
}

func registerEverywhere(t *testing.T, nodes []*nodal.Node, name string, b nodal.Behaviour) {
	t.Helper()
	for _, n := range nodes {
		require.NoError(t, n.RegisterBehaviour(name, b))
	}
}

// startTrio starts a, b and c on a p2ptest network with seed and
// registers the census behaviour as name on each.
func startTrio(t *testing.T, seed int64, name string, trap bool) (*p2ptest.Network, []*nodal.Node, *census) {
	t.Helper()
	net := p2ptest.New(p2ptest.WithSeed(seed))
	nodes := startSimCluster(t, net, "a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3")
	cs := newCensus()
	registerEverywhere(t, nodes, name, cs.behaviour(trap))
	return net, nodes, cs
}

func stopTrio(net *p2ptest.Network, nodes []*nodal.Node) {
	stopSimNodes(nodes)
	_ = net.Close()
}

func childOn(t *testing.T, n *nodal.Node, sup nodal.Pid, id string) nodal.Pid {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kids, err := WhichChildren(ctx, n, sup)
	require.NoError(t, err)
	for _, k := range kids {
		if k.ID == id {
			return k.Pid
		}
	}
	return nodal.Pid{}
}

// A child started on another node (OTP start_worker(Node)) runs there,
// linked to the supervisor, and is restarted there by its restart type
// when it dies: a permanent child after a crash, a transient one only
// after an abnormal exit, a temporary one never.
func TestRemoteChildRestartedByRestartType(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New(p2ptest.WithSeed(11))
		defer net.Close()
		nodes := startSimCluster(t, net, "a@10.0.0.1", "b@10.0.0.2")
		defer stopSimNodes(nodes)
		a, b := nodes[0], nodes[1]
		cs := newCensus()
		registerEverywhere(t, nodes, "worker", cs.behaviour(false))

		transient := Remote("transient", b.Name(), "worker", "transient")
		transient.Restart = Transient
		temporary := Remote("temporary", b.Name(), "worker", "temporary")
		temporary.Restart = Temporary
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sup, err := Start(ctx, a, Spec{Intensity: 10, Children: []Child{
			Remote("permanent", b.Name(), "worker", "permanent"), transient, temporary,
		}})
		require.NoError(t, err)

		for _, id := range []string{"permanent", "transient", "temporary"} {
			pid := childOn(t, a, sup, id)
			require.Equal(t, b.Name(), pid.Node, id)
			// The census hears of a child once its goroutine has started,
			// after the spawn returned.
			p2ptest.Eventually(t, 10*time.Second, func() bool { return len(cs.of(id)) > 0 }, "%s started", id)
			require.Equal(t, []nodal.Pid{pid}, cs.of(id), "%s runs once, on b", id)
			info, err := b.ProcessInfo(pid)
			require.NoError(t, err)
			require.Contains(t, info.Links, sup, "%s is linked to its supervisor", id)
		}

		// Permanent: a crash is followed by a restart on b.
		old := childOn(t, a, sup, "permanent")
		require.NoError(t, b.Send(old, "crash"))
		p2ptest.Eventually(t, 10*time.Second, func() bool {
			pid := childOn(t, a, sup, "permanent")
			return !pid.IsZero() && pid != old && slices.Equal(cs.of("permanent"), []nodal.Pid{pid})
		}, "permanent restarted")
		require.Equal(t, b.Name(), childOn(t, a, sup, "permanent").Node)

		// Transient: a normal exit is final, a crash is not.
		old = childOn(t, a, sup, "transient")
		require.NoError(t, b.Send(old, "crash"))
		p2ptest.Eventually(t, 10*time.Second, func() bool {
			pid := childOn(t, a, sup, "transient")
			return !pid.IsZero() && pid != old
		}, "transient restarted after a crash")
		require.NoError(t, b.Send(childOn(t, a, sup, "transient"), "normal"))
		p2ptest.Eventually(t, 10*time.Second, func() bool {
			return childOn(t, a, sup, "transient").IsZero() && len(cs.of("transient")) == 0
		}, "transient not restarted after a normal exit")

		// Temporary: forgotten after a crash.
		require.NoError(t, b.Send(childOn(t, a, sup, "temporary"), "crash"))
		p2ptest.Eventually(t, 10*time.Second, func() bool {
			kids, err := WhichChildren(ctx, a, sup)
			return err == nil && !slices.ContainsFunc(kids, func(k ChildInfo) bool { return k.ID == "temporary" })
		}, "temporary forgotten")
		require.Empty(t, cs.of("temporary"))

		require.NoError(t, Stop(ctx, a, sup))
		p2ptest.Eventually(t, 10*time.Second, func() bool { return len(cs.of("permanent")) == 0 },
			"stopping the supervisor stops its remote children") // once their deferred outs ran
	})
}

// When a remote child's node is lost, the child's exit reason is
// noconnection: a permanent child is restarted, here on the next node of
// its Failover list since its own is not connected, and a temporary one is
// forgotten. The lost child does not trap exits, so it died on its own
// node when the link broke there too: no process runs twice, at any
// moment once the loss is seen.
func TestRemoteChildNodeLostFailsOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, nodes, cs := startTrio(t, 12, "worker", false)
		defer stopTrio(net, nodes)
		a, b, c := nodes[0], nodes[1], nodes[2]

		temporary := Remote("temporary", b.Name(), "worker", "temporary")
		temporary.Restart = Temporary
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sup, err := Start(ctx, a, Spec{Intensity: 10, Children: []Child{
			Remote("w", b.Name(), "worker", "w", Failover(c.Name())), temporary,
		}})
		require.NoError(t, err)
		old := childOn(t, a, sup, "w")
		require.Equal(t, b.Name(), old.Node, "its own node first")

		net.Partition(a.Name(), b.Name())
		p2ptest.Eventually(t, 60*time.Second, func() bool {
			return childOn(t, a, sup, "w").Node == c.Name()
		}, "w restarted on c")
		p2ptest.Eventually(t, 60*time.Second, func() bool {
			// Dead for the runtime at once; the census hears of it once the
			// goroutine has run its deferred out, and of the replacement
			// once its goroutine started.
			return !alive(b, old) && !slices.Contains(cs.of("w"), old) && len(cs.of("temporary")) == 0 &&
				slices.Contains(cs.of("w"), childOn(t, a, sup, "w"))
		}, "the children on b died with the broken links")
		require.Equal(t, []nodal.Pid{childOn(t, a, sup, "w")}, cs.of("w"), "w runs once")
		kids, err := WhichChildren(ctx, a, sup)
		require.NoError(t, err)
		require.Len(t, kids, 1, "the temporary child is forgotten")
	})
}

// A lost remote child that traps exits lives on, cut off from the
// supervisor, while its replacement runs elsewhere. When its node
// connects again the supervisor kills it, so the cluster ends with one
// instance.
func TestRemoteTrappingOrphanKilledOnReconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, nodes, cs := startTrio(t, 13, "trapper", true)
		defer stopTrio(net, nodes)
		a, b, c := nodes[0], nodes[1], nodes[2]

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sup, err := Start(ctx, a, Spec{Intensity: 10, Children: []Child{
			Remote("w", b.Name(), "trapper", "w", Failover(c.Name())),
		}})
		require.NoError(t, err)
		orphan := childOn(t, a, sup, "w")
		require.Equal(t, b.Name(), orphan.Node)

		net.Partition(a.Name(), b.Name())
		p2ptest.Eventually(t, 60*time.Second, func() bool {
			return childOn(t, a, sup, "w").Node == c.Name()
		}, "w restarted on c")
		p2ptest.Eventually(t, 60*time.Second, func() bool {
			return errors.Is(cs.trapped(orphan), nodal.ReasonNoConnection)
		}, "the orphan trapped noconnection")
		require.True(t, alive(b, orphan), "a trapping orphan lives on during the split")
		p2ptest.Eventually(t, 10*time.Second, func() bool { return len(cs.of("w")) == 2 },
			"the orphan and its replacement both run") // the replacement's census once it started

		net.Heal()
		p2ptest.Eventually(t, 60*time.Second, func() bool {
			cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer ccancel()
			return a.Connect(cctx, b.Name()) == nil
		}, "a and b connected again")
		p2ptest.Eventually(t, 60*time.Second, func() bool {
			return !alive(b, orphan) && !slices.Contains(cs.of("w"), orphan) // its deferred out ran
		}, "the orphan killed")
		replacement := childOn(t, a, sup, "w")
		require.Equal(t, c.Name(), replacement.Node, "the replacement stays where it runs")
		require.Equal(t, []nodal.Pid{replacement}, cs.of("w"), "one instance")
	})
}
