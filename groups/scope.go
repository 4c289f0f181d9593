package groups

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	logging "github.com/ipfs/go-log/v2"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/crdt"
	"github.com/nodal-go/nodal/internal/exitwatch"
)

var log = logging.Logger("nodal/groups")

// Scope is one scope of process groups on a node (pg's scope): the groups
// every node running the same scope shares. Make one per scope and node
// with New; its methods are safe for concurrent use.
type Scope struct {
	n    *nodal.Node
	cfg  Config
	name string // the service name
	self crdt.ReplicaID
	x    *index

	// own is this node's record of its pids' dots; only mutations touch
	// it, on the replication engine's goroutine, one at a time.
	own ownTable
	// watchQ holds the watcher's orders of this engine turn, sent at its
	// end in one message (engine goroutine only).
	watchQ *exitwatch.Orders
	// w is the writer of local updates, reused from one to the next so
	// that a join allocates no change list (engine goroutine only).
	w writer
	// remote is onChange's list of other nodes' changes, reused likewise.
	remote []change

	watcher *exitwatch.Watcher

	rep *replication

	stopped atomic.Bool
	stopErr error // set by onStop

	stats struct {
		joins, leaves, exits atomic.Uint64
	}

	joins sync.Pool // of *joinJob
}

// New starts the scope cfg.Scope on n and attaches it as a service named
// ServicePrefix + cfg.Scope; Node.Stop stops it first, Stop stops it
// earlier. A node runs each scope at most once.
func New(n *nodal.Node, cfg Config) (*Scope, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Scope{
		n:    n,
		cfg:  cfg,
		name: ServicePrefix + cfg.Scope,
		self: crdt.ReplicaID{Name: n.Name(), Epoch: n.Incarnation()},
		x:    newIndex(n.Name()),
		own:  newOwnTable(crdt.ReplicaID{Name: n.Name(), Epoch: n.Incarnation()}),
	}
	s.joins.New = func() any { return newJoinJob(s) }
	w, err := exitwatch.Start(n, fmt.Sprintf("groups: scope %q", cfg.Scope), s.exited)
	if err != nil {
		return nil, err
	}
	s.watcher = w
	if err := s.startReplication(); err != nil {
		_ = w.Stop(context.Background())
		return nil, fmt.Errorf("groups: scope %q: %w", cfg.Scope, err)
	}
	return s, nil
}

// Scope returns the scope's name.
func (s *Scope) Scope() string { return s.cfg.Scope }

// Node returns the node the scope runs on.
func (s *Scope) Node() *nodal.Node { return s.n }

// Join adds pids to group, once each (pg's join): a pid joined twice must
// leave twice, and Members lists it twice. Every pid must be a process of
// this node (a *NotLocalError otherwise, and nothing joins). The group
// exists as long as it has a member. Join returns once the memberships are
// visible on this node; other nodes see them a delta later. A pid that
// exits leaves every group.
func (s *Scope) Join(ctx context.Context, group string, pids ...nodal.Pid) error {
	return s.JoinMeta(ctx, group, nil, pids...)
}

// JoinMeta is Join with metadata (at most MaxMeta bytes) on each new
// membership; Memberships returns it.
func (s *Scope) JoinMeta(ctx context.Context, group string, meta []byte, pids ...nodal.Pid) error {
	if err := ValidateGroup(group); err != nil {
		return err
	}
	if err := validateMeta(meta); err != nil {
		return err
	}
	if err := s.checkLocal(pids); err != nil {
		return err
	}
	if len(pids) == 0 {
		return nil
	}
	j := s.joins.Get().(*joinJob)
	j.group, j.meta, j.pids = group, clone(meta), append(j.pids[:0], pids...)
	if err := s.update(ctx, j.run); err != nil {
		return err // j is not reused: the engine may still hold it
	}
	s.stats.joins.Add(uint64(len(pids)))
	j.group, j.meta = "", nil
	clear(j.pids)
	if cap(j.pids) <= maxJobPids {
		s.joins.Put(j)
	}
	return nil
}

// joinJob is one Join's work on the engine, reused through Scope.joins:
// its run function is made once, with the job, so that a join allocates
// neither a closure nor a copy of its variadic pids.
type joinJob struct {
	s     *Scope
	group string
	meta  []byte
	pids  []nodal.Pid
	run   func(st *repState) error
}

// maxJobPids bounds the pids a pooled joinJob keeps room for.
const maxJobPids = 64

func newJoinJob(s *Scope) *joinJob {
	j := &joinJob{s: s}
	j.run = func(st *repState) error {
		s := j.s
		w := s.begin(st, CauseLocal)
		for _, pid := range j.pids {
			dot := w.add(j.group, Membership{Pid: pid, Meta: j.meta})
			if s.own.add(j.group, pid, dot) {
				s.watchQ = s.watchQ.Watch(pid)
			}
		}
		s.commit()
		return nil
	}
	return j
}

