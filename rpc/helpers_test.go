package rpc

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/p2p/p2ptest"
)

const testCookie = "rpc-test-cookie"

// cluster is a few nodes with rpc on a p2ptest network.
type cluster struct {
	t     *testing.T
	net   *p2ptest.Network
	nodes []*nodal.Node
	rpcs  []*RPC
}

// startCluster starts nodes on a p2ptest network (inside a synctest
// bubble), attaches rpc (cfgs[i] for node i when given) and waits for the
// full mesh with rpc advertised everywhere.
func startCluster(t *testing.T, seed int64, names []string, cfgs ...Config) *cluster {
	t.Helper()
	c := &cluster{t: t, net: p2ptest.New(p2ptest.WithSeed(seed))}
	var gossip string
	for i, name := range names {
		cfg := nodal.DefaultLocalConfig(name, testCookie)
		cfg.P2P.Network = c.net
		if gossip != "" {
			cfg.Seeds = []string{gossip}
		}
		n, err := nodal.Start(context.Background(), cfg)
		require.NoError(t, err, "start %s", name)
		if gossip == "" {
			gossip = n.GossipAddr()
		}
		var rc Config
		if i < len(cfgs) {
			rc = cfgs[i]
		}
		r, err := New(n, rc)
		require.NoError(t, err)
		c.nodes = append(c.nodes, n)
		c.rpcs = append(c.rpcs, r)
	}
	p2ptest.Eventually(t, 60*time.Second, func() bool {
		for _, r := range c.rpcs {
			if len(r.Nodes()) != len(names) {
				return false
			}
		}
		return true
	}, "full mesh running rpc")
	return c
}

// stop stops every node and closes the network.
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

// rejoin heals the network and joins a to b until both see each other.
func (c *cluster) rejoin(a, b int) {
	c.net.Heal()
	p2ptest.Eventually(c.t, 60*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = c.nodes[a].Join(ctx, c.nodes[b].GossipAddr())
		return contains(c.nodes[a].Nodes(), c.nodes[b].Name()) && contains(c.nodes[b].Nodes(), c.nodes[a].Name())
	}, "connected again after heal")
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func must(t *testing.T, err error) {
	t.Helper()
	require.NoError(t, err)
}
