package groups

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/crdt"
)

// change is one membership that became visible (crdt.Added) or stopped
// being visible (crdt.Removed) in this replica, and why.
type change struct {
	op    crdt.Op
	group string
	dot   crdt.Dot
	m     Membership
	cause Cause
}

// index is the visible state of a scope, kept for reads: per group, its
// members keyed by pid with their memberships, so that a join or a leave
// costs O(1) whatever the group's size (pg rewrites the whole member list
// on every join). Members and LocalMembers are built on demand and cached
// until the group changes. The monitors are told of every change under the
// same lock, so an event is never lost between a snapshot and the
// monitor's start, and never reported twice.
type index struct {
	self string // this node's name: its pids are local

	mu       sync.RWMutex
	groups   map[string]*group
	scopeMon map[*Monitor]struct{}
	groupMon map[string]map[*Monitor]struct{}

	badOwner atomic.Uint64 // entries refused: pid not of the dot's node
}

type group struct {
	members map[nodal.Pid]member
	count   int         // memberships
	local   int         // memberships of local pids
	all     []nodal.Pid // cache of the members in pid order, or nil
	locals  []nodal.Pid // cache of the local members, or nil
}

// member holds a pid's memberships of a group, in no particular order:
// the first inline (a map value, no allocation), any more after it.
type member struct {
	one  entry
	more []entry
}

func (mb *member) count() int { return 1 + len(mb.more) }

func (mb *member) each(f func(entry)) {
	f(mb.one)
	for _, e := range mb.more {
		f(e)
	}
}

// entry is one membership: its dot's counter (the dot's replica is the
// member pid's node and incarnation: apply takes no other, see owned) and
// its metadata. Without the replica a member is 88 bytes of map slot
// instead of 112.
type entry struct {
	n    uint64
	meta []byte
}

// membershipDot is the dot of pid's membership e.
func membershipDot(pid nodal.Pid, e entry) crdt.Dot {
	return crdt.Dot{Replica: crdt.ReplicaID{Name: pid.Node, Epoch: pid.Incarnation}, Counter: e.n}
}

func newIndex(self string) *index {
	return &index{
		self:     self,
		groups:   map[string]*group{},
		scopeMon: map[*Monitor]struct{}{},
		groupMon: map[string]map[*Monitor]struct{}{},
	}
}

// owned reports whether the membership may be held under dot: only a
// pid's own node (at the pid's incarnation) writes its memberships.
func owned(d crdt.Dot, m Membership) bool {
	return m.Pid.Node == d.Replica.Name && m.Pid.Incarnation == d.Replica.Epoch
}

