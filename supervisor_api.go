package nodal

import (
	"context"
	"fmt"
	"maps"
	"slices"

	logging "github.com/ipfs/go-log/v2"
)

var supLog = logging.Logger("nodal/supervisor")

// Caller is what the supervisor management calls talk through: a *Node
// (from outside any process) or a *Process (from inside one, on its own
// goroutine). Both implement it. The supervisor may be on another node
// (OTP's {Sup, Node}): every management call works across nodes, with
// errors that keep their identity for errors.Is, except StartChild, whose
// ChildSpec holds Go functions.
type Caller interface {
	Call(ctx context.Context, to Pid, req any) (any, error)
}

var (
	_ Caller  = (*Node)(nil)
	_ Caller  = (*Process)(nil)
	_ Spawner = (*Node)(nil)
	_ Spawner = (*Process)(nil)
)

// ChildInfo describes one child, as returned by WhichChildren (OTP
// which_children).
type ChildInfo struct {
	// ID is the child's id; "" for SimpleOneForOne children.
	ID string
	// Pid is the running child's pid; zero when it is not running.
	Pid Pid
	// Restarting is true while a failed restart is being retried (OTP
	// restarting).
	Restarting bool
	// Type is ChildWorker or ChildSupervisor.
	Type ChildType
}

// ChildCount is the result of CountChildren (OTP count_children).
type ChildCount struct {
	// Specs is the number of child specs, of running and stopped children;
	// 1 (the template) for a SimpleOneForOne supervisor, as in OTP.
	Specs int
	// Active is the number of running children.
	Active int
	// Supervisors is the number of children of type ChildSupervisor,
	// running or not.
	Supervisors int
	// Workers is the number of children of type ChildWorker, running or not.
	Workers int
}

// Management call requests and the one reply type.
type (
	supStartChild   struct{ spec ChildSpec }
	supStartDynamic struct{ args any }
	supTerminate    struct {
		id    string
		pid   Pid
		byPid bool
	}
	supRestart struct{ id string }
	supDelete  struct{ id string }
	supWhich   struct{}
	supCount   struct{}
	supStop    struct{}
	supReply   struct {
		pid      Pid
		err      error
		children []ChildInfo
		count    ChildCount
	}
)

func supCall(ctx context.Context, c Caller, sup Pid, req any) (supReply, error) {
	r, err := c.Call(ctx, sup, req)
	if err != nil {
		return supReply{}, err
	}
	rep, ok := r.(supReply)
	if !ok {
		return supReply{}, fmt.Errorf("%w: %v answered %T", ErrNotSupervisor, sup, r)
	}
	return rep, rep.err
}

// StartChild adds a static child to the supervisor sup and starts it (OTP
// supervisor:start_child/2 with a child spec). It returns the child's pid,
// zero if its start function chose to ignore. Errors: *ChildError wrapping
// ErrInvalidSpec, ErrChildAlreadyStarted (with the running pid),
// ErrChildAlreadyPresent, ErrStartChild (and the start error: the child is
// not added) or ErrWrongStrategy on a SimpleOneForOne supervisor; and the
// errors of Call (ErrNoProc if sup is dead, ErrTimeout on ctx's deadline).
// sup must be on the caller's node (a spec's functions cannot travel): for
// a supervisor on another node the error wraps ErrCodec and says so.
func StartChild(ctx context.Context, c Caller, sup Pid, spec ChildSpec) (Pid, error) {
	ns, err := spec.normalize()
	if err != nil {
		return Pid{}, &ChildError{ID: spec.ID, Err: fmt.Errorf("%w: %w", ErrInvalidSpec, err)}
	}
	rep, err := supCall(ctx, c, sup, supStartChild{spec: ns})
	return rep.pid, err
}

// StartDynamicChild starts a child of the SimpleOneForOne supervisor sup
// from its Template with args (OTP supervisor:start_child/2 with extra
// arguments). It returns the child's pid, zero if the start function chose
// to ignore (nothing is kept then). Errors: *ChildError wrapping
// ErrStartChild (and the start error) or ErrWrongStrategy; and the errors
// of Call.
func StartDynamicChild(ctx context.Context, c Caller, sup Pid, args any) (Pid, error) {
	rep, err := supCall(ctx, c, sup, supStartDynamic{args: args})
	return rep.pid, err
}

