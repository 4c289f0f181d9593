package registry

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// claimant is a process that traps exits and reports what it receives.
type claimant struct {
	pid  nodal.Pid
	msgs chan any
}

func spawnClaimant(t *testing.T, n *nodal.Node) *claimant {
	t.Helper()
	c := &claimant{msgs: make(chan any, 16)}
	pid, err := n.Spawn(func(p *nodal.Process) error {
		p.TrapExit(true)
		for {
			m, err := p.Receive(p.Context())
			if err != nil {
				return nil
			}
			c.msgs <- m
			if e, ok := m.(nodal.Exit); ok {
				return e.Reason // it handed over its state; now it goes
			}
		}
	})
	require.NoError(t, err)
	c.pid = pid
	return c
}

func (c *cluster) split(a, b []int) {
	c.t.Helper()
	var ga, gb []string
	for _, i := range a {
		ga = append(ga, c.nodes[i].Name())
	}
	for _, i := range b {
		gb = append(gb, c.nodes[i].Name())
	}
	c.net.Split(ga, gb)
	p2ptest.Eventually(c.t, 60*time.Second, func() bool {
		for _, i := range a {
			for _, p := range c.regs[i].rep.Peers() {
				for _, j := range b {
					if p == c.nodes[j].Name() {
						return false
					}
				}
			}
		}
		for _, j := range b {
			for _, p := range c.regs[j].rep.Peers() {
				for _, i := range a {
					if p == c.nodes[i].Name() {
						return false
					}
				}
			}
		}
		return true
	}, "split seen by both sides")
}

// §9.11: two nodes split, the same name registered on both sides, heal:
// one winner everywhere, the loser handled by the policy, unconflicted
// names kept, monitors told of the conflict.
func TestTwoNodeSplitConflict(t *testing.T) {
	for _, tc := range []struct {
		resolver  string
		bFirst    bool // b registers before a (older)
		winner    string
		loserExit bool
		noWinner  bool
		failures  bool
	}{
		{resolver: LowerNodeExit, winner: "a", loserExit: true},
		{resolver: LowerNodeNotify, winner: "a"},
		{resolver: NotifyAll, noWinner: true},
		{resolver: KeepOldest, bFirst: true, winner: "b", loserExit: true},
		{resolver: KeepNewest, bFirst: true, winner: "a", loserExit: true},
		{resolver: "panics", winner: "a", loserExit: true, failures: true},
	} {
		t.Run(tc.resolver, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := Config{Resolvers: map[string]ResolveFunc{"panics": func(string, []Registration) Resolution { panic("boom") }}}
				c := startCluster(t, 10, cfg, "a@10.0.0.1", "b@10.0.0.2")
				defer c.stop()
				_, wb, err := c.regs[1].Monitor(ctx10(t))
				require.NoError(t, err)
				c.split([]int{0}, []int{1})
				ca, cb := spawnClaimant(t, c.nodes[0]), spawnClaimant(t, c.nodes[1])
				first, second := 0, 1
				if tc.bFirst {
					first, second = 1, 0
				}
				claim := []*claimant{ca, cb}
				require.NoError(t, c.regs[first].Register(ctx10(t), "dup", claim[first].pid, WithResolver(tc.resolver)))
				time.Sleep(time.Millisecond) // a later registration time on the owner's clock
				require.NoError(t, c.regs[second].Register(ctx10(t), "dup", claim[second].pid, WithResolver(tc.resolver)))
				onlyA, onlyB := idle(t, c.nodes[0]), idle(t, c.nodes[1])
				require.NoError(t, c.regs[0].Register(ctx10(t), "only-a", onlyA))
				require.NoError(t, c.regs[1].Register(ctx10(t), "only-b", onlyB))
				require.True(t, seesOn(c.regs[0], "dup", ca.pid) && seesOn(c.regs[1], "dup", cb.pid), "each side its own holder")

				c.rejoin()
				c.syncAll()
				win, lose := ca, cb
				if tc.winner == "b" {
					win, lose = cb, ca
				}
				for _, r := range c.regs {
					p2ptest.Eventually(t, 10*time.Second, func() bool {
						if tc.noWinner {
							return absentOn(r, "dup")
						}
						return seesOn(r, "dup", win.pid)
					}, "one outcome everywhere: %v %v", c.regs[0].Registered(), c.regs[1].Registered())
					require.True(t, seesOn(r, "only-a", onlyA) && seesOn(r, "only-b", onlyB), "unconflicted names kept")
				}
				switch {
				case tc.noWinner:
					require.Equal(t, NameConflict{Name: "dup", Winner: cb.pid}, <-ca.msgs)
					require.Equal(t, NameConflict{Name: "dup", Winner: ca.pid}, <-cb.msgs)
				case tc.loserExit:
					m := (<-lose.msgs).(nodal.Exit)
					var ce *ConflictError
					require.ErrorAs(t, m.Reason, &ce)
					require.Equal(t, ConflictError{Name: "dup", Winner: win.pid}, *ce)
					p2ptest.Eventually(t, 5*time.Second, func() bool { return !alive(c.nodes[0], lose.pid) && !alive(c.nodes[1], lose.pid) }, "loser gone")
				default:
					require.Equal(t, NameConflict{Name: "dup", Winner: win.pid}, <-lose.msgs)
				}
				require.Empty(t, win.msgs, "the winner is not told")
				if !tc.noWinner {
					require.True(t, alive(c.nodes[0], win.pid) || alive(c.nodes[1], win.pid))
				}
				// Only the loser's owner acted, once.
				var conflicts uint64
				for _, r := range c.regs {
					conflicts += r.Stats().Conflicts
				}
				want := uint64(1)
				if tc.noWinner {
					want = 2
				}
				require.Equal(t, want, conflicts)
				if tc.failures {
					require.NotZero(t, c.regs[0].Stats().ResolverFailures+c.regs[1].Stats().ResolverFailures)
				}
				// b's monitor saw the conflict settle.
				sawConflict := false
				var seen []Event
				for len(wb.C) > 0 {
					e := <-wb.C
					seen = append(seen, e)
					if e.Name == "dup" && e.Reason == ReasonConflict {
						sawConflict = true
					}
				}
				if tc.winner != "b" {
					require.True(t, sawConflict, "b's monitor saw a conflict event: %v", seen)
				}
			})
		})
	}
}

