package heal_test

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/groups"
	"github.com/nodal-go/nodal/heal"
	"github.com/nodal-go/nodal/p2p/p2ptest"
	"github.com/nodal-go/nodal/registry"
)

// replNode is one node of a heal test cluster: the global registry and a
// groups scope, both attached to heal as reconcilers (as cmd/node's start
// does), and the node's Healed events.
type replNode struct {
	n   *nodal.Node
	reg *registry.Registry
	grp *groups.Scope
	h   *heal.Heal
	sub *heal.Subscription

	mu     sync.Mutex
	healed []heal.Healed
	done   chan struct{}
}

// collect keeps x's Healed events until the subscription closes.
func (x *replNode) collect() {
	defer close(x.done)
	for ev := range x.sub.Events() {
		if h, ok := ev.(heal.Healed); ok {
			x.mu.Lock()
			x.healed = append(x.healed, h)
			x.mu.Unlock()
		}
	}
}

// healedEvents returns x's Healed events so far.
func (x *replNode) healedEvents() []heal.Healed {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.healed)
}

// idle is a process that waits for its end: the holder of a name.
func idle(p *nodal.Process) error { <-p.Context().Done(); return nil }

// startReplNode starts name on net with the registry and groups attached
// to heal; seeds may be nil for the first node.
func startReplNode(tb testing.TB, net *p2ptest.Network, name string, seeds []string, interval time.Duration, fastDead bool) *replNode {
	tb.Helper()
	cfg := nodal.DefaultLocalConfig(name, "heal-bytes-cookie")
	cfg.P2P.Network, cfg.Stdout, cfg.Seeds = net, io.Discard, seeds
	if fastDead {
		cfg.P2P.TuneMemberlist = func(c *memberlist.Config) { c.GossipToTheDeadTime = time.Second }
	}
	n, err := nodal.Start(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	reg, err := registry.New(n, registry.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	grp, err := groups.New(n, groups.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	h, err := heal.New(n, heal.Config{ReconnectInterval: interval})
	if err != nil {
		tb.Fatal(err)
	}
	if err := h.AddReconciler("registry", heal.CountedSync(reg.Sync, func(peers []string) heal.Exchange {
		return heal.Exchange(reg.ExchangedSinceUp(peers...))
	})); err != nil {
		tb.Fatal(err)
	}
	if err := h.AddReconciler("groups", heal.CountedSync(grp.Sync, func(peers []string) heal.Exchange {
		return heal.Exchange(grp.ExchangedSinceUp(peers...))
	})); err != nil {
		tb.Fatal(err)
	}
	x := &replNode{n: n, reg: reg, grp: grp, h: h, sub: h.Subscribe(256), done: make(chan struct{})}
	go x.collect()
	return x
}

// stopReplNodes stops every node and waits for their event collectors.
func stopReplNodes(ns []*replNode) {
	for _, x := range ns {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = x.n.Stop(ctx)
		cancel()
		<-x.done
	}
}

// wholeView reports whether every node reaches all of ns and is neither
// partitioned nor syncing.
func wholeView(ns []*replNode) bool {
	for _, x := range ns {
		if v := x.h.View(); len(v.Reachable) != len(ns) || v.Partitioned || v.Syncing {
			return false
		}
	}
	return true
}

// groupsOf is a scope's view: each group's members, sorted.
func groupsOf(g *groups.Scope) map[string][]string {
	out := map[string][]string{}
	for _, name := range g.WhichGroups() {
		var ms []string
		for _, p := range g.Members(name) {
			ms = append(ms, p.String())
		}
		slices.Sort(ms)
		out[name] = ms
	}
	return out
}

// replicasEqual reports whether every node has the same registered names
// (same holders) and the same group members; want, when positive, is the
// number of names each must have.
func replicasEqual(ns []*replNode, want int) bool {
	if want > 0 && ns[0].reg.Len() != want {
		return false
	}
	for _, x := range ns[1:] {
		if x.reg.Len() != ns[0].reg.Len() {
			return false // cheap check first
		}
	}
	r0, g0 := ns[0].reg.Registered(), groupsOf(ns[0].grp)
	for _, x := range ns[1:] {
		if !maps.Equal(r0, x.reg.Registered()) || !maps.EqualFunc(g0, groupsOf(x.grp), slices.Equal) {
			return false
		}
	}
	return true
}

// registerMany has x register count names prefix0..prefix(count-1), each
// held by a new process, and returns the processes.
func registerMany(tb testing.TB, x *replNode, prefix string, count int) []nodal.Pid {
	tb.Helper()
	pids := make([]nodal.Pid, 0, count)
	for i := range count {
		pid, err := x.n.Spawn(idle)
		if err != nil {
			tb.Fatal(err)
		}
		if err := x.reg.Register(context.Background(), fmt.Sprintf("%s%d", prefix, i), pid); err != nil {
			tb.Fatal(err)
		}
		pids = append(pids, pid)
	}
	return pids
}

// fullStateBytes is the reference for heal bytes: the registry and groups
// bytes a fresh node exchanges with one node of the cluster, ns[0], to take
// in the whole state (join, digest exchange, pull of every entry), counted
// by the replica's byte counters (those Healed reports come from). The fresh node is cut
// from the other nodes, so it pulls one copy (joined to all, it pulls from
// several at once; cut, it hides the names of the nodes it cannot reach,
// so it is done when it received as many live entries as ns[0] holds).
// When more than one copy arrived by then, the bytes are scaled to one.
// It leaves again; the cut is healed.
func fullStateBytes(tb testing.TB, net *p2ptest.Network, ns []*replNode, name string, interval time.Duration, fastDead bool, wait time.Duration) uint64 {
	tb.Helper()
	var others []string
	for _, x := range ns[1:] {
		others = append(others, x.n.Name())
	}
	net.Split([]string{name}, others)
	defer net.Heal()
	names := uint64(ns[0].reg.Len())
	var members uint64
	for _, g := range ns[0].grp.WhichGroups() {
		members += uint64(len(ns[0].grp.Memberships(g)))
	}
	fresh := startReplNode(tb, net, name, []string{ns[0].n.GossipAddr()}, interval, fastDead)
	defer stopReplNodes([]*replNode{fresh})
	// Read the counters the moment every entry is in: a digest exchange
	// that finds the fresh node still behind while a large pull is on its
	// way starts another (whole) pull, which is not part of one copy.
	// The replicas' total counters, not ExchangedSinceUp(ns[0]): the cut
	// makes ns[0] flap in the fresh node's view, and each NodeUp restarts
	// that count; all the fresh node's traffic is with ns[0].
	var bytes, entries uint64
	p2ptest.Eventually(tb, wait, func() bool {
		rs, gs := fresh.reg.Stats(), fresh.grp.Stats()
		if rs.EntriesReceived < names || gs.EntriesReceived < members {
			return false
		}
		bytes = rs.BytesSent + rs.BytesReceived + gs.BytesSent + gs.BytesReceived
		entries = rs.EntriesReceived + gs.EntriesReceived
		return true
	}, "fresh node took in every entry")
	if entries > names+members { // more than one copy arrived: scale to one
		return bytes * (names + members) / entries
	}
	return bytes
}

// healTotals sums the Exchange of every node's Healed events.
func healTotals(ns []*replNode) (heal.Exchange, int) {
	var x heal.Exchange
	events := 0
	for _, n := range ns {
		for _, h := range n.healedEvents() {
			x = x.Add(h.Exchange)
			events++
		}
	}
	return x, events
}