// TerminateChild stops the static child id of sup the way the supervisor
// stops children (exit signal shutdown, Shutdown to stop, then kill) and
// keeps its spec, so RestartChild can start it again; a Temporary child's
// spec is deleted (OTP supervisor:terminate_child/2). Stopping a child
// that is not running is not an error. Errors: *ChildError wrapping
// ErrChildNotFound or ErrWrongStrategy (SimpleOneForOne children have no
// id: use TerminateChildPid); and the errors of Call.
func TerminateChild(ctx context.Context, c Caller, sup Pid, id string) error {
	_, err := supCall(ctx, c, sup, supTerminate{id: id})
	return err
}

// TerminateChildPid stops the running child pid of sup, static or dynamic,
// like TerminateChild; a SimpleOneForOne child is forgotten (OTP
// supervisor:terminate_child/2 with a pid). Errors: *ChildError wrapping
// ErrChildNotFound if pid is not a running child of sup; and the errors of
// Call.
func TerminateChildPid(ctx context.Context, c Caller, sup Pid, pid Pid) error {
	_, err := supCall(ctx, c, sup, supTerminate{pid: pid, byPid: true})
	return err
}

// RestartChild starts again the static child id of sup, which must be
// stopped (after TerminateChild, or a Transient child that exited normally)
// (OTP supervisor:restart_child/2). It returns the new pid. Errors:
// *ChildError wrapping ErrChildNotFound, ErrChildRunning,
// ErrChildRestarting, ErrStartChild (and the start error) or
// ErrWrongStrategy; and the errors of Call.
func RestartChild(ctx context.Context, c Caller, sup Pid, id string) (Pid, error) {
	rep, err := supCall(ctx, c, sup, supRestart{id: id})
	return rep.pid, err
}

// DeleteChild removes the spec of the stopped static child id of sup (OTP
// supervisor:delete_child/2). Errors: *ChildError wrapping
// ErrChildNotFound, ErrChildRunning, ErrChildRestarting or
// ErrWrongStrategy; and the errors of Call.
func DeleteChild(ctx context.Context, c Caller, sup Pid, id string) error {
	_, err := supCall(ctx, c, sup, supDelete{id: id})
	return err
}

// WhichChildren lists the children of sup (OTP supervisor:which_children/1):
// static children in start order, then dynamic children in the order they
// were started.
func WhichChildren(ctx context.Context, c Caller, sup Pid) ([]ChildInfo, error) {
	rep, err := supCall(ctx, c, sup, supWhich{})
	return rep.children, err
}

// CountChildren counts the children of sup (OTP
// supervisor:count_children/1).
func CountChildren(ctx context.Context, c Caller, sup Pid) (ChildCount, error) {
	rep, err := supCall(ctx, c, sup, supCount{})
	return rep.count, err
}

// StopSupervisor stops sup: it stops its children (static ones in reverse
// start order, each by its Shutdown), answers, and exits with reason
// normal (like OTP's proc_lib:stop/1). When it returns without error every
// child has exited; the supervisor process itself exits right after. A
// Permanent child supervisor stopped this way is restarted by its parent,
// as in OTP.
func StopSupervisor(ctx context.Context, c Caller, sup Pid) error {
	_, err := supCall(ctx, c, sup, supStop{})
	return err
}

// handleCall serves one management call. It returns a non-nil reason when
// the supervisor must exit.
func (s *supervisor) handleCall(req CallRequest) error {
	var rep supReply
	var stop error
	switch r := req.Req.(type) {
	case supStartChild:
		rep = s.callStartChild(r.spec)
	case supStartDynamic:
		rep = s.callStartDynamic(r.args)
	case supTerminate:
		rep = s.callTerminate(r)
	case supRestart:
		rep = s.callRestart(r.id)
	case supDelete:
		rep = s.callDelete(r.id)
	case supWhich:
		rep.children = s.whichChildren()
	case supCount:
		rep.count = s.countChildren()
	case supStop:
		s.terminateAll()
		stop = ReasonNormal
	default:
		rep.err = fmt.Errorf("%w: unknown supervisor request %T", ErrNotSupervisor, req.Req)
	}
	s.p.Reply(req.From, rep)
	return stop
}

func (s *supervisor) findStatic(id string) *supChild {
	for _, c := range s.static {
		if c.id == id {
			return c
		}
	}
	return nil
}

