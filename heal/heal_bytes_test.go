package heal_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/heal"
	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// Bytes per change and fixed cost of the heal-bytes bound: c·(d+nodes)+k.
// A registry entry on the wire is its name, pid, time and dot (~100 bytes
// here); every change crosses the heal at most a couple of times (to the
// other side's nodes, and the digests of each side's replicas), so c
// leaves room for that but not for the unchanged names.
const (
	healBytesPerChange = 768
	healBytesFixed     = 8 << 10
)

// A split with changes on both sides heals with no manual join into equal
// registries and groups everywhere, the same name taken on both sides ends
// with one owner, Healed reports the conflicts, and the bytes the heal
// moved follow the number of changes, not the size of the state.
func TestHealBytesFollowTheDifference(t *testing.T) {
	for _, tc := range []struct {
		base, perSide int
		farBelow      bool // under 1 % of the names changed: heal bytes ≤ full state / 10
	}{
		{base: 2001, perSide: 5},
		{base: 6000, perSide: 5, farBelow: true},
		{base: 2001, perSide: 60},
	} {
		t.Run(fmt.Sprintf("names=%d/changes=%d", tc.base, 2*(3*tc.perSide+dupNames)), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { healBytes(t, tc.base, tc.perSide, tc.farBelow) })
		})
	}
}

// dupNames is how many names both sides register during the split.
const dupNames = 5

func healBytes(t *testing.T, base, perSide int, farBelow bool) {
	net := p2ptest.New(p2ptest.WithSeed(21))
	defer net.Close()
	names := []string{"a@10.0.2.1", "b@10.0.2.2", "c@10.0.2.3"}
	ns := startReplCluster(t, net, names, 60*time.Second)
	defer stopReplCluster(ns)
	ctx := context.Background()

	// Before the split: base names spread over the nodes, and every node's
	// first 50 holders in one of 10 groups.
	held := make([][]nodal.Pid, len(ns))
	for i, x := range ns {
		held[i] = registerMany(t, x, fmt.Sprintf("base-%d-", i), base/len(ns))
		for j, pid := range held[i][:50] {
			require.NoError(t, x.grp.Join(ctx, fmt.Sprintf("g%d", j%10), pid))
		}
	}
	want := len(ns) * (base / len(ns))
	p2ptest.Eventually(t, 60*time.Second, func() bool { return replicasEqual(ns, want) }, "base state everywhere")

	net.Split(names[:1], names[1:])
	p2ptest.Eventually(t, 60*time.Second, func() bool {
		return len(ns[0].h.View().Reachable) == 1 && len(ns[1].h.View().Reachable) == 2 && len(ns[2].h.View().Reachable) == 2
	}, "split seen")

	// During the split, on a (one side) and b (the other): perSide new
	// names, perSide names unregistered, perSide group joins; and the same
	// dupNames names on both sides.
	d := 0
	for i, x := range ns[:2] {
		registerMany(t, x, fmt.Sprintf("split-%d-", i), perSide)
		for j := range perSide {
			require.NoError(t, x.reg.Unregister(ctx, fmt.Sprintf("base-%d-%d", i, 100+j)))
		}
		for j := range perSide {
			require.NoError(t, x.grp.Join(ctx, fmt.Sprintf("split-g%d", j%7), held[i][200+j]))
		}
		registerMany(t, x, "dup-", dupNames)
		d += 3*perSide + dupNames
	}
	require.False(t, replicasEqual(ns, 0), "the sides differ during the split")
	time.Sleep(3 * time.Minute) // far beyond memberlist's dead-node window, below the permdown period
	net.Heal()
	p2ptest.Eventually(t, 90*time.Second, func() bool { return wholeView(ns) }, "whole again, no join")
	// Each dup name ends with one of its two claims; the other is dropped.
	wantAfter := want + 2*perSide - 2*perSide + dupNames
	p2ptest.Eventually(t, 60*time.Second, func() bool { return replicasEqual(ns, wantAfter) }, "all replicas equal")
	for k := range dupNames {
		owner, ok := ns[0].reg.Whereis(fmt.Sprintf("dup-%d", k))
		require.True(t, ok)
		require.Contains(t, names[:2], owner.Node, "one of the claimants owns dup-%d", k)
		for _, x := range ns[1:] {
			o, _ := x.reg.Whereis(fmt.Sprintf("dup-%d", k))
			require.Equal(t, owner, o, "one owner of dup-%d everywhere", k)
		}
	}
	// a sees b and c return, b and c see a return: one Healed each.
	p2ptest.Eventually(t, 60*time.Second, func() bool {
		for _, x := range ns {
			if len(x.healedEvents()) == 0 {
				return false
			}
		}
		return true
	}, "every node reports its heal")
	for _, x := range ns {
		for _, h := range x.healedEvents() {
			for _, r := range h.Reconcilers {
				require.NoError(t, r.Err, "%s %s", x.n.Name(), r.Name)
			}
		}
	}
	total, events := healTotals(ns)
	for _, x := range ns { // View's Heals sums the same events
		evs, hs := x.healedEvents(), x.h.View().Heals
		var sum heal.Exchange
		for _, e := range evs {
			sum = sum.Add(e.Exchange)
		}
		require.Equal(t, len(evs), hs.Count, "%s: View.Heals.Count", x.n.Name())
		require.Equal(t, sum, hs.Exchange, "%s: View.Heals.Exchange", x.n.Name())
		require.Equal(t, evs[len(evs)-1].At, hs.Last.At, "%s: View.Heals.Last", x.n.Name())
	}
	full := fullStateBytes(t, net, ns, "fresh@10.0.2.9", time.Second, false, 60*time.Second)
	bound := uint64(healBytesPerChange*(d+len(ns)) + healBytesFixed)
	t.Logf("names=%d changes=%d (%.2f%%): heal %v over %d Healed events; full state %d bytes; sum/full=%.4f wire/full=%.4f; bound %d",
		want, d, 100*float64(d)/float64(want), total, events, full, float64(total.Bytes)/float64(full), float64(total.Bytes)/2/float64(full), bound)
	require.Positive(t, total.Bytes)
	require.LessOrEqual(t, total.Bytes, bound, "heal bytes ≤ c·(d+nodes)+k")
	// Healed counts a byte at both of its ends (sender and receiver
	// report it), the fresh node once: the heal's wire bytes are half the
	// sum.
	require.Less(t, total.Bytes/2, full, "heal bytes below the full state")
	if farBelow {
		require.LessOrEqual(t, total.Bytes*10, full, "heal bytes far below the full state")
	}
	// The losing claim of each dup name is settled by its node (the
	// registry counts the conflict where the local claim lost).
	require.Equal(t, uint64(dupNames), total.Conflicts, "Healed reports every conflict once")
	require.Positive(t, total.Entries)
}

