package p2p

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nodal-go/nodal/p2p/p2ptest"
	"github.com/stretchr/testify/require"
)

const cookie = "test-cookie-3f9a"

// simNode is one node of an in-process cluster.
type simNode struct {
	*Host
	rec *recorder
}

func simConfig(net *p2ptest.Network, name string, seeds ...string) Config {
	return Config{
		Name:       name,
		Cookie:     cookie,
		ListenAddr: "127.0.0.1:0",
		GossipAddr: "127.0.0.1:0",
		Seeds:      seeds,
		Profile:    ProfileLAN,
		Advanced:   Advanced{Network: net},
	}
}

func startSim(t *testing.T, cfg Config) *simNode {
	t.Helper()
	rec := newRecorder()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := Start(ctx, cfg, rec)
	require.NoError(t, err)
	return &simNode{Host: h, rec: rec}
}

// startCluster starts n nodes "n00@127.0.0.1"... each joining the first.
func startCluster(t *testing.T, net *p2ptest.Network, n int) []*simNode {
	t.Helper()
	var nodes []*simNode
	for i := range n {
		var seeds []string
		if i > 0 {
			seeds = []string{nodes[0].GossipAddr()}
		}
		nodes = append(nodes, startSim(t, simConfig(net, fmt.Sprintf("n%02d@127.0.0.1", i), seeds...)))
	}
	return nodes
}

func names(nodes []*simNode) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Self().Name)
	}
	slices.Sort(out)
	return out
}

// meshed reports whether every node sees every other as member and peer.
func meshed(nodes []*simNode) bool {
	all := names(nodes)
	for _, n := range nodes {
		if !slices.Equal(memberNames(n.Members()), all) {
			return false
		}
		want := slices.DeleteFunc(slices.Clone(all), func(s string) bool { return s == n.Self().Name })
		if !slices.Equal(peerNames(n.Peers()), want) {
			return false
		}
		for _, o := range want {
			if !n.rec.isUp(o) {
				return false
			}
		}
	}
	return true
}

func stopSim(t *testing.T, nodes ...*simNode) {
	t.Helper()
	for _, n := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		require.NoError(t, n.Stop(ctx))
		cancel()
		n.rec.check(t)
	}
}

// settle lets memberlist's leftover probe goroutines finish after
// Shutdown (it does not wait for them) before the bubble ends.
func settle() { time.Sleep(10 * time.Second) }

func TestJoin(t *testing.T) {
	for _, n := range []int{3, 10, 50} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			if n > 10 && raceEnabled {
				t.Skip("the race detector's goroutine limit (8128) is below a 50-node mesh; runs without -race")
			}
			synctest.Test(t, func(t *testing.T) {
				net := p2ptest.New()
				defer net.Close()
				nodes := startCluster(t, net, n)
				took := p2ptest.Eventually(t, 120*time.Second, func() bool { return meshed(nodes) }, "full mesh of %d", n)
				t.Logf("%d nodes meshed after %v of fake time", n, took)
				// Every pair can exchange a frame.
				for _, a := range nodes {
					for _, b := range nodes {
						if a != b {
							require.NoError(t, a.Send(context.Background(), b.Self().Name, []byte(a.Self().Name)))
						}
					}
				}
				p2ptest.Eventually(t, 30*time.Second, func() bool {
					for _, b := range nodes {
						if len(b.rec.snapshot()) < 2*(n-1) {
							return false
						}
					}
					return true
				})
				for _, b := range nodes {
					for _, a := range nodes {
						if a != b {
							require.Equal(t, []string{a.Self().Name}, b.rec.frames(a.Self().Name))
						}
					}
				}
				stopSim(t, nodes...)
				settle()
			})
		})
	}
}