func (s *supervisor) callStartChild(spec ChildSpec) supReply {
	if s.strategy == SimpleOneForOne {
		return supReply{err: &ChildError{ID: spec.ID, Err: ErrWrongStrategy}}
	}
	if old := s.findStatic(spec.ID); old != nil {
		if !old.pid.IsZero() {
			return supReply{err: &ChildError{ID: spec.ID, Pid: old.pid, Err: ErrChildAlreadyStarted}}
		}
		return supReply{err: &ChildError{ID: spec.ID, Err: ErrChildAlreadyPresent}}
	}
	c := &supChild{id: spec.ID, start: spec.Start, restart: spec.Restart, shutdown: spec.Shutdown, typ: spec.Type}
	if err := s.startChild(c); err != nil {
		return supReply{err: startError(c.id, err)}
	}
	if !c.pid.IsZero() || c.restart != Temporary {
		s.static = append(s.static, c)
	}
	return supReply{pid: c.pid}
}

func (s *supervisor) callStartDynamic(args any) supReply {
	if s.strategy != SimpleOneForOne {
		return supReply{err: &ChildError{Err: ErrWrongStrategy}}
	}
	t := s.template
	s.nextSeq++
	c := &supChild{
		seq:      s.nextSeq,
		start:    func(p *Process) (Pid, error) { return t.Start(p, args) },
		restart:  t.Restart,
		shutdown: t.Shutdown,
		typ:      t.Type,
		dynamic:  true,
	}
	if err := s.startChild(c); err != nil {
		return supReply{err: startError("", err)}
	}
	if !c.pid.IsZero() {
		s.dynamic[c.seq] = c
	}
	return supReply{pid: c.pid}
}

func (s *supervisor) callTerminate(r supTerminate) supReply {
	var c *supChild
	if r.byPid {
		c = s.byPid[r.pid]
		if c == nil {
			return supReply{err: &ChildError{Pid: r.pid, Err: ErrChildNotFound}}
		}
	} else {
		if s.strategy == SimpleOneForOne {
			return supReply{err: &ChildError{ID: r.id, Err: ErrWrongStrategy}}
		}
		c = s.findStatic(r.id)
		if c == nil {
			return supReply{err: &ChildError{ID: r.id, Err: ErrChildNotFound}}
		}
	}
	s.terminate(c)
	if c.dynamic || c.restart == Temporary {
		s.forget(c)
	}
	return supReply{}
}

func (s *supervisor) staticOp(id string) (*supChild, error) {
	if s.strategy == SimpleOneForOne {
		return nil, &ChildError{ID: id, Err: ErrWrongStrategy}
	}
	c := s.findStatic(id)
	switch {
	case c == nil:
		return nil, &ChildError{ID: id, Err: ErrChildNotFound}
	case c.restarting:
		return nil, &ChildError{ID: id, Err: ErrChildRestarting}
	case !c.pid.IsZero():
		return nil, &ChildError{ID: id, Pid: c.pid, Err: ErrChildRunning}
	}
	return c, nil
}

func (s *supervisor) callRestart(id string) supReply {
	c, err := s.staticOp(id)
	if err != nil {
		return supReply{err: err}
	}
	if err := s.startChild(c); err != nil {
		return supReply{err: startError(id, err)}
	}
	return supReply{pid: c.pid}
}

func (s *supervisor) callDelete(id string) supReply {
	c, err := s.staticOp(id)
	if err != nil {
		return supReply{err: err}
	}
	s.static = slices.DeleteFunc(s.static, func(x *supChild) bool { return x == c })
	return supReply{}
}

func (s *supervisor) children() []*supChild {
	out := slices.Clone(s.static)
	for _, seq := range slices.Sorted(maps.Keys(s.dynamic)) {
		out = append(out, s.dynamic[seq])
	}
	return out
}

func (s *supervisor) whichChildren() []ChildInfo {
	cs := s.children()
	out := make([]ChildInfo, 0, len(cs))
	for _, c := range cs {
		out = append(out, ChildInfo{ID: c.id, Pid: c.pid, Restarting: c.restarting, Type: c.typ})
	}
	return out
}

func (s *supervisor) countChildren() ChildCount {
	var n ChildCount
	if s.strategy == SimpleOneForOne {
		n.Specs = 1
	}
	for _, c := range s.children() {
		if !c.dynamic {
			n.Specs++
		}
		if !c.pid.IsZero() {
			n.Active++
		}
		if c.typ == ChildSupervisor {
			n.Supervisors++
		} else {
			n.Workers++
		}
	}
	return n
}
