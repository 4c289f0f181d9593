package groups

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/crdt"
)

// The owner's table of its pids' dots: per pid and group, a leave takes
// the latest dot; a pid's first and last memberships are reported; every
// dot is of the node's replica.
func TestOwnTable(t *testing.T) {
	self := crdt.ReplicaID{Name: "a@10.0.0.1", Epoch: 7}
	d := func(n uint64) crdt.Dot { return crdt.Dot{Replica: self, Counter: n} }
	own := newOwnTable(self)
	p := nodal.Pid{Node: self.Name, ID: 3, Incarnation: self.Epoch}
	q := nodal.Pid{Node: self.Name, ID: 4, Incarnation: self.Epoch}

	require.True(t, own.add("g", p, d(1)))
	require.False(t, own.add("g", p, d(2)))
	require.False(t, own.add("h", p, d(3)))
	require.False(t, own.add("h", p, d(4)))
	require.True(t, own.add("g", q, d(5)))

	_, ok, _ := own.take("x", p)
	require.False(t, ok, "not a member of x")
	dot, ok, last := own.take("g", p)
	require.Equal(t, []any{d(2), true, false}, []any{dot, ok, last})
	dot, ok, last = own.take("g", p)
	require.Equal(t, []any{d(1), true, false}, []any{dot, ok, last})
	_, ok, _ = own.take("g", p)
	require.False(t, ok, "p left g twice")

	// g's inline place is free: a new group takes it, h stays where it is.
	require.False(t, own.add("k", p, d(6)))
	require.False(t, own.add("h", p, d(7)))
	dot, ok, last = own.take("h", p)
	require.Equal(t, []any{d(7), true, false}, []any{dot, ok, last})
	require.ElementsMatch(t, []crdt.Dot{d(3), d(4), d(6)}, own.takeAll(p))
	require.Nil(t, own.takeAll(p), "p has no membership left")

	dot, ok, last = own.take("g", q)
	require.Equal(t, []any{d(5), true, true}, []any{dot, ok, last}, "q's last")
	require.Empty(t, own.m)
}
