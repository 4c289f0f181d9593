package nodal

import (
	"errors"
	"fmt"
)

// reason is an Erlang-style atom used as an exit reason. Its Error text is the
// atom itself ("normal", "killed", ...).
type reason string

func (r reason) Error() string { return string(r) }

// Exit reasons. A process's exit reason is an error; these sentinels are the
// atoms Erlang uses and compare with errors.Is.
var (
	// ReasonNormal is the reason of a process whose function returned nil (or
	// that exited normally). A normal exit signal does not kill a linked,
	// non-trapping process.
	ReasonNormal error = reason("normal")
	// ReasonKill is the reason to send (SendExit, Node.Exit) to kill a process
	// unconditionally: it cannot be trapped. The dying process's reason is
	// then ReasonKilled.
	ReasonKill error = reason("kill")
	// ReasonKilled is the exit reason of a process killed with ReasonKill.
	// Unlike kill it is an ordinary reason when it propagates over links.
	ReasonKilled error = reason("killed")
	// ReasonShutdown is the reason supervisors and Node.Stop use to ask a
	// process to end. It kills a non-trapping linked process.
	ReasonShutdown error = reason("shutdown")
	// ReasonNoProc is the reason in the Down or exit signal a process gets
	// when it monitors or links to a process that does not exist.
	ReasonNoProc error = reason("noproc")
	// ReasonNoConnection is the reason when the node of the other process is
	// unreachable (a local-only node reaches no other node).
	ReasonNoConnection error = reason("noconnection")
)

// PanicError is the exit reason of a process that panicked: the panic value
// and the stack of the panicking goroutine. The node survives the panic.
type PanicError struct {
	Value any
	Stack []byte
}

// Error implements error.
func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Unwrap returns the panic value when it is an error.
func (e *PanicError) Unwrap() error {
	if err, ok := e.Value.(error); ok {
		return err
	}
	return nil
}

// ShutdownError is Erlang's {shutdown, Term}: a shutdown with details.
// errors.Is(err, ReasonShutdown) holds for it, and IsNormal reports it as a
// normal exit, as OTP does for transient children.
type ShutdownError struct {
	Reason error
}

// Error implements error.
func (e *ShutdownError) Error() string {
	return "shutdown: " + reasonString(e.Reason)
}

// Is reports true for ReasonShutdown.
func (e *ShutdownError) Is(target error) bool { return target == ReasonShutdown }

// Unwrap returns the inner reason.
func (e *ShutdownError) Unwrap() error { return e.Reason }

// IsNormal reports whether reason counts as a normal exit for supervision (the
// "transient" restart rule): nil, ReasonNormal, ReasonShutdown and any
// *ShutdownError. Note that for links only ReasonNormal is harmless: a
// shutdown exit signal kills a non-trapping linked process.
func IsNormal(reason error) bool {
	if reason == nil || reason == ReasonNormal || reason == ReasonShutdown {
		return true
	}
	var se *ShutdownError
	return errors.As(reason, &se)
}

// isNormalExit reports whether an exit signal with this reason leaves a
// non-trapping receiver alive (only normal does).
func isNormalExit(r error) bool {
	return r == nil || r == ReasonNormal || errors.Is(r, ReasonNormal)
}

// normalize maps the nil reason to ReasonNormal.
func normalize(r error) error {
	if r == nil {
		return ReasonNormal
	}
	return r
}

// exitPanic unwinds a Func process's stack when it calls Process.Exit.
type exitPanic struct{ reason error }

// IsExitPanic reports whether v, a value recovered from a panic in a Func
// process, is the unwinding Process.Exit uses to end the process. Code that
// recovers panics on a process's goroutine (a supervisor running a child's
// start function) must panic again with v when it is, or the process would
// not end.
func IsExitPanic(v any) bool {
	_, ok := v.(exitPanic)
	return ok
}