// §9.11: three nodes, a and b cut from each other, both see c. Each side
// shows its own holder; c, seeing both claims, shows the resolved winner;
// the loser's owner does not act while it cannot see the winner's node.
// After the heal, one holder everywhere.
func TestThreeNodePartialSplit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 11, Config{}, "a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3")
		defer c.stop()
		c.split([]int{0}, []int{1})
		require.Len(t, c.regs[2].rep.Peers(), 2, "c still sees both")
		ca, cb := spawnClaimant(t, c.nodes[0]), spawnClaimant(t, c.nodes[1])
		require.NoError(t, c.regs[0].Register(ctx10(t), "x", ca.pid))
		require.NoError(t, c.regs[1].Register(ctx10(t), "x", cb.pid))
		p2ptest.Eventually(t, 5*time.Second, func() bool { return seesOn(c.regs[2], "x", ca.pid) }, "c shows the winner")
		require.True(t, seesOn(c.regs[0], "x", ca.pid))
		require.True(t, seesOn(c.regs[1], "x", cb.pid), "b cannot see a: its claim stands on its side: %v (a=%v b=%v) peers %v", c.regs[1].Registered(), ca.pid, cb.pid, c.regs[1].rep.Peers())
		// Anti-entropy with c brings a's claim to b (hidden there): b still
		// does not step down while a is unreachable from b.
		c.syncAll()
		require.True(t, seesOn(c.regs[1], "x", cb.pid))
		require.True(t, alive(c.nodes[1], cb.pid))
		require.Zero(t, c.regs[1].Stats().Conflicts)

		c.rejoin()
		c.syncAll()
		for _, r := range c.regs {
			p2ptest.Eventually(t, 10*time.Second, func() bool { return seesOn(r, "x", ca.pid) }, "one holder after heal")
		}
		_, ok := (<-cb.msgs).(nodal.Exit)
		require.True(t, ok, "the loser was exited")
	})
}

// §9.11: four nodes, 1,000 names held across them, a 2/2 split in which
// each side re-registers the names it lost sight of, heal: 1,000 unique
// live holders, the same on every node.
func TestFourNodesThousandNamesSplit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 12, Config{}, "a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3", "d@10.0.0.4")
		defer c.stop()
		const names = 1000
		for i := range names {
			k := i % 4
			require.NoError(t, c.regs[k].Register(ctx10(t), fmt.Sprintf("n%04d", i), idle(t, c.nodes[k])))
		}
		c.syncAll()
		for _, r := range c.regs {
			p2ptest.Eventually(t, 10*time.Second, func() bool { return r.Len() == names }, "all names everywhere")
		}
		c.split([]int{0, 1}, []int{2, 3})
		for side, nodes := range [][]int{{0, 1}, {2, 3}} {
			for i := range names {
				name := fmt.Sprintf("n%04d", i)
				if _, ok := c.regs[nodes[0]].Whereis(name); ok {
					continue
				}
				k := nodes[i%2]
				require.NoError(t, c.regs[k].Register(ctx10(t), name, idle(t, c.nodes[k])), "side %d re-registers %s", side, name)
			}
			p2ptest.Eventually(t, 10*time.Second, func() bool { return c.regs[nodes[0]].Len() == names }, "side %d holds every name", side)
		}
		c.rejoin()
		c.syncAll()
		c.syncAll()
		var first map[string]nodal.Pid
		for i, r := range c.regs {
			p2ptest.Eventually(t, 30*time.Second, func() bool {
				all := r.Registered()
				if len(all) != names {
					return false
				}
				for _, pid := range all {
					if !alive(c.nodes[nodeIndex(c, pid.Node)], pid) {
						return false
					}
				}
				return true
			}, "1,000 live holders on node %d", i)
			if first == nil {
				first = r.Registered()
			} else {
				require.Equal(t, first, r.Registered(), "the same holders on every node")
			}
		}
		holders := map[nodal.Pid]bool{}
		for _, pid := range first {
			holders[pid] = true
		}
		require.Len(t, holders, names, "unique holders")
		// Every claim left in the CRDT is a winner's: the losers stepped down.
		p2ptest.Eventually(t, 10*time.Second, func() bool {
			n := 0
			_ = c.regs[0].rep.Update(ctx10(t), func(s *replicaState) error {
				n = len(s.Map().LiveDots())
				return nil
			})
			return n == names
		}, "one claim per name left")
	})
}

