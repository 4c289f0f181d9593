package supervisor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"slices"
	"time"

	"github.com/nodal-go/nodal"
)

// child is the supervisor's record of one child.
type child struct {
	id       string // "" for a dynamic child
	seq      uint64 // start order of dynamic children
	start    func(p *nodal.Process) (nodal.Pid, error)
	restart  RestartType
	shutdown time.Duration
	typ      ChildType
	dynamic  bool

	pid        nodal.Pid // zero when not running
	restarting bool      // a restart failed and a retry is queued
}

// retryMsg is the message a supervisor sends itself to retry a restart that
// failed (OTP try_again_restart).
type retryMsg struct{ c *child }

// supervisor is the state of a supervisor process. Only its own goroutine
// touches it.
type supervisor struct {
	p         *nodal.Process
	parent    nodal.Pid
	strategy  Strategy
	intensity int
	period    time.Duration
	template  *ChildTemplate

	static   []*child             // static children in start order
	dynamic  map[uint64]*child    // SimpleOneForOne children by seq
	byPid    map[nodal.Pid]*child // running children
	nextSeq  uint64
	restarts []time.Time // restart times, oldest first; restarts[rhead:] are within period
	rhead    int

	// watchingNodes is set once the supervisor has had a child on another
	// node: it then gets nodal.NodeUp and nodal.NodeDown messages.
	watchingNodes bool
	// orphans are former children on other nodes that exited with reason
	// noconnection, by node: a child that traps exits may still run
	// there, and is killed when its node connects again.
	orphans map[string][]nodal.Pid
}

// runSupervisor is the body of a supervisor process. It reports the outcome
// of the start phase on ack exactly once.
func runSupervisor(p *nodal.Process, spec Spec, parent nodal.Pid, ack chan<- error) (reason error) {
	acked := false
	defer func() {
		if !acked {
			// The process is ending before its children were all started
			// (killed, or Exit called from deep inside); never leave
			// Start waiting.
			ack <- fmt.Errorf("supervisor: %v exited while starting: %w", p.Self(), nodal.ReasonKilled)
		}
	}()
	s := &supervisor{
		p:         p,
		parent:    parent,
		strategy:  spec.Strategy,
		intensity: spec.Intensity,
		period:    spec.Period,
		template:  spec.Template,
		dynamic:   make(map[uint64]*child),
		byPid:     make(map[nodal.Pid]*child),
	}
	for _, cs := range spec.Children {
		c := &child{id: cs.ID, start: cs.Start, restart: cs.Restart, shutdown: cs.Shutdown, typ: cs.Type}
		if err := s.startChild(c); err != nil {
			log.Warnw("supervisor failed to start child", "supervisor", p.Self(), "child", c.id, "error", err)
			s.terminateAll()
			cerr := startError(c.id, err)
			if !parent.IsZero() {
				p.Unlink(parent)
			}
			acked = true
			ack <- cerr
			return &nodal.ShutdownError{Reason: cerr}
		}
		if c.pid.IsZero() && c.restart == Temporary {
			continue // ignored temporary child: forgotten, as in OTP
		}
		s.static = append(s.static, c)
	}
	acked = true
	ack <- nil
	return s.loop()
}

// loop serves exit signals, management calls and restart retries until the
// supervisor stops, and returns its exit reason.
func (s *supervisor) loop() error {
	for {
		msg, err := s.p.Receive(s.p.Context())
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case nodal.Exit:
			if c, ok := s.byPid[m.From]; ok {
				if stop := s.childExited(c, m.Reason); stop != nil {
					return stop
				}
				continue
			}
			if m.From == s.parent || m.From.IsZero() {
				// OTP: an exit signal from the parent stops the supervisor
				// with the parent's reason, after its children.
				s.terminateAll()
				return m.Reason
			}
			// An exit signal of a former child (it was replaced or
			// terminated meanwhile) or of an unrelated process: ignored,
			// as OTP's supervisor does.
		case nodal.CallRequest:
			if stop := s.handleCall(m); stop != nil {
				return stop
			}
		case retryMsg:
			if stop := s.retry(m.c); stop != nil {
				return stop
			}
		case nodal.NodeUp:
			s.killOrphans(m.Node)
		case nodal.NodeDown:
			// The children there exit with noconnection: handled above.
		default:
			// Unexpected message: dropped (OTP logs it).
			log.Debugw("supervisor dropped unexpected message", "supervisor", s.p.Self())
		}
	}
}

// startChild runs c's start function on the supervisor's process and
// records the new pid. A panic in the start function is a failed start.
func (s *supervisor) startChild(c *child) (err error) {
	pid, err := s.callStart(c)
	if err != nil {
		return err
	}
	c.restarting = false
	if pid.IsZero() {
		return nil // ignore
	}
	// The start function must link; linking again is a no-op, and repairs
	// a forgotten link. A pid that is already dead makes the runtime send
	// us Exit{pid, noproc}, which is handled like any other child exit.
	s.p.Link(pid)
	c.pid = pid
	s.byPid[pid] = c
	if pid.Node != s.p.Node().Name() && !s.watchingNodes {
		// Subscribe before the child can be lost, so that no reconnection
		// after its loss goes unseen (the mailbox keeps the order).
		s.watchingNodes = true
		s.p.MonitorNodes(true, nodal.NodeVisible)
	}
	return nil
}

