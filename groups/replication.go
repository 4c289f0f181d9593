package groups

import (
	"context"
	"errors"
	"fmt"

	"github.com/nodal-go/nodal/crdt"
	"github.com/nodal-go/nodal/internal/replica"
)

// replication is the scope's replicated state: internal/replica's engine
// over the groups' ORMap. The engine's goroutine owns the CRDT; this node's
// mutations run on it through Update and are applied to the index there
// and then, so a Join is visible on this node when it returns. Changes
// from other nodes, and hiding and showing of other nodes' members, come
// through OnChange.
type replication = replica.Replica[string, Membership]

type repState = replica.State[string, Membership]

// Replication counts what the scope's replication exchanged with other
// nodes (internal/replica's counters).
type Replication = replica.Stats

func (s *Scope) startReplication() error {
	r, err := replica.New(s.n, replica.Config[string, Membership]{
		Service:        s.name,
		Keys:           groupCodec{},
		Values:         membershipCodec{},
		PermdownPeriod: s.cfg.PermdownPeriod,
		SyncInterval:   s.cfg.SyncInterval,
		Check:          checkMembership,
		OnChange:       s.onChange,
		OnStop:         s.onStop,
	})
	if err != nil {
		return err
	}
	s.rep = r
	return nil
}

// onChange runs on the engine's goroutine: other nodes' changes become
// visible in the index. This node's own changes were applied by the
// mutation that made them.
func (s *Scope) onChange(_ *repState, cs []replica.Change[string, Membership]) {
	s.watcher.Send(s.watchQ) // nil: nothing; a local send never blocks
	s.watchQ = nil
	out := s.remote[:0]
	for _, c := range cs {
		var cause Cause
		switch c.Reason {
		case replica.Local:
			continue
		case replica.Remote:
			cause = CauseRemote
		case replica.NodeDown:
			cause = CauseNodeDown
		case replica.NodeUp:
			cause = CauseNodeUp
		case replica.Purged:
			cause = CausePurged
		default:
			cause = CauseRemote
		}
		out = append(out, change{op: c.Op, group: c.Key, dot: c.Dot, m: c.Value, cause: cause})
	}
	s.x.apply(out)
	clear(out) // let go of the groups and metadata
	if s.remote = out[:0]; cap(out) > maxWriterChanges {
		s.remote = nil
	}
}

// update runs fn on the engine's goroutine (Replica.Update); fn writes
// through begin and commit, so that its changes are applied to the index
// before update returns. One closure per call: fn is the Update function
// itself.
func (s *Scope) update(ctx context.Context, fn func(st *repState) error) error {
	if s.stopped.Load() {
		return ErrStopped
	}
	err := s.rep.Update(ctx, fn)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, replica.ErrStopped):
		return ErrStopped
	case ctx.Err() != nil:
		return fmt.Errorf("groups: %w", ctxError(ctx.Err()))
	}
	return fmt.Errorf("groups: %w", err)
}

// begin returns the scope's writer for st with cause (engine goroutine,
// inside update); commit applies what it recorded.
func (s *Scope) begin(st *repState, cause Cause) *writer {
	w := &s.w
	w.st, w.cause = st, cause
	return w
}

// commit applies the writer's changes to the index and readies it for the
// next update.
func (s *Scope) commit() {
	w := &s.w
	s.x.apply(w.changes)
	clear(w.changes) // let go of the groups and metadata
	w.st, w.changes = nil, w.changes[:0]
	if cap(w.changes) > maxWriterChanges {
		w.changes = nil
	}
}

// maxWriterChanges bounds the change list the writer keeps for the next
// update.
const maxWriterChanges = 1 << 12

// writer makes this node's mutations and records them as index changes.
type writer struct {
	st      *repState
	cause   Cause
	changes []change
}

func (w *writer) add(group string, m Membership) crdt.Dot {
	dot := w.st.Add(group, m)
	w.changes = append(w.changes, change{op: crdt.Added, group: group, dot: dot, m: m, cause: w.cause})
	return dot
}

func (w *writer) remove(dots ...crdt.Dot) {
	mp := w.st.Map()
	for _, d := range dots {
		if g, m, ok := mp.Lookup(d); ok {
			w.changes = append(w.changes, change{op: crdt.Removed, group: g, dot: d, m: m, cause: w.cause})
		}
	}
	w.st.RemoveDots(dots...)
}

// Sync returns once this scope has exchanged state with every reachable
// node that runs it (like global:sync): after it, this node has seen every
// membership those nodes had when Sync began, and they have seen this
// node's.
func (s *Scope) Sync(ctx context.Context) error {
	if s.stopped.Load() {
		return ErrStopped
	}
	if err := s.rep.Sync(ctx); err != nil {
		if errors.Is(err, replica.ErrStopped) {
			return ErrStopped
		}
		return fmt.Errorf("groups: sync: %w", ctxError(err))
	}
	return nil
}

// Traffic is what a scope exchanged with some nodes (ExchangedSinceUp).
type Traffic = replica.Traffic

// ExchangedSinceUp returns what this scope exchanged with nodes, summed,
// since each of them last came up: after a heal, what the heal moved
// (heal.CountedSync reports it). Groups have no conflicts.
func (s *Scope) ExchangedSinceUp(nodes ...string) Traffic { return s.rep.TrafficSinceUp(nodes...) }

// checkMembership refuses a membership from the network that its pid's
// node (at the pid's incarnation) did not write: only a pid's own node
// changes its memberships.
func checkMembership(group string, sib crdt.Sibling[Membership]) error {
	if !owned(sib.Dot, sib.Value) {
		return fmt.Errorf("%w: %v in %q by %s/%d", ErrForeignMembership, sib.Value.Pid, group, sib.Dot.Replica.Name, sib.Dot.Replica.Epoch)
	}
	return nil
}

func (s *Scope) stopReplication(ctx context.Context) error { return s.rep.Stop(ctx) }

func (s *Scope) replicationStats() Replication { return s.rep.Stats() }

// ctxError turns a ctx's deadline into an error that also wraps
// ErrTimeout.
func ctxError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return err
}