// apply makes changes visible and tells the monitors, in order: one event
// per run of changes with the same group, kind and cause, its pids sorted
// (Event.Pids is in pid order; a delta's changes come in dot order).
func (x *index) apply(changes []change) {
	if len(changes) == 0 {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	var ev Event
	flush := func() {
		if len(ev.Pids) > 0 {
			slices.SortFunc(ev.Pids, nodal.Pid.Compare)
			x.notify(ev)
		}
		ev = Event{}
	}
	for _, c := range changes {
		if !owned(c.dot, c.m) {
			x.badOwner.Add(1)
			continue
		}
		var ok bool
		kind := Joined
		if c.op == crdt.Added {
			ok = x.add(c)
		} else {
			kind = Left
			ok = x.remove(c)
		}
		if !ok {
			continue
		}
		if len(x.scopeMon) == 0 && len(x.groupMon) == 0 {
			continue // nobody to tell: no event built
		}
		if ev.Group != c.group || ev.Kind != kind || ev.Cause != c.cause {
			flush()
			ev = Event{Kind: kind, Group: c.group, Cause: c.cause}
		}
		ev.Pids = append(ev.Pids, c.m.Pid)
	}
	flush()
}

func (x *index) add(c change) bool {
	g := x.groups[c.group]
	if g == nil {
		g = &group{members: map[nodal.Pid]member{}}
		x.groups[c.group] = g
	}
	e := entry{c.dot.Counter, c.m.Meta} // c.dot's replica is the pid's (owned)
	if mb, ok := g.members[c.m.Pid]; !ok {
		g.members[c.m.Pid] = member{one: e}
	} else {
		if mb.one.n == e.n || slices.ContainsFunc(mb.more, func(o entry) bool { return o.n == e.n }) {
			return false
		}
		mb.more = append(mb.more, e)
		g.members[c.m.Pid] = mb
	}
	g.count++
	g.all = nil
	if c.m.Pid.Node == x.self {
		g.local++
		g.locals = nil
	}
	return true
}

func (x *index) remove(c change) bool {
	g := x.groups[c.group]
	if g == nil {
		return false
	}
	mb, ok := g.members[c.m.Pid]
	if !ok {
		return false
	}
	n := c.dot.Counter // c.dot's replica is the pid's (owned)
	switch i := slices.IndexFunc(mb.more, func(e entry) bool { return e.n == n }); {
	case mb.one.n == n && len(mb.more) == 0:
		delete(g.members, c.m.Pid)
	case mb.one.n == n:
		last := len(mb.more) - 1
		mb.one, mb.more[last] = mb.more[last], entry{}
		mb.more = mb.more[:last]
		g.members[c.m.Pid] = mb
	case i >= 0:
		last := len(mb.more) - 1
		mb.more[i], mb.more[last] = mb.more[last], entry{}
		mb.more = mb.more[:last]
		g.members[c.m.Pid] = mb
	default:
		return false
	}
	g.count--
	g.all = nil
	if c.m.Pid.Node == x.self {
		g.local--
		g.locals = nil
	}
	if g.count == 0 {
		delete(x.groups, c.group) // groups are implicit: empty is absent
	}
	return true
}

// notify hands ev to the monitors of the scope and of its group; x.mu is
// held.
func (x *index) notify(ev Event) {
	for m := range x.scopeMon {
		x.deliver(m, ev)
	}
	for m := range x.groupMon[ev.Group] {
		x.deliver(m, ev)
	}
}

// deliver sends ev to m without blocking; a monitor whose buffer is full
// ends with ErrMonitorOverflow. x.mu is held.
func (x *index) deliver(m *Monitor, ev Event) {
	select {
	case m.ch <- ev:
	default:
		x.endLocked(m, ErrMonitorOverflow)
	}
}

// endLocked removes m and closes its channel with err; x.mu is held.
func (x *index) endLocked(m *Monitor, err error) {
	if m.closed {
		return
	}
	m.closed = true
	m.err.Store(&err)
	if m.group == nil {
		delete(x.scopeMon, m)
	} else if set := x.groupMon[*m.group]; set != nil {
		delete(set, m)
		if len(set) == 0 {
			delete(x.groupMon, *m.group)
		}
	}
	close(m.ch)
}

func (x *index) end(m *Monitor, err error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.endLocked(m, err)
}

// endAll ends every monitor with err.
func (x *index) endAll(err error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for m := range x.scopeMon {
		x.endLocked(m, err)
	}
	for _, set := range x.groupMon {
		for m := range set {
			x.endLocked(m, err)
		}
	}
}

// ---- reads ----

// sortedPids returns the pids of g (only local ones if local), with one
// copy per membership, in pid order.
func (g *group) sortedPids(self string, local bool) []nodal.Pid {
	n := g.count
	if local {
		n = g.local
	}
	out := make([]nodal.Pid, 0, n)
	for p, mb := range g.members {
		if local && p.Node != self {
			continue
		}
		for range mb.count() {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, nodal.Pid.Compare)
	return out
}

// members returns a copy of the group's members (local only if local).
func (x *index) members(name string, local bool) []nodal.Pid {
	x.mu.RLock()
	g := x.groups[name]
	if g == nil {
		x.mu.RUnlock()
		return nil
	}
	cached := g.all
	if local {
		cached = g.locals
	}
	if cached != nil {
		out := slices.Clone(cached)
		x.mu.RUnlock()
		return out
	}
	x.mu.RUnlock()
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.cachedLocked(name, local))
}

// cachedLocked returns the cached member list of a group, building it;
// x.mu is held for writing. The result must not be modified.
func (x *index) cachedLocked(name string, local bool) []nodal.Pid {
	g := x.groups[name]
	if g == nil {
		return nil
	}
	if local {
		if g.locals == nil {
			g.locals = g.sortedPids(x.self, true)
		}
		return g.locals
	}
	if g.all == nil {
		g.all = g.sortedPids(x.self, false)
	}
	return g.all
}

// memberships returns the group's memberships with their metadata, in
// pid then dot order.
func (x *index) memberships(name string) []Membership {
	x.mu.RLock()
	defer x.mu.RUnlock()
	g := x.groups[name]
	if g == nil {
		return nil
	}
	type md struct {
		m Membership
		d crdt.Dot
	}
	all := make([]md, 0, g.count)
	for p, mb := range g.members {
		mb.each(func(e entry) {
			all = append(all, md{Membership{p, clone(e.meta)}, membershipDot(p, e)})
		})
	}
	slices.SortFunc(all, func(a, b md) int {
		if c := a.m.Pid.Compare(b.m.Pid); c != 0 {
			return c
		}
		return a.d.Compare(b.d)
	})
	out := make([]Membership, len(all))
	for i, a := range all {
		out[i] = a.m
	}
	return out
}

func (x *index) count(name string, local bool) int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	g := x.groups[name]
	if g == nil {
		return 0
	}
	if local {
		return g.local
	}
	return g.count
}

// whichGroups returns the groups with at least one visible member (with a
// local one, if local), sorted.
func (x *index) whichGroups(local bool) []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]string, 0, len(x.groups))
	for name, g := range x.groups {
		if !local || g.local > 0 {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// counts returns the number of memberships of every group.
func (x *index) counts() map[string]int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make(map[string]int, len(x.groups))
	for name, g := range x.groups {
		out[name] = g.count
	}
	return out
}

// snapshotScope registers m as a scope monitor and returns every group's
// members, atomically with respect to apply.
func (x *index) snapshotScope(m *Monitor) map[string][]nodal.Pid {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make(map[string][]nodal.Pid, len(x.groups))
	for _, name := range slices.Sorted(maps.Keys(x.groups)) {
		out[name] = slices.Clone(x.cachedLocked(name, false))
	}
	x.scopeMon[m] = struct{}{}
	return out
}

// snapshotGroup registers m as a monitor of group name and returns its
// members, atomically with respect to apply.
func (x *index) snapshotGroup(name string, m *Monitor) []nodal.Pid {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := slices.Clone(x.cachedLocked(name, false))
	set := x.groupMon[name]
	if set == nil {
		set = map[*Monitor]struct{}{}
		x.groupMon[name] = set
	}
	set[m] = struct{}{}
	return out
}
