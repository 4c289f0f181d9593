package registry

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/crdt"
	"github.com/nodal-go/nodal/internal/replica"
)

// EventKind says whether a name gained or lost its holder in this node's
// view.
type EventKind int

// Event kinds.
const (
	// Registered: Pid holds Name now.
	Registered EventKind = iota + 1
	// Unregistered: Pid no longer holds Name.
	Unregistered
)

// String returns the kind in words.
func (k EventKind) String() string {
	switch k {
	case Registered:
		return "registered"
	case Unregistered:
		return "unregistered"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Reason says why a name's holder changed.
type Reason int

// Reasons of an Event.
const (
	// ReasonRegistered: a registration (here or, arriving, elsewhere).
	ReasonRegistered Reason = iota + 1
	// ReasonUnregistered: Unregister. On other nodes than the holder's, a
	// holder's exit also shows as this reason: only the owner's node
	// watches its processes.
	ReasonUnregistered
	// ReasonProcessExit: the holder ended (on its own node).
	ReasonProcessExit
	// ReasonNodeDown: the holder's node is down here (its claim is hidden)
	// or gone for good (purged).
	ReasonNodeDown
	// ReasonNodeUp: the holder's node is up again; its claim shows again.
	ReasonNodeUp
	// ReasonConflict: two or more claims met and the resolver chose.
	ReasonConflict
)

// String returns the reason in words.
func (r Reason) String() string {
	switch r {
	case ReasonRegistered:
		return "registered"
	case ReasonUnregistered:
		return "unregistered"
	case ReasonProcessExit:
		return "process exit"
	case ReasonNodeDown:
		return "node down"
	case ReasonNodeUp:
		return "node up"
	case ReasonConflict:
		return "conflict"
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// Event is one change of a name's holder, as this node saw it.
type Event struct {
	Kind   EventKind
	Name   string
	Pid    nodal.Pid
	Reason Reason
}

// String describes the event, e.g. `"db" registered <a@h.5.1> (conflict)`.
func (e Event) String() string {
	return fmt.Sprintf("%q %v %v (%v)", e.Name, e.Kind, e.Pid, e.Reason)
}

// WatchBuffer is how many events a Watch holds for a slow reader; when it
// is full the watch ends with ErrWatchOverflow.
const WatchBuffer = 4096

// ErrWatchOverflow ends a Watch whose reader fell WatchBuffer events
// behind.
var ErrWatchOverflow = errors.New("registry: watch overflow: events were lost")

// Watch is a subscription to a registry's events (Monitor).
type Watch struct {
	// C delivers the events in order; it is closed when the watch ends.
	C <-chan Event

	r      *Registry
	c      chan Event
	err    error
	closed bool
}

// Monitor returns the visible names with their holders and a Watch that
// delivers every later change, in order, strictly after that snapshot.
func (r *Registry) Monitor(ctx context.Context) (map[string]nodal.Pid, *Watch, error) {
	w := &Watch{r: r, c: make(chan Event, WatchBuffer)}
	w.C = w.c
	var snap map[string]nodal.Pid
	err := r.rep.Update(ctx, func(*replica.State[string, heldClaim]) error {
		r.monMu.Lock()
		defer r.monMu.Unlock()
		if r.stopped.Load() {
			return ErrStopped
		}
		snap = r.idx.all()
		r.mons[w] = struct{}{}
		r.nmons.Store(int32(len(r.mons)))
		return nil
	})
	if err != nil {
		return nil, nil, r.mapErr(err)
	}
	return snap, w, nil
}

// Stop ends the watch and closes C.
func (w *Watch) Stop() {
	w.r.monMu.Lock()
	defer w.r.monMu.Unlock()
	delete(w.r.mons, w)
	w.r.nmons.Store(int32(len(w.r.mons)))
	w.close(nil)
}

// Err returns why the watch ended: nil while it runs or after Stop,
// ErrWatchOverflow or ErrStopped.
func (w *Watch) Err() error {
	w.r.monMu.Lock()
	defer w.r.monMu.Unlock()
	return w.err
}

// close ends the watch; the caller holds r.monMu.
func (w *Watch) close(err error) {
	if w.closed {
		return
	}
	w.closed, w.err = true, err
	close(w.c)
}

func (r *Registry) emit(ev Event) {
	if r.nmons.Load() == 0 {
		return
	}
	r.monMu.Lock()
	defer r.monMu.Unlock()
	for w := range r.mons {
		select {
		case w.c <- ev:
		default:
			w.close(ErrWatchOverflow)
			delete(r.mons, w)
			r.nmons.Store(int32(len(r.mons)))
		}
	}
}

// reasonOf maps a replica change to an event reason.
func (r *Registry) reasonOf(c replica.Change[string, heldClaim]) Reason {
	switch c.Reason {
	case replica.Local:
		if len(r.why) > 0 { // else nothing set a reason: a registration
			if why, ok := r.why[c.Dot]; ok {
				delete(r.why, c.Dot)
				return why
			}
		}
		if c.Op == crdt.Added {
			return ReasonRegistered
		}
		return ReasonUnregistered
	case replica.Remote:
		if c.Op == crdt.Added {
			return ReasonRegistered
		}
		return ReasonUnregistered
	case replica.NodeUp:
		return ReasonNodeUp
	default: // NodeDown, Purged
		return ReasonNodeDown
	}
}

// onChange runs on the engine's goroutine: it settles each touched name
// (resolve, act on local losers, update the read index, tell watchers).
func (r *Registry) onChange(s *replica.State[string, heldClaim], cs []replica.Change[string, heldClaim]) {
	r.order, r.whys = r.order[:0], r.whys[:0]
	if slices.IsSortedFunc(cs, func(a, b replica.Change[string, heldClaim]) int { return strings.Compare(a.Key, b.Key) }) {
		// A join's changes come by name: each name's changes are adjacent.
		for i, c := range cs {
			why := r.reasonOf(c)
			if i == 0 || cs[i-1].Key != c.Key {
				r.order, r.whys = append(r.order, c.Key), append(r.whys, why)
			} else if last := &r.whys[len(r.whys)-1]; *last != ReasonConflict { // a conflict in the batch names the change
				*last = why
			}
		}
	} else {
		clear(r.touched)
		for _, c := range cs {
			if _, ok := r.touched[c.Key]; !ok {
				r.order = append(r.order, c.Key)
			}
			why := r.reasonOf(c)
			if r.touched[c.Key] != ReasonConflict {
				r.touched[c.Key] = why
			}
		}
		for _, name := range r.order {
			r.whys = append(r.whys, r.touched[name])
		}
	}
	for i, name := range r.order {
		r.settle(s, name, r.whys[i])
	}
	r.sendWatchQ()
}

func (r *Registry) settle(s *replica.State[string, heldClaim], name string, reason Reason) {
	r.every = s.Map().AppendSiblings(r.every[:0], name)
	r.sibs = r.sibs[:0]
	for _, sib := range r.every {
		if s.Visible(sib.Dot.Replica) {
			r.sibs = append(r.sibs, sib)
		}
	}
	r.contest(name)
	var win heldClaim
	var origin crdt.ReplicaID
	has, hidden := false, false
	switch len(r.sibs) {
	case 0:
		if len(r.every) == 1 { // kept, hidden: shown again with its origin
			win, origin, has, hidden = r.every[0].Value, r.every[0].Dot.Replica, true, true
		}
	case 1:
		win, origin, has = r.sibs[0].Value, r.sibs[0].Dot.Replica, true
	default:
		reason = ReasonConflict
		r.claims = r.claims[:0]
		for _, sib := range r.sibs {
			r.claims = append(r.claims, sib.Value.reg())
		}
		res, failed, why := resolve(r.table, r.defFunc, name, r.claims)
		if failed {
			r.resolverFailures.Add(1)
			log.Warnw("conflict resolved by the default resolver", "scope", r.scope, "name", name, "why", why)
		}
		if res.Winner >= 0 {
			win, origin, has = r.sibs[res.Winner].Value, r.sibs[res.Winner].Dot.Replica, true
		}
		for i, sib := range r.sibs {
			if i == res.Winner || sib.Dot.Replica != s.Self() {
				continue
			}
			c := localClaim{id: sib.Value.id, n: sib.Dot.Counter} // a local claim: its dot is ours
			other := r.claims[(i+1)%len(r.claims)].Pid
			if has {
				other = win.pid()
			}
			r.loseClaim(s, name, c, other, res.Action)
			if has {
				continue
			}
			// Nobody keeps the name: tell the other claimants' owners, who
			// may not see our claim before it is gone.
			for j, o := range r.sibs {
				if j != i && o.Dot.Replica != s.Self() {
					s.Notify(o.Dot.Replica.Name, conflictNotice{name: name, from: sib.Dot, fromClaim: sib.Value, to: o.Dot}.encode())
				}
			}
		}
	}
	old, had := r.idx.swap(name, win.ref(), origin, hidden, has)
	shown := has && !hidden
	if had && (!shown || !old.same(win.ref())) {
		r.emit(Event{Kind: Unregistered, Name: name, Pid: old.pid(), Reason: reason})
	}
	if shown && (!had || !old.same(win.ref())) {
		r.emit(Event{Kind: Registered, Name: name, Pid: win.pid(), Reason: reason})
	}
}

// contest records whether name, with siblings r.every, has more than one
// claim (of one origin or several): such a name is settled again when one
// of its origins is hidden or shown.
func (r *Registry) contest(name string) {
	if len(r.every) < 2 && len(r.contestedBy) == 0 {
		return // the common case, without a lookup
	}
	was := r.contestedBy[name]
	if len(r.every) < 2 && was == nil {
		return
	}
	var now []crdt.ReplicaID
	if len(r.every) >= 2 {
		for _, sib := range r.every {
			if !slices.Contains(now, sib.Dot.Replica) {
				now = append(now, sib.Dot.Replica)
			}
		}
	}
	for _, id := range was {
		if !slices.Contains(now, id) {
			delete(r.contested[id], name)
			if len(r.contested[id]) == 0 {
				delete(r.contested, id)
			}
		}
	}
	for _, id := range now {
		if r.contested[id] == nil {
			r.contested[id] = map[string]struct{}{}
		}
		r.contested[id][name] = struct{}{}
	}
	if now == nil {
		delete(r.contestedBy, name)
	} else {
		r.contestedBy[name] = now
	}
}

// onVisibility runs on the engine's goroutine when origin id's claims are
// hidden (its node went down here) or shown again: the names only it
// claims flip with one flag of the index; those with more than one claim
// are settled again (their winner may change: a conflict met again is
// resolved). Watchers are told of every name that flips.
func (r *Registry) onVisibility(s *replica.State[string, heldClaim], id crdt.ReplicaID, visible bool) {
	reason, kind := ReasonNodeDown, Unregistered
	if visible {
		reason, kind = ReasonNodeUp, Registered
	}
	for _, name := range slices.Sorted(maps.Keys(r.contested[id])) {
		r.settle(s, name, reason)
	}
	if r.nmons.Load() > 0 {
		for name, sib := range s.Map().ByReplica(id) {
			if _, ok := r.contestedBy[name]; ok {
				continue
			}
			if p, ok := r.idx.entryOf(name, id); ok && p.same(sib.Value.ref()) {
				r.emit(Event{Kind: kind, Name: name, Pid: p.pid(), Reason: reason})
			}
		}
	}
	r.idx.setHidden(id, !visible)
	r.sendWatchQ()
}

// sendWatchQ hands the turn's orders to the exit watcher (engine
// goroutine).
func (r *Registry) sendWatchQ() {
	r.watcher.Send(r.watchQ)
	r.watchQ = nil
}
