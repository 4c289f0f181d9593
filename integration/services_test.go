package integration

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
)

// TestHarnessNamesAcrossASplit: five nodes split 2/3 and the same names
// are registered on both sides (each side sees its own holder); after the
// heal every node shows one owner per name, the same on every node: the
// process on the lower node (the default resolver, lower-node-exit), and
// the loser has exited.
func TestHarnessNamesAcrossASplit(t *testing.T) {
	RunBoth(t, 5, suiteOptions(), func(t *testing.T, c *Cluster) {
		ctx := context.Background()
		n := c.Names()
		sideA, sideB := n[:2], n[2:]
		c.Partition(sideA, sideB)
		c.WaitMesh(sideA...)
		c.WaitMesh(sideB...)
		const names = 3
		type claim struct{ a, b nodal.Pid }
		claims := map[string]claim{}
		var losers []*Watch
		for i := range names {
			name := fmt.Sprintf("svc%d", i)
			onA, onB := sideA[i%len(sideA)], sideB[i%len(sideB)]
			pa, err := c.SpawnEcho(ctx, onA, "")
			require.NoError(t, err)
			pb, err := c.SpawnEcho(ctx, onB, "")
			require.NoError(t, err)
			require.NoError(t, c.Register(ctx, onA, name, pa))
			require.NoError(t, c.Register(ctx, onB, name, pb))
			claims[name] = claim{pa, pb}
			w, err := c.Monitor(ctx, onB, pb) // the loser: side B's nodes are higher
			require.NoError(t, err)
			losers = append(losers, w)
		}
		for name, cl := range claims {
			for _, x := range sideA {
				c.Eventually(func() bool { p, ok, err := c.Whereis(ctx, x, name); return err == nil && ok && p == cl.a }, "%s to see %s on side A", x, name)
			}
			for _, x := range sideB {
				c.Eventually(func() bool { p, ok, err := c.Whereis(ctx, x, name); return err == nil && ok && p == cl.b }, "%s to see %s on side B", x, name)
			}
		}

		c.WaitPartitioned(n...)
		before := c.HealReports(n...)
		healed := time.Now()
		c.Heal()
		c.WaitMesh()
		want := map[string]nodal.Pid{}
		for name, cl := range claims {
			want[name] = cl.a
		}
		converge := c.Eventually(func() bool {
			for _, x := range n {
				got, err := c.Registered(ctx, x)
				if err != nil {
					return false
				}
				for name := range want {
					if got[name] != want[name] {
						return false
					}
				}
			}
			return true
		}, "one owner per name, the lower node's, on every node")
		for _, w := range losers {
			reason, _ := w.WaitDown(healed)
			require.NotErrorIs(t, reason, nodal.ReasonNoConnection, "the loser exits, its node stays")
		}
		for name, pid := range want {
			r, err := c.Call(ctx, n[4], pid, name)
			require.NoError(t, err, "the winner of %s answers", name)
			require.Equal(t, name, r)
		}
		took := time.Since(healed)
		moved, _ := c.HealExchange(before, n...)
		c.Logf("measured: %d names claimed on both sides of a 2/3 split: one owner per name on all %d nodes %v after the heal (%v to mesh); %d losers exited; the heal's reconcilers exchanged %v (summed over the %d nodes)",
			names, len(n), took.Round(time.Millisecond), converge.Round(time.Millisecond), len(losers), moved, len(n))
	})
}