// At 10 nodes split 5|5, every node of one side hears from every node of
// the other at the heal. The difference still reaches each node about
// once (each origin's gap is pulled from one peer, not from each that
// has it), so the bytes follow the changes times the nodes that lack
// them plus a few digests per pair of nodes, and under 1 % of the names
// changed the heal moves at most 5 % of the full state. The names are
// long (padded to ~200 bytes) so that 20,000 of them make a state of the
// size of 100,000 short ones (~5 MB, as in BenchmarkHealConverge) without
// the time to register 100,000.
func TestHealBytesTenNodes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) { healBytesTen(t) })
}

// Bytes per change delivered to one node, and per pair of nodes of the
// two sides (their node-up digests, asks and sync frames, both services),
// in TestHealBytesTenNodes's bound. Sent once per node that lacks it, a
// changed name (~250 bytes here) averages below the first with the
// removals and group joins; from every peer of the other side (each
// sending the whole difference), it would be 5 times that.
const (
	tenBytesPerDelivery = 256
	tenBytesPerPair     = 2 << 10
)

func healBytesTen(t *testing.T) {
	const (
		size    = 10
		perNode = 2000 // base names per node: 20,000 in all
		changes = 150  // with the dup names, 0.8 % of the names
	)
	pad := strings.Repeat("x", 180)
	net := p2ptest.New(p2ptest.WithSeed(23))
	defer net.Close()
	var names []string
	for i := range size {
		names = append(names, fmt.Sprintf("n%d@10.0.4.%d", i, i+1))
	}
	ns := startReplCluster(t, net, names, 2*time.Minute)
	defer stopReplCluster(ns)
	ctx := context.Background()
	held := make([][]nodal.Pid, size)
	for i, x := range ns {
		held[i] = registerMany(t, x, fmt.Sprintf("base-%s-%d-", pad, i), perNode)
	}
	want := size * perNode
	p2ptest.Eventually(t, 2*time.Minute, func() bool { return replicasEqual(ns, want) }, "base state everywhere")

	half := size / 2
	net.Split(names[:half], names[half:])
	p2ptest.Eventually(t, 2*time.Minute, func() bool {
		for _, x := range ns {
			if v := x.h.View(); len(v.Reachable) != half || !v.Partitioned {
				return false
			}
		}
		return true
	}, "split seen")
	// New names, unregistered names and group joins, round robin over the
	// nodes; and the same dupNames names on one node of each side.
	next := make([]int, size)
	added, removed := 0, 0
	for c := range changes {
		j := c % size
		x := ns[j]
		switch (c / size) % 3 {
		case 0:
			registerMany(t, x, fmt.Sprintf("split-%s-%d-", pad, c), 1)
			added++
		case 1:
			require.NoError(t, x.reg.Unregister(ctx, fmt.Sprintf("base-%s-%d-%d", pad, j, next[j])))
			removed++
			next[j]++
		case 2:
			require.NoError(t, x.grp.Join(ctx, fmt.Sprintf("g%d", c%7), held[j][next[j]]))
			next[j]++
		}
	}
	registerMany(t, ns[0], "dup-"+pad, dupNames)
	registerMany(t, ns[half], "dup-"+pad, dupNames)
	d := changes + 2*dupNames
	time.Sleep(3 * time.Minute) // far beyond memberlist's dead-node window
	net.Heal()
	p2ptest.Eventually(t, 2*time.Minute, func() bool { return wholeView(ns) }, "whole again, no join")
	wantAfter := want + added - removed + dupNames
	p2ptest.Eventually(t, 2*time.Minute, func() bool { return replicasEqual(ns, wantAfter) }, "all replicas equal")
	for k := range dupNames {
		owner, ok := ns[0].reg.Whereis(fmt.Sprintf("dup-%s%d", pad, k))
		require.True(t, ok)
		for _, x := range ns[1:] {
			o, _ := x.reg.Whereis(fmt.Sprintf("dup-%s%d", pad, k))
			require.Equal(t, owner, o, "one owner of dup-%d everywhere", k)
		}
	}
	p2ptest.Eventually(t, time.Minute, func() bool {
		for _, x := range ns {
			if len(x.healedEvents()) == 0 {
				return false
			}
		}
		return true
	}, "every node reports its heal")
	total, events := healTotals(ns)
	full := fullStateBytes(t, net, ns, "fresh@10.0.4.99", time.Second, false, 2*time.Minute)
	// Each change is delivered to the half nodes of the other side; the
	// sum counts each byte at both ends.
	bound := uint64(2 * (tenBytesPerDelivery*d*half + tenBytesPerPair*half*half))
	wire := float64(total.Bytes) / 2 / float64(full)
	t.Logf("names=%d changes=%d (%.2f%%): heal %v over %d Healed events; full state %d bytes; wire/full=%.4f; bound %d",
		want, d, 100*float64(d)/float64(want), total, events, full, wire, bound)
	require.LessOrEqual(t, total.Bytes, bound, "heal bytes ≤ 2·(c·changes·nodes/2 + k·(nodes/2)²)")
	require.LessOrEqual(t, total.Bytes/2, full/20, "heal bytes ≤ 5 % of the full state under 1 % changed")
	require.Equal(t, uint64(dupNames), total.Conflicts, "Healed reports every conflict once")
}

// startReplCluster starts names (each seeded with the first, heal every
// second) and waits until every view is whole.
func startReplCluster(t *testing.T, net *p2ptest.Network, names []string, timeout time.Duration) []*replNode {
	t.Helper()
	var ns []*replNode
	for _, name := range names {
		var seeds []string
		if len(ns) > 0 {
			seeds = []string{ns[0].n.GossipAddr()}
		}
		ns = append(ns, startReplNode(t, net, name, seeds, time.Second, false))
	}
	p2ptest.Eventually(t, timeout, func() bool { return wholeView(ns) }, "whole")
	return ns
}

// stopReplCluster stops ns and lets their timers run out (fake clock).
func stopReplCluster(ns []*replNode) {
	stopReplNodes(ns)
	time.Sleep(10 * time.Second)
}