func nodeIndex(c *cluster, name string) int {
	for i, n := range c.nodes {
		if n.Name() == name {
			return i
		}
	}
	return -1
}

// §9.11: a node restarted during a split comes back with a new
// incarnation: its old names are purged at once, its new ones shown.
func TestRestartWithNewIncarnation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 13, Config{}, "a@10.0.0.1", "b@10.0.0.2")
		defer c.stop()
		a := c.regs[0]
		require.NoError(t, c.regs[1].Register(ctx10(t), "old", idle(t, c.nodes[1])))
		p2ptest.Eventually(t, 5*time.Second, func() bool { return !absentOn(a, "old") }, "visible")
		oldID := c.regs[1].rep.Self()
		c.split([]int{0}, []int{1})
		require.NoError(t, c.nodes[1].Stop(ctx10(t))) // a does not see it leave
		b := c.startAlone("b@10.0.0.2")               // its seed is across the cut
		require.NoError(t, c.regs[b].Register(ctx10(t), "new", idle(t, c.nodes[b])))
		c.rejoin()
		p2ptest.Eventually(t, 10*time.Second, func() bool { return !absentOn(a, "new") }, "new incarnation's name")
		require.True(t, absentOn(a, "old"))
		var mentions bool
		require.NoError(t, a.rep.Update(ctx10(t), func(s *replicaState) error {
			mentions = s.Map().Mentions(oldID)
			return nil
		}))
		require.False(t, mentions, "the old incarnation purged")
	})
}

// §9.11: a graceful leave purges the node's names at once everywhere.
func TestGracefulLeavePurges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 14, Config{}, "a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3")
		defer c.stop()
		for i := range 10 {
			require.NoError(t, c.regs[1].Register(ctx10(t), fmt.Sprintf("b%d", i), idle(t, c.nodes[1])))
		}
		p2ptest.Eventually(t, 5*time.Second, func() bool { return c.regs[0].Len() == 10 && c.regs[2].Len() == 10 }, "visible")
		id := c.regs[1].rep.Self()
		require.NoError(t, c.nodes[1].Stop(ctx10(t)))
		for _, i := range []int{0, 2} {
			p2ptest.Eventually(t, 30*time.Second, func() bool {
				var m bool
				_ = c.regs[i].rep.Update(ctx10(t), func(s *replicaState) error { m = s.Map().Mentions(id); return nil })
				return !m && c.regs[i].Len() == 0
			}, "purged on leave")
			require.NotZero(t, c.regs[i].Stats().Purged)
		}
	})
}

// §9.11 (Horde #258/#116): a node that is down for a while has its names
// hidden, never deleted; they all come back with it, with monitor events
// in order.
func TestDownNodeNamesSurviveReturn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 15, Config{}, "a@10.0.0.1", "b@10.0.0.2")
		defer c.stop()
		a, b := c.regs[0], c.regs[1]
		const names = 200
		for i := range names {
			require.NoError(t, b.Register(ctx10(t), fmt.Sprintf("b%03d", i), idle(t, c.nodes[1])))
		}
		p2ptest.Eventually(t, 5*time.Second, func() bool { return a.Len() == names }, "visible")
		_, w, err := a.Monitor(ctx10(t))
		require.NoError(t, err)
		c.split([]int{0}, []int{1})
		p2ptest.Eventually(t, 5*time.Second, func() bool { return a.Len() == 0 }, "hidden while down")
		time.Sleep(time.Minute) // well within the permanent-down period
		c.rejoin()
		p2ptest.Eventually(t, 10*time.Second, func() bool { return a.Len() == names }, "all back")
		require.Equal(t, b.Registered(), a.Registered())
		var downs, ups int
		seen := map[string]Reason{}
		for len(w.C) > 0 {
			e := <-w.C
			switch {
			case e.Kind == Unregistered && e.Reason == ReasonNodeDown:
				require.NotEqual(t, ReasonNodeDown, seen[e.Name], "one down per name")
				downs++
			case e.Kind == Registered && e.Reason == ReasonNodeUp:
				require.Equal(t, ReasonNodeDown, seen[e.Name], "up after down for %s", e.Name)
				ups++
			default:
				t.Fatalf("unexpected event %v", e)
			}
			seen[e.Name] = e.Reason
		}
		require.Equal(t, names, downs)
		require.Equal(t, names, ups)
	})
}
