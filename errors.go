package nodal

import (
	"errors"
)

// Sentinel errors of the runtime. Branch on them with errors.Is; the runtime
// wraps them with details (a name, a pid) and never expects string matching.
var (
	// ErrNoProc means the target process does not exist (or no longer does).
	ErrNoProc = errors.New("nodal: no such process")
	// ErrNotRegistered means no local process is registered under the name.
	ErrNotRegistered = errors.New("nodal: name not registered")
	// ErrNameTaken means another process already holds the name.
	ErrNameTaken = errors.New("nodal: name already taken")
	// ErrAlreadyRegistered means the process already holds a name (Erlang
	// allows one name per process).
	ErrAlreadyRegistered = errors.New("nodal: process already has a name")
	// ErrBadName means a process name is empty or too long.
	ErrBadName = errors.New("nodal: bad process name")
	// ErrBadNodeName means a node name is not of the form name@host.
	ErrBadNodeName = errors.New("nodal: bad node name")
	// ErrBadPid means a string is not a pid in the "<node.id.incarnation>" form.
	ErrBadPid = errors.New("nodal: malformed pid")
	// ErrBadRef means a string is not a ref in the "#Ref<node.id.incarnation>" form.
	ErrBadRef = errors.New("nodal: malformed ref")
	// ErrTimeout is wrapped, together with context.DeadlineExceeded, by every
	// wait that ends because its context's deadline passed.
	ErrTimeout = errors.New("nodal: timeout")
	// ErrExited means the calling process has already exited (it was killed
	// or received a fatal exit signal); the error is an *ExitError that also
	// carries the reason.
	ErrExited = errors.New("nodal: process exited")
	// ErrStopped means the node is stopping or stopped.
	ErrStopped = errors.New("nodal: node stopped")
	// ErrInvalidConfig is wrapped by Config.Validate errors, which name the field.
	ErrInvalidConfig = errors.New("nodal: invalid config")
	// ErrBadOption means a spawn option is invalid or conflicts with another.
	ErrBadOption = errors.New("nodal: bad spawn option")
	// ErrInitFailed is wrapped by the *ExitError that SpawnActor returns when
	// the actor's Init failed (the process has then exited with that reason).
	ErrInitFailed = errors.New("nodal: actor init failed")
	// ErrNoReply is returned by CallHandler.HandleCall to answer later:
	// the actor goes on and nobody replies now; whoever holds the From
	// replies with Process.Reply or Node.Reply (gen_server's
	// {noreply, State}).
	ErrNoReply = errors.New("nodal: reply later")
)

// ExitError reports that a process has exited, and why. It is returned by
// Receive and the other Process methods once the process is dead (errors.Is
// ErrExited), and by SpawnActor when Init failed (errors.Is ErrInitFailed).
// errors.Is also matches the exit reason itself.
type ExitError struct {
	Pid    Pid
	Reason error
	init   bool
}

// Error implements error.
func (e *ExitError) Error() string {
	what := "nodal: process exited"
	if e.init {
		what = "nodal: actor init failed"
	}
	return what + ": " + e.Pid.String() + ": " + reasonString(e.Reason)
}

// Unwrap returns ErrExited (or ErrInitFailed) and the reason.
func (e *ExitError) Unwrap() []error {
	s := ErrExited
	if e.init {
		s = ErrInitFailed
	}
	if e.Reason == nil {
		return []error{s}
	}
	return []error{s, e.Reason}
}

// CallError reports a Call whose target exited (or never existed) before it
// replied. errors.Is matches the exit reason, and ErrNoProc when the target
// did not exist (reason noproc).
type CallError struct {
	To     Pid
	Reason error
}

// Error implements error.
func (e *CallError) Error() string {
	return "nodal: call to " + e.To.String() + " failed: " + reasonString(e.Reason)
}

// Unwrap returns the reason, and ErrNoProc when the reason is noproc.
func (e *CallError) Unwrap() []error {
	if errors.Is(e.Reason, ReasonNoProc) {
		return []error{e.Reason, ErrNoProc}
	}
	if errors.Is(e.Reason, ReasonNoConnection) {
		return []error{e.Reason, ErrNoConnection}
	}
	return []error{e.Reason}
}

func reasonString(r error) string {
	if r == nil {
		return "normal"
	}
	return r.Error()
}
