package heal_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// benchNames is the registry's size before the split in
// BenchmarkHealConverge: 10 changes are 0.01 % of it, 1,000 are 1 %.
const benchNames = 100_000

// benchInterval is heal's ReconnectInterval in BenchmarkHealConverge: the
// goal is every replica equal within it plus 500 ms of the network coming
// back.
const benchInterval = time.Second

// BenchmarkHealConverge measures, in real time on the in-process network,
// a half/half split of a cluster running the registry (benchNames names)
// and a groups scope, both attached to heal as reconcilers, with changes
// made on both sides during the split (new names, unregistered names,
// group joins, round robin over all nodes). The split lasts beyond
// memberlist's dead-node window (lowered to 1 s), so only heal rejoins
// the sides. From net.Heal it reports:
//   - ms/equal: until every node's registry and groups are equal (polled
//     every 2 ms; ms/check is what the successful poll cost, included);
//   - ms/whole: until every node's heal view is whole again (reconnected,
//     reconcilers done, Healed emitted);
//   - ms/sync: the longest Healed.Converged over the nodes, from a
//     node's last peer returning to its reconcilers' end (ms/whole minus
//     this is mostly the wait for heal's next reconnect attempt);
//   - heal-bytes: the sum of Exchange.Bytes over every node's Healed
//     events (each byte counted at both ends), and wire/full: half that
//     over full-bytes, the registry and groups bytes a fresh node
//     exchanges to take in the whole state (measured after the heal, in
//     the same run).
func BenchmarkHealConverge(b *testing.B) {
	for _, size := range []int{3, 10} {
		for _, changes := range []int{10, 1000, 10000} {
			b.Run(fmt.Sprintf("nodes=%d/changes=%d", size, changes), func(b *testing.B) {
				benchHealConverge(b, size, changes)
			})
		}
	}
}

