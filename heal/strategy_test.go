package heal

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// Each strategy on 2/3, 1/4 and 2/2 splits: which side survives. Nodes are
// n1..nK; n1 is the oldest (started first) and sorts first.
func TestDecide(t *testing.T) {
	nodes := func(k int) []string {
		var out []string
		for i := 1; i <= k; i++ {
			out = append(out, fmt.Sprintf("n%d@h", i))
		}
		return out
	}
	splits := []struct {
		name string
		all  int
		a    []int // side A's nodes (1-based); side B is the rest
	}{
		{"2/3", 5, []int{1, 2}},
		{"3/2", 5, []int{3, 4, 5}}, // the same split, the oldest on the minority
		{"1/4", 5, []int{1}},
		{"4/1", 5, []int{2, 3, 4, 5}},
		{"2/2", 4, []int{1, 2}},
	}
	cases := []struct {
		s       Strategy
		quorum  int
		referee string
		alone   bool
		// want: split name -> does side A survive, does side B survive
		want map[string][2]bool
	}{
		{s: StrategyKeepMajority, want: map[string][2]bool{"2/3": {false, true}, "3/2": {true, false}, "1/4": {false, true}, "4/1": {true, false}, "2/2": {true, false}}},
		{s: StrategyStaticQuorum, quorum: 3, want: map[string][2]bool{"2/3": {false, true}, "3/2": {true, false}, "1/4": {false, true}, "4/1": {true, false}, "2/2": {false, false}}},
		{s: StrategyStaticQuorum, quorum: 2, want: map[string][2]bool{"2/2": {true, true}, "1/4": {false, true}}},
		{s: StrategyKeepOldest, want: map[string][2]bool{"2/3": {true, false}, "3/2": {false, true}, "1/4": {true, false}, "4/1": {false, true}, "2/2": {true, false}}},
		{s: StrategyKeepOldest, alone: true, want: map[string][2]bool{"1/4": {false, true}, "4/1": {true, false}, "2/3": {true, false}, "2/2": {true, false}}},
		{s: StrategyKeepReferee, referee: "n3@h", want: map[string][2]bool{"2/3": {false, true}, "3/2": {true, false}, "1/4": {false, true}, "2/2": {false, true}}},
		{s: StrategyDownAll, want: map[string][2]bool{"2/3": {false, false}, "1/4": {false, false}, "2/2": {false, false}}},
		{s: StrategyNone, want: map[string][2]bool{"2/3": {true, true}, "1/4": {true, true}, "2/2": {true, true}}},
	}
	for _, tc := range cases {
		for _, sp := range splits {
			want, ok := tc.want[sp.name]
			if !ok {
				continue
			}
			t.Run(fmt.Sprintf("%v-q%d-alone%v/%s", tc.s, tc.quorum, tc.alone, sp.name), func(t *testing.T) {
				all := nodes(sp.all)
				started := map[string]int64{}
				for i, n := range all {
					started[n] = int64(100 + i)
				}
				onA := map[string]bool{}
				for _, i := range sp.a {
					onA[all[i-1]] = true
				}
				sideOf := func(a bool) side {
					r := map[string]bool{}
					for _, n := range all {
						if onA[n] == a {
							r[n] = true
						}
					}
					return side{strategy: tc.s, quorum: tc.quorum, referee: tc.referee, downIfAlone: tc.alone,
						expected: all, reachable: r, started: started}
				}
				sa, ra := decide(sideOf(true))
				sb, rb := decide(sideOf(false))
				require.Equal(t, want, [2]bool{sa, sb}, "A: %s; B: %s", ra, rb)
			})
		}
	}
}

