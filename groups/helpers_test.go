package groups

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/p2p/p2ptest"
)

const testCookie = "groups-test-cookie"

// cluster is a few nodes running one scope on a p2ptest network.
type cluster struct {
	t      *testing.T
	net    *p2ptest.Network
	nodes  []*nodal.Node
	scopes []*Scope
	cfg    Config
}

// startCluster starts nodes on a p2ptest network (inside a synctest bubble
// or not), runs the scope cfg on each and waits for the full mesh with
// the scope advertised everywhere.
func startCluster(t *testing.T, seed int64, cfg Config, names ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, net: p2ptest.New(p2ptest.WithSeed(seed)), cfg: cfg}
	for _, name := range names {
		c.start(name)
	}
	c.waitMesh()
	return c
}

// start starts one more node and its scope; it joins the first node.
func (c *cluster) start(name string) (*nodal.Node, *Scope) {
	c.t.Helper()
	cfg := nodal.DefaultLocalConfig(name, testCookie)
	cfg.P2P.Network = c.net
	if len(c.nodes) > 0 {
		cfg.Seeds = []string{c.nodes[0].GossipAddr()}
	}
	n, err := nodal.Start(context.Background(), cfg)
	require.NoError(c.t, err, "start %s", name)
	s, err := New(n, c.cfg)
	require.NoError(c.t, err)
	c.nodes = append(c.nodes, n)
	c.scopes = append(c.scopes, s)
	return n, s
}

// waitMesh waits until every running node sees every other one running the
// scope.
func (c *cluster) waitMesh() {
	c.t.Helper()
	p2ptest.Eventually(c.t, 60*time.Second, func() bool {
		for i, n := range c.nodes {
			if c.scopes[i] == nil {
				continue
			}
			up := 0
			for _, m := range n.Members() {
				if slices.Contains(m.Services, c.scopes[i].name) && slices.Contains(n.Nodes(), m.Name) {
					up++
				}
			}
			if up != c.running()-1 {
				return false
			}
		}
		return true
	}, "full mesh running the scope")
}

func (c *cluster) running() int {
	k := 0
	for _, s := range c.scopes {
		if s != nil {
			k++
		}
	}
	return k
}

// stop stops every node and closes the network.
func (c *cluster) stop() {
	for _, n := range c.nodes {
		if n == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = n.Stop(ctx)
		cancel()
	}
	// memberlist's probe goroutines end a few fake seconds after Shutdown.
	time.Sleep(10 * time.Second)
	_ = c.net.Close()
}

// rejoin heals the network and joins node a to node b until they see each
// other again.
func (c *cluster) rejoin(a, b int) {
	c.t.Helper()
	p2ptest.Eventually(c.t, 60*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = c.nodes[a].Join(ctx, c.nodes[b].GossipAddr())
		return slices.Contains(c.nodes[a].Nodes(), c.nodes[b].Name()) && slices.Contains(c.nodes[b].Nodes(), c.nodes[a].Name())
	}, "connected again after heal")
}

// idle spawns a process on n that waits until it is killed.
func idle(t *testing.T, n *nodal.Node) nodal.Pid {
	t.Helper()
	pid, err := n.Spawn(func(p *nodal.Process) error {
		_, err := p.ReceiveMatch(context.Background(), func(any) bool { return false })
		return err
	})
	require.NoError(t, err)
	return pid
}

// eventually waits for cond on fake (or real) time.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	p2ptest.Eventually(t, 60*time.Second, cond, what)
}

func pids(ps ...nodal.Pid) []nodal.Pid { return ps }

func sortedPids(ps ...nodal.Pid) []nodal.Pid {
	out := slices.Clone(ps)
	slices.SortFunc(out, nodal.Pid.Compare)
	return out
}

func equalPids(a, b []nodal.Pid) bool { return slices.Equal(a, b) }

// drain returns the events in m's buffer now.
func drain(m *Monitor) []Event {
	var out []Event
	for {
		select {
		case ev, ok := <-m.Events():
			if !ok {
				return out
			}
			out = append(out, ev)
		default:
			return out
		}
	}
}