func benchHealConverge(b *testing.B, size, changes int) {
	net := p2ptest.New(p2ptest.WithSeed(31))
	defer net.Close()
	var ns []*replNode
	var names []string
	for i := range size {
		name := fmt.Sprintf("n%d@10.0.3.%d", i, i+1)
		names = append(names, name)
		var seeds []string
		if len(ns) > 0 {
			seeds = []string{ns[0].n.GossipAddr()}
		}
		ns = append(ns, startReplNode(b, net, name, seeds, benchInterval, true))
	}
	defer stopReplNodes(ns)
	p2ptest.Eventually(b, 2*time.Minute, func() bool { return wholeView(ns) }, "whole")
	ctx := context.Background()
	held := make([][]nodal.Pid, size)
	per := benchNames / size
	for i, x := range ns {
		held[i] = registerMany(b, x, fmt.Sprintf("base-%d-", i), per)
	}
	p2ptest.Eventually(b, 5*time.Minute, func() bool { return replicasEqual(ns, per*size) }, "base state everywhere")

	var whole, equal, check, synced time.Duration
	var addedBefore []string
	removedBefore := 0
	var bytes uint64
	b.ResetTimer()
	for iter := range b.N {
		b.StopTimer()
		for _, x := range ns {
			x.mu.Lock()
			x.healed = nil
			x.mu.Unlock()
		}
		half := size / 2
		net.Split(names[:half], names[half:])
		p2ptest.Eventually(b, 2*time.Minute, func() bool {
			for j, x := range ns {
				want := half
				if j >= half {
					want = size - half
				}
				if v := x.h.View(); len(v.Reachable) != want || !v.Partitioned {
					return false
				}
			}
			return true
		}, "split seen")
		next := make([]int, size) // per node: the next base name to unregister, holder to join
		var added, removed []string
		for c := range changes {
			j := c % size
			x := ns[j]
			switch (c / size) % 4 {
			case 0, 1:
				pid, err := x.n.Spawn(idle)
				if err != nil {
					b.Fatal(err)
				}
				name := fmt.Sprintf("split-%d-%d", iter, c)
				if err := x.reg.Register(ctx, name, pid); err != nil {
					b.Fatal(err)
				}
				added = append(added, name)
			case 2:
				name := fmt.Sprintf("base-%d-%d", j, next[j])
				if err := x.reg.Unregister(ctx, name); err != nil {
					b.Fatal(err)
				}
				removed = append(removed, name)
				next[j]++
			case 3:
				if err := x.grp.Join(ctx, fmt.Sprintf("g%d", c%50), held[j][next[j]]); err != nil {
					b.Fatal(err)
				}
				next[j]++
			}
		}
		time.Sleep(4 * benchInterval) // beyond the dead-node window; heal's backoff at its cap (ReconnectInterval)
		b.StartTimer()
		start := time.Now()
		net.Heal()
		wantLen := per*size - removedBefore + len(addedBefore) + len(added) - len(removed)
		var tWhole, tEqual time.Duration
		for tWhole == 0 || tEqual == 0 {
			if tWhole == 0 && wholeView(ns) {
				tWhole = time.Since(start)
			}
			if tEqual == 0 {
				t0 := time.Now()
				if changesEverywhere(ns, wantLen, added, removed) {
					tEqual = time.Since(start)
					check += time.Since(t0)
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
		whole += tWhole
		equal += tEqual
		b.StopTimer()
		// The cheap check above (sizes, the changed names, groups) implies
		// this one; verify it anyway, untimed.
		p2ptest.Eventually(b, time.Minute, func() bool { return replicasEqual(ns, wantLen) }, "all replicas equal")
		removedBefore += len(removed)
		addedBefore = append(addedBefore, added...)
		p2ptest.Eventually(b, time.Minute, func() bool {
			for _, x := range ns {
				if len(x.healedEvents()) == 0 {
					return false
				}
			}
			return true
		}, "every node reports its heal")
		x, _ := healTotals(ns)
		bytes += x.Bytes
		var conv time.Duration
		for _, n := range ns {
			for _, h := range n.healedEvents() {
				conv = max(conv, h.Converged)
			}
		}
		synced += conv
		b.StartTimer()
	}
	b.StopTimer()
	full := fullStateBytes(b, net, ns, "fresh@10.0.3.99", benchInterval, true, 5*time.Minute)
	n := float64(b.N)
	b.ReportMetric(float64(whole.Milliseconds())/n, "ms/whole")
	b.ReportMetric(float64(equal.Milliseconds())/n, "ms/equal")
	b.ReportMetric(float64(check.Milliseconds())/n, "ms/check")
	b.ReportMetric(float64(synced.Milliseconds())/n, "ms/sync")
	b.ReportMetric(float64(bytes)/n, "heal-bytes")
	b.ReportMetric(float64(full), "full-bytes")
	b.ReportMetric(float64(bytes)/2/n/float64(full), "wire/full")
	b.ReportMetric(0, "ns/op")
}

// changesEverywhere is the benchmark's cheap convergence check: every node
// has want names, holds each added name by the same process and none of
// the removed names, and has the same groups. As the nodes were equal
// before the split and only these names changed, it means the registries
// are equal (replicasEqual verifies it, untimed).
func changesEverywhere(ns []*replNode, want int, added, removed []string) bool {
	for _, x := range ns {
		if x.reg.Len() != want {
			return false
		}
	}
	for _, name := range added {
		p0, ok := ns[0].reg.Whereis(name)
		if !ok {
			return false
		}
		for _, x := range ns[1:] {
			if p, _ := x.reg.Whereis(name); p != p0 {
				return false
			}
		}
	}
	for _, name := range removed {
		for _, x := range ns {
			if _, ok := x.reg.Whereis(name); ok {
				return false
			}
		}
	}
	g0 := groupsOf(ns[0].grp)
	for _, x := range ns[1:] {
		if !maps.EqualFunc(g0, groupsOf(x.grp), slices.Equal) {
			return false
		}
	}
	return true
}