func (s *supervisor) callStart(c *child) (pid nodal.Pid, err error) {
	defer func() {
		if v := recover(); v != nil {
			if nodal.IsExitPanic(v) {
				panic(v) // the start function called p.Exit on the supervisor
			}
			pid, err = nodal.Pid{}, &nodal.PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return c.start(s.p)
}

// childExited applies the restart rules to a child that exited. It returns
// a non-nil reason when the supervisor must exit.
func (s *supervisor) childExited(c *child, reason error) error {
	log.Infow("supervisor child exited", "supervisor", s.p.Self(), "child", c.label(), "reason", reason)
	lost := c.pid
	delete(s.byPid, c.pid)
	c.pid = nodal.Pid{}
	if c.restart == Temporary || (c.restart == Transient && nodal.IsNormal(reason)) {
		s.forget(c)
		return nil
	}
	if lost.Node != s.p.Node().Name() && errors.Is(reason, nodal.ReasonNoConnection) {
		s.addOrphan(lost) // it is about to be replaced
	}
	return s.restartWithIntensity(c)
}

// addOrphan remembers a child lost with its node's connection. A child
// that does not trap exits is already dead (its link broke with
// noconnection on its side too); one that traps may live on, cut off.
func (s *supervisor) addOrphan(pid nodal.Pid) {
	if s.orphans == nil {
		s.orphans = make(map[string][]nodal.Pid)
	}
	s.orphans[pid.Node] = append(s.orphans[pid.Node], pid)
}

// killOrphans kills the children lost on node, which has just connected
// again: a restart may have replaced them, and no process may run twice.
// Kill cannot be trapped; for a child that already died it is a no-op.
func (s *supervisor) killOrphans(node string) {
	for _, pid := range s.orphans[node] {
		log.Infow("supervisor killing child cut off by a lost connection", "supervisor", s.p.Self(), "child", pid)
		s.p.SendExit(pid, nodal.ReasonKill)
	}
	delete(s.orphans, node)
}

// restartWithIntensity counts one restart and restarts c by the strategy,
// or stops the supervisor if the restart intensity is exceeded.
func (s *supervisor) restartWithIntensity(c *child) error {
	if !s.addRestart() {
		log.Warnw("supervisor restart intensity reached, shutting down",
			"supervisor", s.p.Self(), "intensity", s.intensity, "period", s.period, "child", c.label())
		s.terminateAll()
		return nodal.ReasonShutdown
	}
	return s.restartGroup(c)
}

// retry handles a queued retry of a failed restart (OTP try_again_restart):
// it counts as a restart.
func (s *supervisor) retry(c *child) error {
	if !c.restarting || !s.known(c) {
		return nil // terminated or deleted meanwhile
	}
	return s.restartWithIntensity(c)
}

// forget removes a child that will not be restarted: a temporary child is
// deleted (OTP), a dynamic child is always deleted, other static children
// keep their spec with no pid.
func (s *supervisor) forget(c *child) {
	c.restarting = false
	if c.dynamic {
		delete(s.dynamic, c.seq)
		return
	}
	if c.restart == Temporary {
		s.static = slices.DeleteFunc(s.static, func(x *child) bool { return x == c })
	}
}

func (s *supervisor) known(c *child) bool {
	if c.dynamic {
		return s.dynamic[c.seq] == c
	}
	return slices.Contains(s.static, c)
}

// addRestart records a restart now and reports whether it is within the
// intensity (OTP add_restart: more than Intensity restarts within Period is
// too many). Amortized O(1): expired entries are skipped by rhead and the
// slice is compacted when more than half of it has expired. It never holds
// more than Intensity+1 live entries, since one more stops the supervisor.
func (s *supervisor) addRestart() bool {
	now := time.Now()
	s.restarts = append(s.restarts, now)
	for s.rhead < len(s.restarts) && now.Sub(s.restarts[s.rhead]) > s.period {
		s.rhead++
	}
	if s.rhead > len(s.restarts)/2 {
		n := copy(s.restarts, s.restarts[s.rhead:])
		s.restarts, s.rhead = s.restarts[:n], 0
	}
	return len(s.restarts)-s.rhead <= s.intensity
}

// restartGroup restarts c and, by the strategy, its siblings: the others are
// stopped in reverse start order, then all are started in start order. If a
// start fails, the child is marked restarting, the ones after it stay
// stopped, and a retry is queued (OTP try_again). It returns a non-nil
// reason when the supervisor must exit: the node is stopping.
func (s *supervisor) restartGroup(c *child) error {
	group := []*child{c}
	if !c.dynamic {
		switch s.strategy {
		case OneForAll:
			group = slices.Clone(s.static)
		case RestForOne:
			if i := slices.Index(s.static, c); i >= 0 {
				group = slices.Clone(s.static[i:])
			}
		}
	}
	for i := len(group) - 1; i >= 0; i-- {
		if g := group[i]; g != c {
			s.terminate(g)
		}
	}
	for _, g := range group {
		if g != c && g.restart == Temporary {
			s.forget(g) // OTP: stopped temporary siblings are not restarted
			continue
		}
		if err := s.startChild(g); err != nil {
			if errors.Is(err, nodal.ErrStopped) {
				// The node is stopping: no restart can succeed.
				s.terminateAll()
				return nodal.ReasonShutdown
			}
			log.Warnw("supervisor failed to restart child", "supervisor", s.p.Self(), "child", g.label(), "error", err)
			g.restarting = true
			s.p.Send(s.p.Self(), retryMsg{c: g})
			return nil
		}
		if g.pid.IsZero() && g.restart == Temporary {
			s.forget(g)
		}
	}
	return nil
}

// terminateAll stops every child: static ones one by one in reverse start
// order, dynamic ones all at once.
func (s *supervisor) terminateAll() {
	s.terminateDynamic()
	for i := len(s.static) - 1; i >= 0; i-- {
		s.terminate(s.static[i])
	}
}

// terminate stops one child (OTP shutdown/2): monitor and unlink it, send it
// an exit signal shutdown (kill for BrutalKill), wait for its Down at most
// its Shutdown, then kill it and wait for the Down.
func (s *supervisor) terminate(c *child) {
	if ref, pid, ok := s.signalStop(c, c.shutdown); ok {
		s.awaitStopped(c.shutdown, map[nodal.Ref]nodal.Pid{ref: pid})
	}
}

// terminateDynamic stops all dynamic children at once, like OTP's
// terminate_dynamic_children: one exit signal each, one common deadline.
func (s *supervisor) terminateDynamic() {
	if len(s.dynamic) == 0 {
		return
	}
	pending := make(map[nodal.Ref]nodal.Pid, len(s.dynamic))
	for _, seq := range slices.Sorted(maps.Keys(s.dynamic)) {
		if ref, pid, ok := s.signalStop(s.dynamic[seq], s.template.Shutdown); ok {
			pending[ref] = pid
		}
	}
	s.awaitStopped(s.template.Shutdown, pending)
	// Stopped dynamic children are gone, as in OTP.
	clear(s.dynamic)
}

// signalStop is the first half of stopping c: it forgets c's pid, monitors
// and unlinks it, and sends it the exit signal shutdown (kill for
// BrutalKill). ok is false when c is not running.
func (s *supervisor) signalStop(c *child, shutdown time.Duration) (ref nodal.Ref, pid nodal.Pid, ok bool) {
	c.restarting = false
	if c.pid.IsZero() {
		return nodal.Ref{}, nodal.Pid{}, false
	}
	pid = c.pid
	delete(s.byPid, pid)
	c.pid = nodal.Pid{}
	ref = s.p.Monitor(pid)
	s.p.Unlink(pid)
	if shutdown == BrutalKill {
		s.p.SendExit(pid, nodal.ReasonKill)
	} else {
		s.p.SendExit(pid, nodal.ReasonShutdown)
	}
	return ref, pid, true
}

// awaitStopped is the second half: it waits for the Downs of pending up to
// shutdown (Infinity: no limit; BrutalKill: they were killed already), then
// kills the rest and waits for their Downs.
func (s *supervisor) awaitStopped(shutdown time.Duration, pending map[nodal.Ref]nodal.Pid) {
	refs := make(map[nodal.Ref]bool, len(pending))
	for r := range pending {
		refs[r] = true
	}
	if shutdown == BrutalKill || shutdown == Infinity {
		s.awaitDown(s.p.Context(), refs)
		return
	}
	ctx, cancel := context.WithTimeout(s.p.Context(), shutdown)
	timedOut := s.awaitDown(ctx, refs)
	cancel()
	if !timedOut {
		return
	}
	for _, r := range slices.SortedFunc(maps.Keys(refs), nodal.Ref.Compare) {
		log.Warnw("supervisor child did not stop in time, killing it", "supervisor", s.p.Self(), "child", pending[r], "shutdown", shutdown)
		s.p.SendExit(pending[r], nodal.ReasonKill)
	}
	s.awaitDown(s.p.Context(), refs)
}

// awaitDown receives the nodal.Down of every monitor in refs, deleting each. It
// reports true if ctx's deadline passed first. If the supervisor itself is
// killed meanwhile it exits at once.
func (s *supervisor) awaitDown(ctx context.Context, refs map[nodal.Ref]bool) (timedOut bool) {
	for len(refs) > 0 {
		msg, err := s.p.ReceiveMatch(ctx, func(m any) bool {
			d, ok := m.(nodal.Down)
			return ok && refs[d.Ref]
		})
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && s.p.Context().Err() == nil {
				return true
			}
			// The supervisor is being killed: nothing left to wait for.
			s.p.Exit(err)
			return false
		}
		delete(refs, msg.(nodal.Down).Ref)
	}
	return false
}

// label names a child in logs and errors.
func (c *child) label() string {
	if c.id != "" {
		return c.id
	}
	return c.pid.String()
}