// Leave removes one membership of each of pids from group (pg's leave).
// It fails with a *NotJoinedError (ErrNotJoined) only when none of them
// was a member; with a *NotLocalError when one is not a process of this
// node (and nothing leaves).
func (s *Scope) Leave(ctx context.Context, group string, pids ...nodal.Pid) error {
	if err := ValidateGroup(group); err != nil {
		return err
	}
	if err := s.checkLocal(pids); err != nil {
		return err
	}
	if len(pids) == 0 {
		return nil
	}
	left := 0
	err := s.update(ctx, func(st *repState) error {
		w := s.begin(st, CauseLocal)
		for _, pid := range pids {
			dot, ok, isLast := s.own.take(group, pid)
			if !ok {
				continue
			}
			left++
			w.remove(dot)
			if isLast {
				s.watchQ = s.watchQ.Unwatch(pid)
			}
		}
		s.commit()
		return nil
	})
	if err != nil {
		return err
	}
	if left == 0 {
		return &NotJoinedError{Group: group, Pid: pids[0]}
	}
	s.stats.leaves.Add(uint64(left))
	return nil
}

// exited makes pid, a local process that exited, leave every group.
func (s *Scope) exited(pid nodal.Pid) {
	if s.stopped.Load() {
		return
	}
	err := s.update(context.Background(), func(st *repState) error {
		s.begin(st, CauseExit).remove(s.own.takeAll(pid)...)
		s.commit()
		return nil
	})
	if err != nil {
		if !s.stopped.Load() {
			log.Warnw("cannot remove the memberships of an exited process", "pid", pid, "err", err)
		}
		return
	}
	s.stats.exits.Add(1)
}

func (s *Scope) checkLocal(pids []nodal.Pid) error {
	for _, p := range pids {
		if p.Node != s.self.Name || p.Incarnation != s.self.Epoch {
			return &NotLocalError{Pid: p, Node: s.self.Name}
		}
	}
	return nil
}

// Members returns the group's visible members on every node, in pid
// order, a pid once per membership (pg's get_members). Members of an
// unreachable node are not listed (hidden) until it is back. A group
// without members is empty: nil.
func (s *Scope) Members(group string) []nodal.Pid { return s.x.members(group, false) }

// LocalMembers returns the group's members that are processes of this
// node, in pid order, a pid once per membership (pg's get_local_members).
func (s *Scope) LocalMembers(group string) []nodal.Pid { return s.x.members(group, true) }

// Memberships returns the group's visible memberships with their
// metadata, in pid order.
func (s *Scope) Memberships(group string) []Membership { return s.x.memberships(group) }

// Count returns the number of the group's visible memberships.
func (s *Scope) Count(group string) int { return s.x.count(group, false) }

// WhichGroups returns every group with a visible member, sorted (pg's
// which_groups).
func (s *Scope) WhichGroups() []string { return s.x.whichGroups(false) }

// LocalGroups returns every group with a member on this node, sorted.
func (s *Scope) LocalGroups() []string { return s.x.whichGroups(true) }

// Counts returns every group with a visible member and its number of
// memberships.
func (s *Scope) Counts() map[string]int { return s.x.counts() }

// MonitorScope returns every group's members and a Monitor of every later
// change of the scope (pg's monitor_scope).
func (s *Scope) MonitorScope() (map[string][]nodal.Pid, *Monitor, error) {
	if s.stopped.Load() {
		return nil, nil, ErrStopped
	}
	m := &Monitor{x: s.x, ch: make(chan Event, s.cfg.MonitorBuffer)}
	snap := s.x.snapshotScope(m)
	if s.stopped.Load() { // Stop ran meanwhile and may have missed m
		s.x.end(m, ErrStopped)
	}
	return snap, m, nil
}

// Monitor returns the group's members and a Monitor of every later change
// of them (pg's monitor).
func (s *Scope) Monitor(group string) ([]nodal.Pid, *Monitor, error) {
	if err := ValidateGroup(group); err != nil {
		return nil, nil, err
	}
	if s.stopped.Load() {
		return nil, nil, ErrStopped
	}
	m := &Monitor{x: s.x, ch: make(chan Event, s.cfg.MonitorBuffer), group: &group}
	snap := s.x.snapshotGroup(group, m)
	if s.stopped.Load() {
		s.x.end(m, ErrStopped)
	}
	return snap, m, nil
}

// Stats counts what a scope did.
type Stats struct {
	Joins    uint64 // local memberships added
	Leaves   uint64 // local memberships removed by Leave
	Exits    uint64 // local processes that exited and left their groups
	BadOwner uint64 // entries from the network for a pid not of their writer (dropped)
	Replication
}

// Stats returns the counters.
func (s *Scope) Stats() Stats {
	return Stats{
		Joins:       s.stats.joins.Load(),
		Leaves:      s.stats.leaves.Load(),
		Exits:       s.stats.exits.Load(),
		BadOwner:    s.x.badOwner.Load(),
		Replication: s.replicationStats(),
	}
}

// Stop ends the scope on this node: it detaches the service, ends every
// monitor with ErrStopped and stops the exit watcher, bounded by ctx. The
// other nodes keep this node's members (hidden once it is unreachable)
// until it leaves the cluster or restarts. It is idempotent; Node.Stop
// stops the scope too.
func (s *Scope) Stop(ctx context.Context) error {
	s.stopped.Store(true)
	err := s.stopReplication(ctx) // runs onStop, once
	if err == nil {
		err = s.stopErr
	}
	return err
}

// onStop runs once, when the replication engine has stopped (Stop, or
// Node.Stop stopping the engine's service): the monitors end and the exit
// watcher with them.
func (s *Scope) onStop(ctx context.Context) {
	s.stopped.Store(true)
	s.x.endAll(ErrStopped)
	if err := s.watcher.Stop(ctx); err != nil {
		s.stopErr = fmt.Errorf("groups: stop: %w", err)
	}
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}
