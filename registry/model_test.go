package registry

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// claim is a successful registration, as the model knows it.
type claim struct {
	name   string
	pid    nodal.Pid
	node   int
	killed bool // the test killed the process
	gone   bool // unregistered, or its node restarted
}

// replay follows one node's monitor: every event must fit the holder it
// replaces (Registered of a free name, Unregistered of the current holder).
type replay struct {
	w    *Watch
	held map[string]nodal.Pid
}

func (p *replay) drain(t *testing.T, node string) {
	for len(p.w.C) > 0 {
		e := <-p.w.C
		switch e.Kind {
		case Registered:
			_, taken := p.held[e.Name]
			require.False(t, taken, "%s: %v while %q is held by %v", node, e, e.Name, p.held[e.Name])
			p.held[e.Name] = e.Pid
		case Unregistered:
			require.Equal(t, p.held[e.Name], e.Pid, "%s: %v of a pid that does not hold it", node, e)
			delete(p.held, e.Name)
		}
	}
}

// A model-based test after syn's PropEr suite and TLA+ invariants: random
// registrations, unregistrations, kills, partitions, restarts and heals on
// three nodes. After every heal, on every node: the same holders
// (ThereCanBeOnlyOne), every live registration that met no conflict present
// (AllRegistered), every holder alive, every conflicted name held by one of
// its claimants with the others dead, one claim per name left in the CRDT,
// and monitor events that replay to the node's view.
func TestModel(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { runModel(t, seed) })
		})
	}
}

func runModel(t *testing.T, seed uint64) {
	names := []string{"a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3"}
	c := startCluster(t, int64(seed)+100, Config{}, names...)
	defer c.stop()
	rng := rand.New(rand.NewPCG(seed, 42))
	keys := []string{"k0", "k1", "k2", "k3", "k4", "k5"}
	var claims []*claim
	replays := make([]*replay, len(names))
	watch := func(i int) {
		snap, w, err := c.regs[i].Monitor(ctx10(t))
		require.NoError(t, err)
		replays[i] = &replay{w: w, held: snap}
	}
	for i := range names {
		watch(i)
	}
	split := false
	heals := 0

	check := func(step int) {
		c.rejoin()
		c.syncAll()
		c.syncAll()
		liveClaims := func(name string) []*claim {
			var out []*claim
			for _, cl := range claims {
				if cl.name == name && !cl.killed && !cl.gone {
					out = append(out, cl)
				}
			}
			return out
		}
		p2ptest.Eventually(t, 30*time.Second, func() bool {
			first := c.regs[0].Registered()
			for _, r := range c.regs[1:] {
				if !mapsEqual(first, r.Registered()) {
					return false
				}
			}
			for _, name := range keys {
				if len(liveClaims(name)) > 0 && first[name] == (nodal.Pid{}) {
					return false // a conflict still settling
				}
			}
			n := 0
			_ = c.regs[0].rep.Update(ctx10(t), func(s *replicaState) error {
				n = len(s.Map().LiveDots())
				return nil
			})
			return n == len(first)
		}, "step %d: converged", step)
		view := c.regs[0].Registered()
		for _, name := range keys {
			live := liveClaims(name)
			holder, held := view[name]
			switch len(live) {
			case 0:
				require.False(t, held, "step %d: %q held by %v with no live claim", step, name, holder)
			case 1:
				require.True(t, held, "step %d: AllRegistered: %q (%v) lost", step, name, live[0].pid)
				if holder != live[0].pid {
					// The only live claim lost to one that was live when they met.
					require.False(t, alive(c.nodes[live[0].node], live[0].pid), "step %d: %q held by %v, claimant %v alive", step, name, holder, live[0].pid)
				}
			default:
				require.True(t, held, "step %d: conflicted %q left with no holder", step, name)
			}
			if held {
				require.True(t, alive(c.nodes[nodeIndex(c, holder.Node)], holder), "step %d: holder of %q dead", step, name)
				for _, cl := range live {
					if cl.pid != holder {
						p2ptest.Eventually(t, 5*time.Second, func() bool { return !alive(c.nodes[cl.node], cl.pid) }, "step %d: loser %v of %q still alive", step, cl.pid, name)
					}
				}
			}
		}
		// Losers exited: the model forgets them.
		for _, cl := range claims {
			if !cl.killed && !cl.gone && !alive(c.nodes[cl.node], cl.pid) {
				cl.killed = true
			}
		}
		for i, p := range replays {
			p.drain(t, names[i])
			require.Equal(t, c.regs[i].Registered(), p.held, "step %d: %s's monitor replays to its view", step, names[i])
		}
		split = false
		heals++
	}

	for step := range 100 {
		i := rng.IntN(len(names))
		name := keys[rng.IntN(len(keys))]
		switch op := rng.IntN(10); {
		case op < 4: // register
			pid := idle(t, c.nodes[i])
			if err := c.regs[i].Register(ctx10(t), name, pid); err == nil {
				claims = append(claims, &claim{name: name, pid: pid, node: i})
			} else {
				require.ErrorIs(t, err, ErrAlreadyRegistered)
			}
		case op == 4: // unregister
			for _, cl := range claims {
				if cl.node == i && cl.name == name && !cl.gone && !cl.killed && seesOn(c.regs[i], name, cl.pid) {
					require.NoError(t, c.regs[i].Unregister(ctx10(t), name))
					cl.gone = true
				}
			}
		case op == 5: // kill a holder
			for _, cl := range claims {
				if cl.node == i && !cl.gone && !cl.killed {
					c.nodes[i].Exit(cl.pid, nodal.ReasonKill)
					cl.killed = true
					break
				}
			}
		case op == 6 && !split: // partition
			j := (i + 1 + rng.IntN(len(names)-1)) % len(names)
			if rng.IntN(2) == 0 {
				c.split([]int{i}, []int{j})
			} else {
				others := slices.DeleteFunc([]int{0, 1, 2}, func(k int) bool { return k == i })
				c.split([]int{i}, others)
			}
			split = true
		case op == 7 && !split: // restart: a new incarnation, its claims gone
			for _, cl := range claims {
				if cl.node == i {
					cl.gone = true
				}
			}
			replays[i].w.Stop()
			require.NoError(t, c.nodes[i].Stop(ctx10(t)))
			p2ptest.Eventually(t, 30*time.Second, func() bool {
				for j, n := range c.nodes {
					if j == i {
						continue
					}
					for _, m := range n.Members() {
						if m.Name == names[i] && m.State == nodal.MemberStateAlive {
							return false
						}
					}
				}
				return true
			}, "the old start is seen gone")
			c.start(names[i])
			c.waitMesh()
			watch(i)
		case op >= 8 && split: // heal and check
			check(step)
		}
		time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
	}
	check(100)
	conflicts := 0
	for _, r := range c.regs {
		conflicts += int(r.Stats().Conflicts)
	}
	t.Logf("seed %d: %d claims, %d heals, %d conflicts settled", seed, len(claims), heals, conflicts)
}

func mapsEqual(a, b map[string]nodal.Pid) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
