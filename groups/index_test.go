package groups

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/crdt"
)

func dotOf(node string, epoch, n uint64) crdt.Dot {
	return crdt.Dot{Replica: crdt.ReplicaID{Name: node, Epoch: epoch}, Counter: n}
}

// The index counts memberships per pid, drops entries a node wrote for
// pids it does not own, groups runs of changes into one event, and ends a
// monitor that falls behind instead of blocking.
func TestIndex(t *testing.T) {
	x := newIndex("a@h")
	pa := nodal.Pid{Node: "a@h", ID: 1, Incarnation: 1}
	pb := nodal.Pid{Node: "b@h", ID: 1, Incarnation: 7}
	mon := &Monitor{x: x, ch: make(chan Event, 2)}
	require.Empty(t, x.snapshotScope(mon))
	x.apply([]change{
		{op: crdt.Added, group: "g", dot: dotOf("a@h", 1, 1), m: Membership{Pid: pa}, cause: CauseLocal},
		{op: crdt.Added, group: "g", dot: dotOf("a@h", 1, 2), m: Membership{Pid: pa}, cause: CauseLocal},
		{op: crdt.Added, group: "g", dot: dotOf("a@h", 1, 2), m: Membership{Pid: pa}, cause: CauseLocal},  // duplicate
		{op: crdt.Added, group: "g", dot: dotOf("a@h", 1, 3), m: Membership{Pid: pb}, cause: CauseRemote}, // not a's pid
		{op: crdt.Added, group: "g", dot: dotOf("b@h", 7, 1), m: Membership{Pid: pb, Meta: []byte("m")}, cause: CauseRemote},
	})
	require.Equal(t, uint64(1), x.badOwner.Load())
	require.Equal(t, []nodal.Pid{pa, pa, pb}, x.members("g", false))
	require.Equal(t, []nodal.Pid{pa, pa}, x.members("g", true))
	require.Equal(t, []Membership{{Pid: pa}, {Pid: pa}, {Pid: pb, Meta: []byte("m")}}, x.memberships("g"))
	require.Equal(t, 3, x.count("g", false))
	require.Equal(t, map[string]int{"g": 3}, x.counts())
	require.Equal(t, []Event{
		{Kind: Joined, Group: "g", Pids: []nodal.Pid{pa, pa}, Cause: CauseLocal},
		{Kind: Joined, Group: "g", Pids: []nodal.Pid{pb}, Cause: CauseRemote},
	}, drain(mon))

	x.apply([]change{{op: crdt.Removed, group: "g", dot: dotOf("b@h", 7, 1), m: Membership{Pid: pb}, cause: CauseNodeDown}})
	x.apply([]change{{op: crdt.Removed, group: "g", dot: dotOf("b@h", 7, 1), m: Membership{Pid: pb}, cause: CauseNodeDown}}) // again: nothing
	x.apply([]change{{op: crdt.Removed, group: "g", dot: dotOf("a@h", 1, 1), m: Membership{Pid: pa}, cause: CauseLocal}})
	require.Equal(t, []nodal.Pid{pa}, x.members("g", false))
	x.apply([]change{{op: crdt.Removed, group: "g", dot: dotOf("a@h", 1, 2), m: Membership{Pid: pa}, cause: CauseExit}})
	require.Nil(t, x.members("g", false))
	require.Empty(t, x.whichGroups(false), "an empty group is gone")
	// 3 events into a buffer of 2: the monitor ends
	_, ok := <-mon.Events()
	require.True(t, ok)
	_, ok = <-mon.Events()
	require.True(t, ok)
	_, ok = <-mon.Events()
	require.False(t, ok)
	require.ErrorIs(t, mon.Err(), ErrMonitorOverflow)
	require.Empty(t, x.scopeMon)
}

// An event lists its pids in pid order (Event.Pids's contract) whatever
// the order of the changes it groups: a delta's changes come in dot order,
// and a Join may name its pids in any order. Found by TestModel.
func TestIndexEventPidsInOrder(t *testing.T) {
	x := newIndex("a@h")
	p1 := nodal.Pid{Node: "b@h", ID: 1, Incarnation: 7}
	p2 := nodal.Pid{Node: "b@h", ID: 2, Incarnation: 7}
	p3 := nodal.Pid{Node: "b@h", ID: 3, Incarnation: 7}
	mon := &Monitor{x: x, ch: make(chan Event, 4)}
	require.Empty(t, x.snapshotScope(mon))
	x.apply([]change{
		{op: crdt.Added, group: "g", dot: dotOf("b@h", 7, 1), m: Membership{Pid: p3}, cause: CauseRemote},
		{op: crdt.Added, group: "g", dot: dotOf("b@h", 7, 2), m: Membership{Pid: p1}, cause: CauseRemote},
		{op: crdt.Added, group: "g", dot: dotOf("b@h", 7, 3), m: Membership{Pid: p2}, cause: CauseRemote},
		{op: crdt.Added, group: "g", dot: dotOf("b@h", 7, 4), m: Membership{Pid: p1}, cause: CauseRemote},
	})
	x.apply([]change{
		{op: crdt.Removed, group: "g", dot: dotOf("b@h", 7, 3), m: Membership{Pid: p2}, cause: CauseNodeDown},
		{op: crdt.Removed, group: "g", dot: dotOf("b@h", 7, 1), m: Membership{Pid: p3}, cause: CauseNodeDown},
		{op: crdt.Removed, group: "g", dot: dotOf("b@h", 7, 2), m: Membership{Pid: p1}, cause: CauseNodeDown},
	})
	require.Equal(t, []Event{
		{Kind: Joined, Group: "g", Pids: []nodal.Pid{p1, p1, p2, p3}, Cause: CauseRemote},
		{Kind: Left, Group: "g", Pids: []nodal.Pid{p1, p2, p3}, Cause: CauseNodeDown},
	}, drain(mon))
}
