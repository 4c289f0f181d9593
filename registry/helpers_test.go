package registry

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/internal/replica"
	"github.com/nodal-go/nodal/p2p/p2ptest"
)

const testCookie = "registry-test-cookie"

type cluster struct {
	t     *testing.T
	net   *p2ptest.Network
	nodes []*nodal.Node
	regs  []*Registry
	cfg   Config
}

// startCluster starts nodes on a p2ptest network (inside a synctest bubble),
// each with a registry, and waits until every registry has every other as
// a peer.
func startCluster(t *testing.T, seed int64, cfg Config, names ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, net: p2ptest.New(p2ptest.WithSeed(seed)), cfg: cfg}
	for _, name := range names {
		c.start(name)
	}
	c.waitMesh()
	return c
}

// start starts (or restarts) a node with its registry, joined to the
// first other node.
func (c *cluster) start(name string) int { return c.startWith(name, true) }

// startAlone is start without a seed (rejoin joins it).
func (c *cluster) startAlone(name string) int { return c.startWith(name, false) }

func (c *cluster) startWith(name string, seed bool) int {
	c.t.Helper()
	cfg := nodal.DefaultLocalConfig(name, testCookie)
	cfg.P2P.Network = c.net
	for _, n := range c.nodes {
		if seed && n.Name() != name {
			cfg.Seeds = []string{n.GossipAddr()}
			break
		}
	}
	n, err := nodal.Start(context.Background(), cfg)
	require.NoError(c.t, err, "start %s", name)
	r, err := New(n, c.cfg)
	require.NoError(c.t, err)
	for i, old := range c.nodes {
		if old.Name() == name {
			c.nodes[i], c.regs[i] = n, r
			return i
		}
	}
	c.nodes = append(c.nodes, n)
	c.regs = append(c.regs, r)
	return len(c.nodes) - 1
}

func (c *cluster) waitMesh() {
	c.t.Helper()
	p2ptest.Eventually(c.t, 60*time.Second, func() bool {
		for _, r := range c.regs {
			if len(r.rep.Peers()) != len(c.regs)-1 {
				return false
			}
		}
		return true
	}, "every registry sees every other")
}

func (c *cluster) stop() {
	for _, n := range c.nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = n.Stop(ctx)
		cancel()
	}
	// memberlist's probe goroutines end a few fake seconds after Shutdown.
	time.Sleep(10 * time.Second)
	_ = c.net.Close()
}

// rejoin heals the network and joins every node to the first until the
// mesh is whole.
func (c *cluster) rejoin() {
	c.t.Helper()
	c.net.Heal()
	p2ptest.Eventually(c.t, 60*time.Second, func() bool {
		ok := true
		for _, n := range c.nodes[1:] {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = n.Join(ctx, c.nodes[0].GossipAddr())
			cancel()
			if len(n.Nodes()) != len(c.nodes)-1 {
				ok = false
			}
		}
		return ok && len(c.nodes[0].Nodes()) == len(c.nodes)-1
	}, "mesh whole after heal")
	c.waitMesh()
}

// syncAll runs Sync on every registry.
func (c *cluster) syncAll() {
	c.t.Helper()
	for _, r := range c.regs {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		require.NoError(c.t, r.Sync(ctx))
		cancel()
	}
}

// idle spawns a process that waits until killed; with trap, it traps exits
// and reports them on exits.
func idle(t *testing.T, n *nodal.Node) nodal.Pid {
	t.Helper()
	pid, err := n.Spawn(func(p *nodal.Process) error {
		<-p.Context().Done()
		return nil
	})
	require.NoError(t, err)
	return pid
}

// alive reports whether pid is a live process of its node n.
func alive(n *nodal.Node, pid nodal.Pid) bool {
	_, err := n.ProcessInfo(pid)
	return err == nil
}

func ctx10(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

type replicaState = replica.State[string, heldClaim]
