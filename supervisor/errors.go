package supervisor

import (
	"errors"
	"fmt"

	"github.com/nodal-go/nodal"
)

// Errors returned by supervisors and their management calls. The management
// calls wrap them in a *ChildError naming the child, so both errors.Is and
// errors.As work.
var (
	// ErrChildNotFound is returned when no child has the given id or pid
	// (Erlang {error, not_found}).
	ErrChildNotFound = errors.New("supervisor: no such child")
	// ErrChildRunning is returned by RestartChild and DeleteChild for a
	// child that is running (Erlang {error, running}).
	ErrChildRunning = errors.New("supervisor: child is running")
	// ErrChildRestarting is returned by RestartChild and DeleteChild for a
	// child whose restart failed and is being retried (Erlang
	// {error, restarting}).
	ErrChildRestarting = errors.New("supervisor: child is restarting")
	// ErrChildAlreadyStarted is returned by StartChild when a running child
	// has the same id (Erlang {error, {already_started, Pid}}); the
	// *ChildError carries the running pid.
	ErrChildAlreadyStarted = errors.New("supervisor: child already started")
	// ErrChildAlreadyPresent is returned by StartChild when a child that is
	// not running has the same id (Erlang {error, already_present}).
	ErrChildAlreadyPresent = errors.New("supervisor: child already present")
	// ErrStartChild marks a child whose start function failed, at
	// supervisor start (Erlang failed_to_start_child) or in StartChild,
	// RestartChild and StartDynamicChild. The start function's error is
	// wrapped too.
	ErrStartChild = errors.New("supervisor: child failed to start")
	// ErrInvalidSpec is returned by Start and StartChild for a
	// malformed Spec or Child; the message names the field.
	ErrInvalidSpec = errors.New("supervisor: invalid supervisor spec")
	// ErrWrongStrategy is returned by a management call the supervisor's
	// strategy does not support: StartChild, RestartChild and DeleteChild
	// on a SimpleOneForOne supervisor, StartDynamicChild on any other
	// (Erlang {error, simple_one_for_one}).
	ErrWrongStrategy = errors.New("supervisor: operation not supported by the supervisor strategy")
	// ErrNotSupervisor is returned by a management call whose target
	// answered with something other than a supervisor reply, and is the
	// reply of a supervisor to a request it does not know.
	ErrNotSupervisor = errors.New("supervisor: not a supervisor")
)

// ChildError is the error of a supervisor operation on one child. It names
// the child (ID for static children, Pid when known) and wraps the cause,
// one of the Err* sentinels above, and for start failures also the start
// function's own error.
type ChildError struct {
	// ID is the child's id ("" for a SimpleOneForOne child).
	ID string
	// Pid is the child's pid when it has one (ErrChildAlreadyStarted,
	// TerminateChildPid), else the zero nodal.Pid.
	Pid nodal.Pid
	// Err is the cause.
	Err error
}

// Error implements error.
func (e *ChildError) Error() string {
	switch {
	case e.ID != "":
		return fmt.Sprintf("supervisor: child %q: %v", e.ID, e.Err)
	case !e.Pid.IsZero():
		return fmt.Sprintf("supervisor: child %v: %v", e.Pid, e.Err)
	default:
		return fmt.Sprintf("supervisor: child: %v", e.Err)
	}
}

// Unwrap returns the cause.
func (e *ChildError) Unwrap() error { return e.Err }

// startError wraps a start function's error so that it is both ErrStartChild
// and the original error.
func startError(id string, err error) error {
	return &ChildError{ID: id, Err: fmt.Errorf("%w: %w", ErrStartChild, err)}
}
