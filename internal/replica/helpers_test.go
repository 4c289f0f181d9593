package replica

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/crdt"
	"github.com/nodal-go/nodal/p2p/p2ptest"
)

const testCookie = "replica-test-cookie"

// member is one node of a test cluster with its replica and what OnChange
// told it.
type member struct {
	n   *nodal.Node
	r   *Replica[string, string]
	mu  sync.Mutex
	evs []Change[string, string]
}

func (m *member) changes() []Change[string, string] {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.evs)
}

// visible returns the visible entries (key -> values), read on the engine.
func (m *member) visible(t *testing.T) map[string][]string {
	out := map[string][]string{}
	require.NoError(t, m.r.Update(context.Background(), func(s *State[string, string]) error {
		for k := range s.Map().All() {
			for _, sib := range s.Siblings(nil, k) {
				out[k] = append(out[k], sib.Value)
			}
		}
		return nil
	}))
	return out
}

// state returns a copy of the CRDT.
func (m *member) state(t *testing.T) *crdt.ORMap[string, string] {
	var c *crdt.ORMap[string, string]
	require.NoError(t, m.r.Update(context.Background(), func(s *State[string, string]) error {
		c = s.Map().Clone()
		return nil
	}))
	return c
}

func (m *member) up(t *testing.T, node string) bool {
	var up bool
	require.NoError(t, m.r.Update(context.Background(), func(s *State[string, string]) error {
		up = s.Up(node)
		return nil
	}))
	return up
}

func (m *member) add(t *testing.T, k, v string) crdt.Dot {
	var d crdt.Dot
	require.NoError(t, m.r.Update(context.Background(), func(s *State[string, string]) error {
		d = s.Add(k, v)
		return nil
	}))
	return d
}

func (m *member) remove(t *testing.T, dots ...crdt.Dot) {
	require.NoError(t, m.r.Update(context.Background(), func(s *State[string, string]) error {
		s.RemoveDots(dots...)
		return nil
	}))
}

type cluster struct {
	t       *testing.T
	net     *p2ptest.Network
	members []*member
	cfg     Config[string, string]
}

func testConfig() Config[string, string] {
	return Config[string, string]{Service: "test", Keys: crdt.StringCodec{}, Values: crdt.StringCodec{}}
}

// startCluster starts nodes on a p2ptest network inside a synctest bubble,
// each with a replica, and waits until every replica sees every other node
// up and serving.
func startCluster(t *testing.T, seed int64, cfg Config[string, string], names ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, net: p2ptest.New(p2ptest.WithSeed(seed)), cfg: cfg}
	for _, name := range names {
		c.start(name)
	}
	c.waitMesh()
	return c
}

func (c *cluster) start(name string) *member {
	c.t.Helper()
	cfg := nodal.DefaultLocalConfig(name, testCookie)
	cfg.P2P.Network = c.net
	for _, m := range c.members {
		if m != nil && m.n != nil {
			cfg.Seeds = []string{m.n.GossipAddr()}
			break
		}
	}
	n, err := nodal.Start(context.Background(), cfg)
	require.NoError(c.t, err, "start %s", name)
	m := &member{n: n}
	rc := c.cfg
	rc.OnChange = func(_ *State[string, string], cs []Change[string, string]) {
		m.mu.Lock()
		m.evs = append(m.evs, cs...)
		m.mu.Unlock()
	}
	m.r, err = New(n, rc)
	require.NoError(c.t, err)
	for i, old := range c.members {
		if old.n.Name() == name {
			c.members[i] = m
			return m
		}
	}
	c.members = append(c.members, m)
	return m
}

// waitMesh waits until every replica has every other one as a peer.
func (c *cluster) waitMesh() {
	c.t.Helper()
	p2ptest.Eventually(c.t, 60*time.Second, func() bool {
		for _, m := range c.members {
			var peers []string
			_ = m.r.Update(context.Background(), func(*State[string, string]) error {
				peers = m.r.peers()
				return nil
			})
			if len(peers) != len(c.members)-1 {
				return false
			}
		}
		return true
	}, "every replica sees every other")
}

func (c *cluster) stop() {
	for _, m := range c.members {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = m.n.Stop(ctx)
		cancel()
	}
	// memberlist's probe goroutines end a few fake seconds after Shutdown.
	time.Sleep(10 * time.Second)
	_ = c.net.Close()
}

// rejoin heals the network and joins every node to the first until the
// mesh is whole again.
func (c *cluster) rejoin() {
	c.t.Helper()
	c.net.Heal()
	p2ptest.Eventually(c.t, 60*time.Second, func() bool {
		ok := true
		for _, m := range c.members[1:] {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = m.n.Join(ctx, c.members[0].n.GossipAddr())
			cancel()
			if len(m.n.Nodes()) != len(c.members)-1 {
				ok = false
			}
		}
		return ok && len(c.members[0].n.Nodes()) == len(c.members)-1
	}, "mesh whole after heal")
	c.waitMesh()
}