// The strategies in a cluster: after a split settles, the losing side's
// nodes pause (or stop, or call the hook) and the winners go on; after
// the heal the paused ones resume.
func TestStrategyInCluster(t *testing.T) {
	for _, tc := range []struct {
		name   string
		nodes  int
		sideA  int // the first sideA nodes are cut from the rest
		cfg    Config
		losers []int // node indexes that lose
	}{
		{"keep-majority 2/3", 5, 2, Config{Strategy: StrategyKeepMajority}, []int{0, 1}},
		{"keep-majority 1/4", 5, 1, Config{Strategy: StrategyKeepMajority}, []int{0}},
		{"keep-majority 2/2", 4, 2, Config{Strategy: StrategyKeepMajority}, []int{2, 3}},
		{"static-quorum 3 of 4, 2/2", 4, 2, Config{Strategy: StrategyStaticQuorum, QuorumSize: 3}, []int{0, 1, 2, 3}},
		{"keep-oldest 2/2", 4, 2, Config{Strategy: StrategyKeepOldest}, []int{2, 3}},
		{"keep-referee 2/3", 5, 2, Config{Strategy: StrategyKeepReferee, Referee: "n1@10.0.0.1"}, []int{2, 3, 4}},
		{"down-all 1/4", 5, 1, Config{Strategy: StrategyDownAll}, []int{0, 1, 2, 3, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				net := p2ptest.New(p2ptest.WithSeed(6))
				defer net.Close()
				var names []string
				for i := range tc.nodes {
					names = append(names, fmt.Sprintf("n%d@10.0.0.%d", i+1, i+1))
				}
				cfg := tc.cfg
				cfg.Expected = names
				cfg.ReconnectInterval = time.Second
				cfg.StableAfter = 3 * time.Second
				ms := startCluster(t, net, cfg, nil, names...)
				defer stopCluster(ms)
				for _, m := range ms {
					require.False(t, m.h.Paused())
				}
				net.Split(names[:tc.sideA], names[tc.sideA:])
				p2ptest.Eventually(t, 90*time.Second, func() bool {
					for _, m := range ms {
						if v := m.h.View(); v.Decision == nil {
							return false
						}
					}
					return true
				}, "every node decided: %s", views(ms))
				for i, m := range ms {
					lose := slices.Contains(tc.losers, i)
					v := m.h.View()
					require.Equal(t, !lose, v.Decision.Survive, "%s: %v", m.name(), v.Decision)
					require.Equal(t, lose, m.h.Paused(), m.name())
				}
				net.Heal()
				waitWhole(t, ms, 90*time.Second)
				for _, m := range ms {
					require.False(t, m.h.Paused(), "%s resumed", m.name())
					require.Nil(t, m.h.View().Decision)
				}
				for _, i := range tc.losers {
					require.Positive(t, ms[i].count(func(ev Event) bool { _, ok := ev.(Resumed); return ok }), "Resumed on %s", ms[i].name())
				}
			})
		})
	}
}

// ActionHook calls OnLose on the losing side only; ActionStop stops the
// losing node.
func TestLosingActions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New(p2ptest.WithSeed(7))
		defer net.Close()
		names := []string{"a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3"}
		var hooked [3]atomic.Int32
		ms := startCluster(t, net, Config{Expected: names, Strategy: StrategyKeepMajority, ReconnectInterval: time.Second, StableAfter: 2 * time.Second},
			func(i int, c *Config) {
				switch i {
				case 0:
					c.Action = ActionStop
				default:
					c.Action = ActionHook
				}
				c.OnLose = func(Decision) { hooked[i].Add(1) }
			}, names...)
		defer stopCluster(ms)
		net.Isolate(names[0])
		p2ptest.Eventually(t, 90*time.Second, func() bool { return hooked[0].Load() == 1 }, "a's hook")
		p2ptest.Eventually(t, 30*time.Second, func() bool {
			select {
			case <-ms[0].n.Done():
				return true
			default:
				return false
			}
		}, "a stopped itself")
		require.Zero(t, hooked[1].Load()+hooked[2].Load(), "the majority side lost nothing")
		net.Heal()
		net.Isolate(names[1]) // b alone now: its hook runs, it keeps running
		p2ptest.Eventually(t, 90*time.Second, func() bool { return hooked[1].Load() == 1 }, "b's hook")
		require.False(t, ms[1].h.Paused(), "ActionHook does not pause")
	})
}
