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
					// Attempts through the lost nodes' last known
					// addresses, the pause doubling from 250 ms up to the
					// 1 s ReconnectInterval and shortened by jitter only
					// (by up to 25 %): 7/8 s on average.
					for _, l := range a.h.View().Unreachable {
						t.Logf("%s: %d attempts, last error %q", l.Node, l.Attempts, l.LastError)
						n := float64(tc.hold) / float64(7*time.Second/8)
						require.InDelta(t, n, l.Attempts, n/6, l.Node)
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

// The reconnect schedule's bound, in the bubble's time: after a split long
// enough for every backoff to reach its cap, the network coming back is
// used within ReconnectInterval (attempts start at most that far apart),
// and whole again within ReconnectInterval plus the reconcile round. A
// node lost beyond ReconnectSlowAfter is tried every ReconnectMaxInterval
// instead (serf's economy), and within that once the network is back.
func TestReconnectWithinInterval(t *testing.T) {
	for _, tc := range []struct {
		name  string
		hold  time.Duration
		bound time.Duration // restored → whole
	}{
		{"fast", 3 * time.Minute, time.Second + 500*time.Millisecond},
		{"slow", 5 * time.Minute, 10*time.Second + 500*time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				net := p2ptest.New(p2ptest.WithSeed(2))
				defer net.Close()
				cfg := Config{ReconnectInterval: time.Second, ReconnectSlowAfter: 4 * time.Minute, ReconnectMaxInterval: 10 * time.Second}
				ms := startCluster(t, net, cfg, nil, "a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3")
				defer stopCluster(ms)
				a, b := ms[0], ms[1]
				net.Split([]string{a.name()}, []string{b.name(), ms[2].name()})
				p2ptest.Eventually(t, 60*time.Second, func() bool {
					return a.h.View().Partitioned && b.h.View().Partitioned
				}, "split seen: %s", views(ms))
				time.Sleep(tc.hold)
				lost := a.h.View().Unreachable
				require.Len(t, lost, 2)
				for _, l := range lost {
					fast := min(tc.hold, cfg.ReconnectSlowAfter)
					min := float64(fast)/float64(cfg.ReconnectInterval) + float64(tc.hold-fast)/float64(cfg.ReconnectMaxInterval)
					t.Logf("%s: %d attempts in %v (at least %.0f)", l.Node, l.Attempts, tc.hold, min)
					require.GreaterOrEqual(t, float64(l.Attempts), min*0.9, "attempts at most an interval apart")
					require.LessOrEqual(t, float64(l.Attempts), min*4/3+10, "no faster than ¾ of the interval")
				}
				net.Heal()
				took := waitWhole(t, ms, 2*time.Minute)
				t.Logf("whole %v after the network came back", took)
				require.LessOrEqual(t, took, tc.bound)
			})
		})
	}
}
