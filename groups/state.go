package groups

import (
	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/crdt"
)

// state is a scope's replicated value: group -> memberships, a delta-state
// ORMap with pg's multiplicity. Each join adds a sibling under a new dot;
// a leave removes one dot of that pid in that group. Only the pid's own
// node adds or removes its dots (the single-writer rule), so the map
// needs no cross-node deletes and a node that is gone is purged locally.
type state = crdt.ORMap[string, Membership]

func newState(self crdt.ReplicaID) *state {
	return crdt.NewORMap(self, groupCodec{}, membershipCodec{})
}

// decodeState decodes a state or delta of a scope (what replication
// ships), refusing group names and memberships beyond the limits.
func decodeState(b []byte) (*state, error) {
	return crdt.DecodeORMap(b, groupCodec{}, membershipCodec{})
}

// ownTable is the owner's record of the dots of its own pids: per pid,
// per group, the dots of its memberships. A leave takes a dot from here in
// O(1), so it never scans the group. Only the owner node has entries for a
// pid; only the engine's goroutine touches it (inside Update). The pids
// are this node's, of its incarnation (Join refuses others), so they are
// keyed by ID; the dots are this node's replica's, so only their counters
// are kept. An entry is a map value: no allocation per pid.
type ownTable struct {
	self crdt.ReplicaID // the replica of every dot
	m    map[uint64]ownPid
}

func newOwnTable(self crdt.ReplicaID) ownTable {
	return ownTable{self: self, m: map[uint64]ownPid{}}
}

// ownPid holds one pid's dots' counters (a counter is never 0). The
// common pid in one group keeps that group's dots inline: its first in
// one, any later ones in more; more groups go to rest.
type ownPid struct {
	group string   // the inline group, while one is not 0
	one   uint64   // the inline group's first dot (0: no inline group)
	more  []uint64 // the inline group's later dots
	rest  map[string][]uint64
	n     int // memberships over all groups
}

func (t ownTable) dot(n uint64) crdt.Dot { return crdt.Dot{Replica: t.self, Counter: n} }

// add records a new membership of pid in group under dot, and reports
// whether pid had no membership before.
func (t ownTable) add(group string, pid nodal.Pid, dot crdt.Dot) (first bool) {
	o, ok := t.m[pid.ID]
	if !ok {
		t.m[pid.ID] = ownPid{group: group, one: dot.Counter, n: 1}
		return true
	}
	switch {
	case o.one != 0 && o.group == group:
		o.more = append(o.more, dot.Counter)
	case o.one == 0 && len(o.rest[group]) == 0:
		o.group, o.one = group, dot.Counter
	default:
		if o.rest == nil {
			o.rest = map[string][]uint64{}
		}
		o.rest[group] = append(o.rest[group], dot.Counter)
	}
	o.n++
	t.m[pid.ID] = o
	return false
}

// take forgets pid's latest membership of group and returns its dot; ok
// is false if pid is not a member, last is true if pid has no membership
// left.
func (t ownTable) take(group string, pid nodal.Pid) (dot crdt.Dot, ok, last bool) {
	o, ok := t.m[pid.ID]
	if !ok {
		return dot, false, false
	}
	var n uint64
	switch ds := o.rest[group]; {
	case o.one != 0 && o.group == group:
		if k := len(o.more); k > 0 {
			n, o.more = o.more[k-1], o.more[:k-1]
		} else {
			n, o.one, o.group, o.more = o.one, 0, "", nil
		}
	case len(ds) == 0:
		return dot, false, false
	case len(ds) == 1:
		n = ds[0]
		delete(o.rest, group)
	default:
		n = ds[len(ds)-1]
		o.rest[group] = ds[:len(ds)-1]
	}
	o.n--
	if o.n == 0 {
		delete(t.m, pid.ID)
		last = true
	} else {
		t.m[pid.ID] = o
	}
	return t.dot(n), true, last
}

// takeAll forgets every membership of pid and returns their dots.
func (t ownTable) takeAll(pid nodal.Pid) []crdt.Dot {
	o, ok := t.m[pid.ID]
	if !ok {
		return nil
	}
	delete(t.m, pid.ID)
	dots := make([]crdt.Dot, 0, o.n)
	if o.one != 0 {
		dots = append(dots, t.dot(o.one))
		for _, n := range o.more {
			dots = append(dots, t.dot(n))
		}
	}
	for _, ds := range o.rest {
		for _, n := range ds {
			dots = append(dots, t.dot(n))
		}
	}
	return dots
}
