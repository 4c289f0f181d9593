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
// pid; only the engine's goroutine touches it (inside Update).
type ownTable map[nodal.Pid]*ownPid

// ownPid holds one pid's dots. The common pid in one group keeps that
// group's dots inline (one allocation per pid); more groups go to rest.
type ownPid struct {
	group string      // the first group, when dots is not empty
	dots  []crdt.Dot  // its dots (backed by one while there is one)
	one   [1]crdt.Dot // room for the first dot
	rest  map[string][]crdt.Dot
	n     int // memberships over all groups
}

// of returns the dots of group (the inline list if it is the first).
func (o *ownPid) of(group string) []crdt.Dot {
	if len(o.dots) > 0 && o.group == group {
		return o.dots
	}
	return o.rest[group]
}

// set replaces the dots of group.
func (o *ownPid) set(group string, dots []crdt.Dot) {
	switch {
	case len(o.dots) > 0 && o.group == group:
		o.dots = dots
	case len(o.dots) == 0 && len(dots) > 0 && o.rest[group] == nil:
		o.group, o.dots = group, dots
	case len(dots) == 0:
		delete(o.rest, group)
	default:
		if o.rest == nil {
			o.rest = map[string][]crdt.Dot{}
		}
		o.rest[group] = dots
	}
}

// add records a new membership of pid in group under dot, and reports
// whether pid had no membership before.
func (t ownTable) add(group string, pid nodal.Pid, dot crdt.Dot) (first bool) {
	o := t[pid]
	if o == nil {
		o = &ownPid{group: group}
		o.one[0] = dot
		o.dots = o.one[:1]
		o.n = 1
		t[pid] = o
		return true
	}
	o.set(group, append(o.of(group), dot))
	o.n++
	return false
}

// take forgets pid's latest membership of group and returns its dot; ok
// is false if pid is not a member, last is true if pid has no membership
// left.
func (t ownTable) take(group string, pid nodal.Pid) (dot crdt.Dot, ok, last bool) {
	o := t[pid]
	if o == nil {
		return dot, false, false
	}
	dots := o.of(group)
	if len(dots) == 0 {
		return dot, false, false
	}
	dot = dots[len(dots)-1]
	o.set(group, dots[:len(dots)-1])
	o.n--
	if o.n == 0 {
		delete(t, pid)
		last = true
	}
	return dot, true, last
}

// takeAll forgets every membership of pid and returns their dots.
func (t ownTable) takeAll(pid nodal.Pid) []crdt.Dot {
	o := t[pid]
	if o == nil {
		return nil
	}
	delete(t, pid)
	dots := make([]crdt.Dot, 0, o.n)
	dots = append(dots, o.dots...)
	for _, ds := range o.rest {
		dots = append(dots, ds...)
	}
	return dots
}
