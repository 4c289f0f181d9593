package registry

import (
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/crdt"
	"github.com/nodal-go/nodal/crdt/crdttest"
)

var lawNames = []string{"a", "b", "c"}

// The CRDT laws on the registry's state, under the registry's own
// mutations: each replica adds claims of its own pids, replaces its own
// claims (metadata updates) and removes its own dots (unregister, exit,
// stepping down).
func TestLawsRegistryState(t *testing.T) {
	type st = *crdt.ORMap[string, heldClaim]
	crdttest.CheckLaws(t, crdttest.Gen[st]{
		New: func(r crdt.ReplicaID, limit int) st {
			m := crdt.NewORMap(r, nameCodec{}, regCodec{})
			m.SetLogLimit(limit)
			return m
		},
		Mutate: func(t *rapid.T, m st) st {
			self := m.Self()
			var own []crdt.Dot
			for _, d := range m.LiveDots() {
				if d.Replica == self {
					own = append(own, d)
				}
			}
			name := rapid.SampledFrom(lawNames).Draw(t, "name")
			g := toClaim(Registration{
				Pid:      nodal.Pid{Node: self.Name + "@h", ID: rapid.Uint64Range(1, 3).Draw(t, "pid"), Incarnation: self.Epoch},
				Meta:     rapid.SampledFrom([]string{"", "m"}).Draw(t, "meta"),
				At:       rapid.Int64Range(0, 5).Draw(t, "at"),
				Resolver: LowerNodeExit,
			})
			switch op := rapid.IntRange(0, 3).Draw(t, "op"); {
			case op >= 2 && len(own) > 0:
				return m.RemoveDots(rapid.SampledFrom(own).Draw(t, "dot"))
			case op == 1 && len(own) > 0:
				return m.Replace(name, g, rapid.SampledFrom(own).Draw(t, "dot"))
			default:
				return m.Add(name, g)
			}
		},
		Decode: func(b []byte) (st, error) { return crdt.DecodeORMap(b, nameCodec{}, regCodec{}) },
	})
}

// Every built-in resolver picks the same claim whatever the order of the
// claims (given distinct nodes and times), so the canonical order only
// breaks ties.
func TestResolversOrderIndependent(t *testing.T) {
	table := builtins()
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(2, 5).Draw(t, "n")
		nodes := rapid.Permutation([]string{"a@h", "b@h", "c@h", "d@h", "e@h"}).Draw(t, "nodes")
		ats := rapid.Permutation([]int64{1, 2, 3, 4, 5}).Draw(t, "ats")
		claims := make([]Registration, n)
		for i := range claims {
			claims[i] = Registration{Pid: nodal.Pid{Node: nodes[i], ID: 1, Incarnation: 1}, At: ats[i]}
		}
		perm := rapid.Permutation(claims).Draw(t, "perm")
		for _, name := range builtinNames {
			a := table[name]("x", claims)
			b := table[name]("x", perm)
			if a.Action != b.Action || (a.Winner < 0) != (b.Winner < 0) {
				t.Fatalf("%s: %+v vs %+v", name, a, b)
			}
			if a.Winner >= 0 && claims[a.Winner] != perm[b.Winner] {
				t.Fatalf("%s: winner %v vs %v", name, claims[a.Winner], perm[b.Winner])
			}
		}
	})
}

// A resolver that panics, returns an index out of range, or is not the
// same for every claim is replaced by the default.
func TestResolveFallsBack(t *testing.T) {
	table := builtins()
	table["panics"] = func(string, []Registration) Resolution { panic("boom") }
	table["bad"] = func(string, []Registration) Resolution { return Resolution{Winner: 7} }
	def := table[LowerNodeExit]
	c := func(node, res string) Registration {
		return Registration{Pid: nodal.Pid{Node: node, ID: 1, Incarnation: 1}, Resolver: res}
	}
	for _, tc := range []struct {
		claims []Registration
		failed bool
	}{
		{[]Registration{c("b@h", "panics"), c("a@h", "panics")}, true},
		{[]Registration{c("b@h", "bad"), c("a@h", "bad")}, true},
		{[]Registration{c("b@h", KeepNewest), c("a@h", LowerNodeExit)}, true},
		{[]Registration{c("b@h", "nope"), c("a@h", "nope")}, true},
		{[]Registration{c("b@h", LowerNodeNotify), c("a@h", LowerNodeNotify)}, false},
	} {
		res, failed, why := resolve(table, def, "x", slices.Clone(tc.claims))
		if failed != tc.failed || res.Winner != 1 {
			t.Fatalf("%v: got %+v failed=%v (%s)", tc.claims, res, failed, why)
		}
	}
}

// syn's zombie (found by its TLA+ model): a node's stale view of a
// registration (sent before an unregister) arrives after the unregister. A
// removed dot is in the causal context, so the stale state resurrects
// nothing, whatever the order of arrival.
func TestZombieInterleaving(t *testing.T) {
	a := crdt.NewORMap(crdt.ReplicaID{Name: "a@h", Epoch: 1}, nameCodec{}, regCodec{})
	b := crdt.NewORMap(crdt.ReplicaID{Name: "b@h", Epoch: 1}, nameCodec{}, regCodec{})
	g := toClaim(Registration{Pid: nodal.Pid{Node: "a@h", ID: 1, Incarnation: 1}, Resolver: LowerNodeExit})
	add := a.Add("x", g)
	stale := a.Clone() // what a discover/sync answer carried
	dot := add.LiveDots()[0]
	unreg := a.RemoveDots(dot)
	b.Join(add)
	b.Join(unreg)
	b.Join(stale) // the answer queued behind the unregister
	if b.Contains("x") {
		t.Fatalf("zombie: %s", b)
	}
	c := crdt.NewORMap(crdt.ReplicaID{Name: "c@h", Epoch: 1}, nameCodec{}, regCodec{})
	c.Join(unreg) // the unregister first, then the registration
	c.Join(stale)
	c.Join(add)
	if c.Contains("x") {
		t.Fatalf("zombie after reordering: %s", c)
	}
}
