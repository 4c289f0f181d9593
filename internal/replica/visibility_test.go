package replica

import (
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal/crdt"
	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// visibility records what OnVisibility told each replica.
type visibility struct {
	mu  sync.Mutex
	evs map[crdt.ReplicaID][]string // replica -> "origin up|down"
}

func (v *visibility) hook(s *State[string, string], id crdt.ReplicaID, visible bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	what := "down"
	if visible {
		what = "up"
	}
	v.evs[s.Self()] = append(v.evs[s.Self()], id.Name+" "+what)
}

func (v *visibility) of(id crdt.ReplicaID) []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.evs[id]...)
}

func countReason(cs []Change[string, string], why Reason) int {
	n := 0
	for _, c := range cs {
		if c.Reason == why {
			n++
		}
	}
	return n
}

// With OnVisibility a node going down and coming back is one call per
// origin, whatever its number of entries (no NodeDown or NodeUp change
// per entry), and what changes meanwhile in the hidden origin's entries
// (relayed by a node that still sees it) comes to OnChange marked Hidden.
func TestReplicaVisibilityPerOrigin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := &visibility{evs: map[crdt.ReplicaID][]string{}}
		cfg := testConfig()
		cfg.OnVisibility = v.hook
		cfg.SyncInterval = time.Second
		c := startCluster(t, 3, cfg, "a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3")
		defer c.stop()
		a, b := c.members[0], c.members[1]
		const n = 500
		for i := range n {
			a.add(t, fmt.Sprintf("k%03d", i), "v")
		}
		p2ptest.Eventually(t, 10*time.Second, func() bool { return len(b.visible(t)) == n }, "pushed")

		c.net.Partition(a.n.Name(), b.n.Name())
		p2ptest.Eventually(t, 60*time.Second, func() bool { return !b.up(t, a.n.Name()) }, "a down on b")
		require.Equal(t, []string{a.n.Name() + " down"}, v.of(b.r.Self()))
		require.Zero(t, countReason(b.changes(), NodeDown), "no change per entry")
		require.Empty(t, b.visible(t), "a's entries hidden on b")

		late := a.add(t, "late", "v")
		a.remove(t, crdt.Dot{Replica: a.r.Self(), Counter: 1})
		p2ptest.Eventually(t, 30*time.Second, func() bool {
			_, _, ok := b.state(t).Lookup(late)
			return ok
		}, "c relays a's entry to b")
		var hidden []string
		for _, ch := range b.changes() {
			if ch.Hidden {
				require.Equal(t, Remote, ch.Reason)
				hidden = append(hidden, fmt.Sprintf("%v %s", ch.Op, ch.Key))
			}
		}
		require.ElementsMatch(t, []string{fmt.Sprintf("%v late", crdt.Added), fmt.Sprintf("%v k000", crdt.Removed)}, hidden)
		require.Empty(t, b.visible(t), "still hidden")

		c.rejoin()
		p2ptest.Eventually(t, 10*time.Second, func() bool { return len(b.visible(t)) == n }, "shown again")
		require.Equal(t, []string{a.n.Name() + " down", a.n.Name() + " up"}, v.of(b.r.Self()))
		require.Zero(t, countReason(b.changes(), NodeUp), "no change per entry")
		require.Len(t, b.visible(t)["late"], 1)
		require.Empty(t, b.visible(t)["k000"])
	})
}
