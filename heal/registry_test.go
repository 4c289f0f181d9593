package heal_test

import (
	"context"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/heal"
	"github.com/nodal-go/nodal/p2p/p2ptest"
	"github.com/nodal-go/nodal/registry"
)

// The global registry behind CountedSync, the thin adapter: the same name
// registered on both sides of a long split resolves to one owner on every
// node after heal rejoins the sides, and Healed reports the registry's
// figures.
func TestRegistryReconciledOnHeal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New(p2ptest.WithSeed(12))
		defer net.Close()
		type node struct {
			n   *nodal.Node
			reg *registry.Registry
			h   *heal.Heal
			sub *heal.Subscription
		}
		var ns []node
		var seeds []string
		for _, name := range []string{"a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3"} {
			cfg := nodal.DefaultLocalConfig(name, "registry-heal-cookie")
			cfg.P2P.Network, cfg.Stdout, cfg.Seeds = net, io.Discard, seeds
			n, err := nodal.Start(context.Background(), cfg)
			require.NoError(t, err)
			reg, err := registry.New(n, registry.Config{})
			require.NoError(t, err)
			h, err := heal.New(n, heal.Config{ReconnectInterval: time.Second})
			require.NoError(t, err)
			require.NoError(t, h.AddReconciler("registry", heal.CountedSync(reg.Sync, func(peers []string) heal.Exchange {
				return heal.Exchange(reg.ExchangedSinceUp(peers...))
			})))
			ns = append(ns, node{n, reg, h, h.Subscribe(256)})
			if seeds == nil {
				seeds = []string{n.GossipAddr()}
			}
		}
		defer func() {
			for _, x := range ns {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_ = x.n.Stop(ctx)
				cancel()
			}
			time.Sleep(10 * time.Second)
		}()
		whole := func() bool {
			for _, x := range ns {
				if v := x.h.View(); len(v.Reachable) != 3 || v.Partitioned || v.Syncing {
					return false
				}
			}
			return true
		}
		p2ptest.Eventually(t, 60*time.Second, whole, "whole")
		idle := func(p *nodal.Process) error { <-p.Context().Done(); return nil }
		net.Split([]string{"a@10.0.0.1"}, []string{"b@10.0.0.2", "c@10.0.0.3"})
		p2ptest.Eventually(t, 60*time.Second, func() bool {
			return len(ns[0].h.View().Reachable) == 1 && len(ns[1].h.View().Reachable) == 2
		}, "split")
		ctx := context.Background()
		for _, x := range ns[:2] {
			pid, err := x.n.Spawn(idle)
			require.NoError(t, err)
			require.NoError(t, x.reg.Register(ctx, "dup", pid), "each side takes the name")
		}
		time.Sleep(3 * time.Minute) // far beyond memberlist's dead-node window
		net.Heal()
		p2ptest.Eventually(t, 90*time.Second, whole, "whole again, no join")
		var owner nodal.Pid
		p2ptest.Eventually(t, 60*time.Second, func() bool {
			var seen []nodal.Pid
			for _, x := range ns {
				pid, ok := x.reg.Whereis("dup")
				if !ok {
					return false
				}
				seen = append(seen, pid)
			}
			owner = seen[0]
			return seen[0] == seen[1] && seen[1] == seen[2]
		}, "one owner of dup everywhere")
		require.Contains(t, []string{"a@10.0.0.1", "b@10.0.0.2"}, owner.Node)
		// Sum a node's Healed events until every node in want has returned
		// and none is missing: b and c may return to a one at a time (one
		// Healed each; the first may list only one of them even with none
		// missing, the other back during its round).
		healedUntil := func(x node, want ...string) heal.Exchange {
			var sum heal.Exchange
			back := map[string]bool{}
			for ev := range x.sub.Events() {
				h, ok := ev.(heal.Healed)
				if !ok {
					continue
				}
				require.Equal(t, "registry", h.Reconcilers[0].Name)
				require.NoError(t, h.Reconcilers[0].Err)
				sum = sum.Add(h.Exchange)
				for _, r := range h.Returned {
					back[r] = true
				}
				all := len(h.StillMissing) == 0
				for _, w := range want {
					all = all && back[w]
				}
				if all {
					break
				}
			}
			return sum
		}
		onA := healedUntil(ns[0], "b@10.0.0.2", "c@10.0.0.3")
		require.Positive(t, onA.Bytes, "the registry's sync moved bytes")
		// a's claim wins (the lower node name) and stays; b's loses and b
		// withdraws it, possibly before a's sync with b or c, so a need not
		// take in a live claim. b and c must take in a's: it exists only on
		// a, so at least one of them takes it from a itself (the other may
		// take it from its own side, which its exchange with a does not
		// count).
		fromA := healedUntil(ns[1], "a@10.0.0.1").Add(healedUntil(ns[2], "a@10.0.0.1"))
		require.Positive(t, fromA.Entries, "the other side took in a's claim")
	})
}