// TestHarnessGroupsAcrossASplit: an echo of each of five nodes joins one
// group. During a 2/3 split each side lists the members of its own side
// only (the others' are hidden, not lost); after the heal every node lists
// all five again.
func TestHarnessGroupsAcrossASplit(t *testing.T) {
	RunBoth(t, 5, suiteOptions(), func(t *testing.T, c *Cluster) {
		ctx := context.Background()
		n := c.Names()
		pids := echoes(t, c, ctx)
		for _, x := range n {
			require.NoError(t, c.JoinGroup(ctx, x, "g", pids[x]))
		}
		members := func(nodes []string) []nodal.Pid {
			var out []nodal.Pid
			for _, x := range nodes {
				out = append(out, pids[x])
			}
			slices.SortFunc(out, func(a, b nodal.Pid) int { return cmpString(a.String(), b.String()) })
			return out
		}
		sees := func(nodes []string, want []nodal.Pid) func() bool {
			return func() bool {
				for _, x := range nodes {
					got, err := c.Members(ctx, x, "g")
					if err != nil || !slices.Equal(got, want) {
						return false
					}
				}
				return true
			}
		}
		joined := c.Eventually(sees(n, members(n)), "every node to list the five members")
		sideA, sideB := n[:2], n[2:]
		cut := time.Now()
		c.Partition(sideA, sideB)
		c.Eventually(sees(sideA, members(sideA)), "side A to list its own members")
		c.Eventually(sees(sideB, members(sideB)), "side B to list its own members")
		split := time.Since(cut)
		c.WaitPartitioned(n...)
		detected := time.Since(cut)
		before := c.HealReports(n...)
		healed := time.Now()
		c.Heal()
		c.Eventually(sees(n, members(n)), "every node to list the five members after the heal")
		took := time.Since(healed)
		moved, _ := c.HealExchange(before, n...)
		c.Logf("measured: group of 5: listed everywhere %v after the joins; each side of a 2/3 split lists only its own after %v (heal reported the split on every node after %v); all five everywhere %v after the heal; the heal's reconcilers exchanged %v (summed over the %d nodes)",
			joined.Round(time.Millisecond), split.Round(time.Millisecond), detected.Round(time.Millisecond), took.Round(time.Millisecond), moved, len(n))
	})
}

// TestHarnessRollingRestartUnderRegistrations: every node is restarted in
// turn while names are registered, without pause, on the other nodes. No
// registration of a live process is lost: once the cluster is whole,
// every name whose process lives is shown with that process on every
// node, and no name of a process that died with its node is shown.
func TestHarnessRollingRestartUnderRegistrations(t *testing.T) {
	RunBoth(t, 3, suiteOptions(), func(t *testing.T, c *Cluster) {
		ctx := context.Background()
		n := c.Names()
		var (
			mu         sync.Mutex
			restarting string
			made       = map[string]nodal.Pid{}
			failed     int
		)
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { // the stream of registrations; ends when stop closes
			defer close(done)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				var at string
				for k := range n {
					if x := n[(i+k)%len(n)]; x != restarting {
						at = x
						break
					}
				}
				mu.Unlock()
				name := fmt.Sprintf("r%d", i)
				pid, err := c.SpawnEcho(ctx, at, "")
				if err == nil {
					err = c.Register(ctx, at, name, pid)
				}
				mu.Lock()
				if err == nil {
					made[name] = pid
				} else {
					failed++
				}
				mu.Unlock()
				time.Sleep(20 * time.Millisecond) // pacing the stream
			}
		}()
		count := func() int { mu.Lock(); defer mu.Unlock(); return len(made) }
		// A few registrations before each restart and after the last, so
		// that the stream runs across every step.
		const between = 5
		start := time.Now()
		for _, x := range n {
			before := count()
			c.Eventually(func() bool { return count() >= before+between }, "%d registrations before restarting %s", between, x)
			mu.Lock()
			restarting = x
			mu.Unlock()
			c.Restart(x)
			c.WaitMesh()
			mu.Lock()
			restarting = ""
			mu.Unlock()
		}
		before := count()
		c.Eventually(func() bool { return count() >= before+between }, "%d registrations after the last restart", between)
		close(stop)
		<-done
		rolled := time.Since(start)

		incs := map[string]uint64{}
		for _, x := range n {
			inc, err := c.Incarnation(ctx, x)
			require.NoError(t, err)
			incs[x] = inc
		}
		mu.Lock()
		live := map[string]nodal.Pid{}
		for name, pid := range made {
			if pid.Incarnation == incs[pid.Node] {
				live[name] = pid
			}
		}
		total := len(made)
		mu.Unlock()
		require.NotEmpty(t, live, "no registration survived: the stream ran only while nodes restarted")
		converge := c.Eventually(func() bool {
			for _, x := range n {
				got, err := c.Registered(ctx, x)
				if err != nil || !maps.Equal(got, live) {
					return false // a live name missing, a dead process's name shown, or another holder
				}
			}
			return true
		}, "every node to show exactly the names of live processes")
		c.Logf("measured: rolling restart of %d nodes in %v under %d registrations (%d refused while a node restarted); %d of live processes shown on every node %v later; %d died with their node",
			len(n), rolled.Round(time.Millisecond), total, failed, len(live), converge.Round(time.Millisecond), total-len(live))
	})
}
