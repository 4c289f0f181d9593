package registry

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// A node going down here hides its names with one flag, and its return
// shows them again the same way: the index keeps them meanwhile (a heal
// costs what changed, not the registry's size). Names with claims on both
// sides are settled again on the return, what changed during the split
// arrives hidden, and watchers see every name flip, in an order that
// replays to the view.
func TestNodeDownKeepsNamesHidden(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 16, Config{}, "a@10.0.0.1", "b@10.0.0.2")
		defer c.stop()
		a, b := c.regs[0], c.regs[1]
		const names = 300
		theirs := idle(t, c.nodes[1]) // b002's
		for i := range names {
			pid := idle(t, c.nodes[1])
			if i == 2 {
				pid = theirs
			}
			require.NoError(t, b.Register(ctx10(t), fmt.Sprintf("b%03d", i), pid))
		}
		p2ptest.Eventually(t, 5*time.Second, func() bool { return a.Len() == names }, "visible")
		snap, w, err := a.Monitor(ctx10(t))
		require.NoError(t, err)
		rp := &replay{w: w, held: snap}

		c.split([]int{0}, []int{1})
		p2ptest.Eventually(t, 5*time.Second, func() bool { return a.Len() == 0 }, "hidden while down")
		require.EqualValues(t, names, a.idx.n.Load(), "kept in the index, hidden")
		_, ok := a.Whereis("b000")
		require.False(t, ok)
		require.Empty(t, a.Registered())
		rp.drain(t, "a")
		require.Empty(t, rp.held, "a watcher saw every name go")

		// During the split: b drops a name and makes one; a claims one of
		// b's names (hidden here, so free).
		require.NoError(t, b.Unregister(ctx10(t), "b001"))
		require.NoError(t, b.Register(ctx10(t), "bnew", idle(t, c.nodes[1])))
		mine := idle(t, c.nodes[0])
		require.NoError(t, a.Register(ctx10(t), "b002", mine))
		require.Equal(t, 1, a.Len())

		c.rejoin()
		c.syncAll()
		p2ptest.Eventually(t, 10*time.Second, func() bool { return a.Len() == names && mapsEqual(a.Registered(), b.Registered()) }, "whole again, the conflict settled")
		_, ok = a.Whereis("b001")
		require.False(t, ok, "unregistered during the split")
		holder, ok := a.Whereis("b002")
		require.True(t, ok)
		require.Equal(t, mine, holder, "LowerNodeExit: a's claim wins")
		p2ptest.Eventually(t, 5*time.Second, func() bool { return !alive(c.nodes[1], theirs) }, "the loser exits")
		rp.drain(t, "a")
		require.Equal(t, a.Registered(), rp.held, "a's monitor replays to its view")
		require.EqualValues(t, a.Len(), a.idx.n.Load(), "nothing hidden left")
	})
}
