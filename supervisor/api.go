package supervisor

import (
	"context"
	"fmt"

	logging "github.com/ipfs/go-log/v2"

	"github.com/nodal-go/nodal"
)

var log = logging.Logger("nodal/supervisor")

// Caller is what the management calls talk through: a *nodal.Node (from
// outside any process) or a *nodal.Process (from inside one, on its own
// goroutine). Both implement it. The supervisor may be on another node
// (OTP's {Sup, Node}): every management call works across nodes, with
// errors that keep their identity for errors.Is, except StartChild, whose
// Child holds Go functions.
type Caller interface {
	Call(ctx context.Context, to nodal.Pid, req any) (any, error)
}

var (
	_ Caller = (*nodal.Node)(nil)
	_ Caller = (*nodal.Process)(nil)
)

// ChildInfo describes one child, as returned by WhichChildren (OTP
// which_children).
type ChildInfo struct {
	// ID is the child's id; "" for SimpleOneForOne children.
	ID string
	// Pid is the running child's pid; zero when it is not running.
	Pid nodal.Pid
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

// callerNode returns the node a Caller calls from, or nil for a Caller
// that is neither a *nodal.Node nor a *nodal.Process.
func callerNode(c Caller) *nodal.Node {
	switch x := c.(type) {
	case *nodal.Node:
		return x
	case *nodal.Process:
		return x.Node()
	}
	return nil
}

// call sends one management request to sup and returns its reply, whose
// err is also returned. The caller's codec learns the request and reply
// types first, in case it is not the DefaultCodec.
func call(ctx context.Context, c Caller, sup nodal.Pid, req request) (reply, error) {
	if n := callerNode(c); n != nil {
		registerTypes(n.Codec())
	}
	r, err := c.Call(ctx, sup, req)
	if err != nil {
		return reply{}, err
	}
	rep, ok := r.(reply)
	if !ok {
		return reply{}, fmt.Errorf("%w: %v answered %T", ErrNotSupervisor, sup, r)
	}
	return rep, rep.err
}

// StartChild adds a static child to the supervisor sup and starts it (OTP
// supervisor:start_child/2 with a child spec). It returns the child's pid,
// zero if its start function chose to ignore. Errors: *ChildError wrapping
// ErrInvalidSpec, ErrChildAlreadyStarted (with the running pid),
// ErrChildAlreadyPresent, ErrStartChild (and the start error: the child is
// not added) or ErrWrongStrategy on a SimpleOneForOne supervisor; and the
// errors of Call (nodal.ErrNoProc if sup is dead, ErrTimeout on ctx's deadline).
// sup must be on the caller's node (a spec's functions cannot travel): for
// a supervisor on another node the error wraps nodal.ErrCodec and says so.
func StartChild(ctx context.Context, c Caller, sup nodal.Pid, spec Child) (nodal.Pid, error) {
	ns, err := spec.normalize()
	if err != nil {
		return nodal.Pid{}, &ChildError{ID: spec.ID, Err: fmt.Errorf("%w: %w", ErrInvalidSpec, err)}
	}
	rep, err := call(ctx, c, sup, request{op: opStartChild, spec: ns})
	return rep.pid, err
}

// StartDynamicChild starts a child of the SimpleOneForOne supervisor sup
// from its Template with args (OTP supervisor:start_child/2 with extra
// arguments). It returns the child's pid, zero if the start function chose
// to ignore (nothing is kept then). Errors: *ChildError wrapping
// ErrStartChild (and the start error) or ErrWrongStrategy; and the errors
// of Call.
func StartDynamicChild(ctx context.Context, c Caller, sup nodal.Pid, args any) (nodal.Pid, error) {
	req := request{op: opStartDynamic, args: args}
	// Off this node the args travel as bytes of the caller's codec, decoded
	// by the supervisor node's codec: the request's own encoding never
	// calls back into a codec.
	if n := callerNode(c); n == nil || sup.Node != n.Name() {
		codec := nodal.DefaultCodec
		if n != nil {
			codec = n.Codec()
		}
		raw, err := codec.Marshal(args)
		if err != nil {
			return nodal.Pid{}, err
		}
		req = request{op: opStartDynamic, raw: raw, encoded: true}
	}
	rep, err := call(ctx, c, sup, req)
	return rep.pid, err
}

// TerminateChild stops the static child id of sup the way the supervisor
// stops children (exit signal shutdown, Shutdown to stop, then kill) and
// keeps its spec, so RestartChild can start it again; a Temporary child's
// spec is deleted (OTP supervisor:terminate_child/2). Stopping a child
// that is not running is not an error. Errors: *ChildError wrapping
// ErrChildNotFound or ErrWrongStrategy (SimpleOneForOne children have no
// id: use TerminateChildPid); and the errors of Call.
func TerminateChild(ctx context.Context, c Caller, sup nodal.Pid, id string) error {
	_, err := call(ctx, c, sup, request{op: opTerminate, id: id})
	return err
}

// TerminateChildPid stops the running child pid of sup, static or dynamic,
// like TerminateChild; a SimpleOneForOne child is forgotten (OTP
// supervisor:terminate_child/2 with a pid). Errors: *ChildError wrapping
// ErrChildNotFound if pid is not a running child of sup; and the errors of
// Call.
func TerminateChildPid(ctx context.Context, c Caller, sup nodal.Pid, pid nodal.Pid) error {
	_, err := call(ctx, c, sup, request{op: opTerminate, pid: pid, byPid: true})
	return err
}

// RestartChild starts again the static child id of sup, which must be
// stopped (after TerminateChild, or a Transient child that exited normally)
// (OTP supervisor:restart_child/2). It returns the new pid. Errors:
// *ChildError wrapping ErrChildNotFound, ErrChildRunning,
// ErrChildRestarting, ErrStartChild (and the start error) or
// ErrWrongStrategy; and the errors of Call.
func RestartChild(ctx context.Context, c Caller, sup nodal.Pid, id string) (nodal.Pid, error) {
	rep, err := call(ctx, c, sup, request{op: opRestart, id: id})
	return rep.pid, err
}

// DeleteChild removes the spec of the stopped static child id of sup (OTP
// supervisor:delete_child/2). Errors: *ChildError wrapping
// ErrChildNotFound, ErrChildRunning, ErrChildRestarting or
// ErrWrongStrategy; and the errors of Call.
func DeleteChild(ctx context.Context, c Caller, sup nodal.Pid, id string) error {
	_, err := call(ctx, c, sup, request{op: opDelete, id: id})
	return err
}

// WhichChildren lists the children of sup (OTP supervisor:which_children/1):
// static children in start order, then dynamic children in the order they
// were started.
func WhichChildren(ctx context.Context, c Caller, sup nodal.Pid) ([]ChildInfo, error) {
	rep, err := call(ctx, c, sup, request{op: opWhich})
	return rep.children, err
}

// CountChildren counts the children of sup (OTP
// supervisor:count_children/1).
func CountChildren(ctx context.Context, c Caller, sup nodal.Pid) (ChildCount, error) {
	rep, err := call(ctx, c, sup, request{op: opCount})
	return rep.count, err
}

// Stop stops sup: it stops its children (static ones in reverse
// start order, each by its Shutdown), answers, and exits with reason
// normal (like OTP's proc_lib:stop/1). When it returns without error every
// child has exited; the supervisor process itself exits right after. A
// Permanent child supervisor stopped this way is restarted by its parent,
// as in OTP.
func Stop(ctx context.Context, c Caller, sup nodal.Pid) error {
	_, err := call(ctx, c, sup, request{op: opStop})
	return err
}
