package heal

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// A split heals with no manual join, whether it lasts less than
// memberlist's dead-node gossip window (GossipToTheDeadTime, 15 s with the
// local profile) or far longer; the reconcilers run and Healed reports
// what they moved, the conflict included.
func TestPartitionHealsWithoutJoin(t *testing.T) {
	for _, tc := range []struct {
		name string
		hold time.Duration // how long the split lasts after every side saw it
	}{
		{"short", 0},
		{"long", 5 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				net := p2ptest.New(p2ptest.WithSeed(1))
				defer net.Close()
				ms := startCluster(t, net, Config{ReconnectInterval: time.Second}, nil, "a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3")
				defer stopCluster(ms)
				a, b, c := ms[0], ms[1], ms[2]
				a.set.put("pre", "1")
				p2ptest.Eventually(t, 10*time.Second, func() bool {
					return b.set.snapshot()["pre"] == "1" && c.set.snapshot()["pre"] == "1"
				}, "pre replicated before the split")
				net.Split([]string{a.name()}, []string{b.name(), c.name()})
				p2ptest.Eventually(t, 60*time.Second, func() bool {
					va, vb := a.h.View(), b.h.View()
					return va.Partitioned && len(va.Reachable) == 1 && vb.Partitioned && len(vb.Reachable) == 2
				}, "both sides see the split: %s", views(ms))
				require.Equal(t, []string{b.name(), c.name()}, a.h.View().UnreachableNames())
				require.False(t, a.h.HasMajority())
				require.True(t, b.h.HasMajority())
				a.set.put("dup", "from-a")
				a.set.put("only-a", "x")
				b.set.put("dup", "from-b")
				c.set.put("only-c", "y")
				time.Sleep(tc.hold)
				if tc.hold > 0 {
					// Backoff: attempts every 1 s, doubling to 4 s (±25 %),
					// through the lost nodes' last known addresses.
					for _, l := range a.h.View().Unreachable {
						t.Logf("%s: %d attempts, last error %q", l.Node, l.Attempts, l.LastError)
						n := float64(tc.hold) / float64(4*time.Second)
						require.InDelta(t, n, l.Attempts, n/3, l.Node)
						require.NotEmpty(t, l.LastError)
						require.NotEmpty(t, l.GossipAddr)
						require.False(t, l.Member)
					}
				}

				net.Heal() // and nothing else: heal rejoins
				took := waitWhole(t, ms, 120*time.Second)
				t.Logf("whole again %v after the network healed", took)
				p2ptest.Eventually(t, 30*time.Second, func() bool {
					return len(a.healed()) > 0 && len(b.healed()) > 0
				}, "Healed on both sides")
				waitWhole(t, ms, 30*time.Second) // every round done
				want := map[string]string{"pre": "1", "dup": "from-a", "only-a": "x", "only-c": "y"}
				for _, m := range ms {
					m := m
					p2ptest.Eventually(t, 30*time.Second, func() bool {
						got := m.set.snapshot()
						return len(got) == len(want) && got["dup"] == want["dup"] && got["only-c"] == "y" && got["only-a"] == "x"
					}, "%s converged: %v", m.name(), m.set.snapshot())
				}
				hs := a.healed()
				var returned []string
				for _, h := range hs {
					returned = append(returned, h.Returned...)
				}
				require.ElementsMatch(t, []string{b.name(), c.name()}, returned)
				require.Empty(t, hs[len(hs)-1].StillMissing)
				ha := hs[0]
				for _, h := range hs[1:] {
					ha.Exchange = ha.Exchange.Add(h.Exchange)
					ha.Reconcilers[0].Exchange = ha.Reconcilers[0].Exchange.Add(h.Reconcilers[0].Exchange)
				}
				require.Len(t, ha.Reconcilers, 1)
				require.Equal(t, "set", ha.Reconcilers[0].Name)
				require.NoError(t, ha.Reconcilers[0].Err)
				require.Equal(t, ha.Reconcilers[0].Exchange, ha.Exchange)
				require.Positive(t, ha.Exchange.Bytes)
				// a took only-c and kept its own dup (the smaller value): one
				// entry, and a conflict with each of b and c that still held
				// b's dup. b took only-a and a's dup (a conflict), once.
				require.Equal(t, uint64(1), ha.Exchange.Entries)
				require.LessOrEqual(t, ha.Exchange.Conflicts, uint64(2))
				var hb Exchange
				for _, h := range b.healed() {
					hb = hb.Add(h.Exchange)
				}
				require.Equal(t, uint64(2), hb.Entries)
				require.Contains(t, []uint64{1, 2}, hb.Conflicts)
				require.GreaterOrEqual(t, ha.Lasted, tc.hold)
				require.Positive(t, a.set.syncCount())
			})
		})
	}
}
