package rpc

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nodal-go/nodal"
)

// Errors of a failed call, usable with errors.Is on what Call and the other
// calls return. They follow erpc's {erpc, Reason} classes.
var (
	// ErrNoConnection means the callee's node could not be reached, or its
	// connection went down while the call was out: the function may or may
	// not have been applied. It is the root package's sentinel.
	ErrNoConnection = nodal.ErrNoConnection
	// ErrTimeout means the call's deadline passed before a reply came: the
	// function may or may not have been applied, and a reply that comes
	// later is dropped. It is the root package's sentinel.
	ErrTimeout = nodal.ErrTimeout
	// ErrNodeDown is wrapped, with ErrNoConnection, by a call that failed
	// fast because the node's circuit breaker is open (the node is known to
	// be down); nothing was sent.
	ErrNodeDown = errors.New("rpc: node known to be down (circuit breaker open)")
	// ErrNoFunction means the callee has no function registered under the
	// name: nothing was applied.
	ErrNoFunction = errors.New("rpc: no such function")
	// ErrBadArgs means the arguments could not be encoded (at the caller)
	// or decoded into the function's argument type (at the callee): nothing
	// was applied.
	ErrBadArgs = errors.New("rpc: bad arguments")
	// ErrSystemLimit means the callee runs Config.MaxConcurrent calls from
	// this node already: nothing was applied.
	ErrSystemLimit = errors.New("rpc: system limit: too many concurrent calls")
	// ErrStopped means this node's rpc service was stopped.
	ErrStopped = errors.New("rpc: stopped")
	// ErrNoRequest is returned by a Requests collection that is empty.
	ErrNoRequest = errors.New("rpc: no request")
	// ErrBadFrame wraps the error of a frame that cannot be decoded.
	ErrBadFrame = errors.New("rpc: malformed frame")
)

// CallError is the error of every call that did not return a result: the
// node and function, and Err, which is one of the sentinels above (the call
// failed) or a *FuncError, *PanicError or *KilledError (the function ran and
// failed). errors.Is and errors.As see through it.
type CallError struct {
	Node string
	Func string
	Err  error
}

// Error implements error.
func (e *CallError) Error() string {
	return fmt.Sprintf("rpc: %s on %s: %v", e.Func, e.Node, e.Err)
}

// Unwrap returns Err.
func (e *CallError) Unwrap() error { return e.Err }

// FuncError is erpc's exception class: the function returned an error. Text
// is its message; when the error matched a sentinel registered with
// RegisterError on the callee (and the same name is registered here),
// errors.Is matches that sentinel too.
type FuncError struct {
	Text     string
	Sentinel string // the registered name of the sentinel it matched, or ""
	sentinel error
}

// Error implements error.
func (e *FuncError) Error() string { return e.Text }

// Unwrap returns the local sentinel registered under Sentinel, if any.
func (e *FuncError) Unwrap() error { return e.sentinel }

// PanicError is erpc's error class: the function panicked. Value is the
// panic value's text and Stack the goroutine's stack trimmed to the frames
// from the panic down to the function.
type PanicError struct {
	Value string
	Stack string
}

// Error implements error.
func (e *PanicError) Error() string { return "rpc: function panicked: " + e.Value }

// KilledError is erpc's {signal, Reason}: the process running the function
// was ended by an exit signal (or the callee's node or rpc service stopped:
// reason shutdown) before the function returned. SelfExit is set when the
// function ended its own process with Process.Exit (erpc's exit class; its
// reason is not known then). errors.Is matches the root's reason sentinels
// (nodal.ReasonKilled, nodal.ReasonShutdown, ...) by their text.
type KilledError struct {
	Reason   string
	SelfExit bool
}

// Error implements error.
func (e *KilledError) Error() string {
	if e.SelfExit {
		return "rpc: function exited its process: " + e.Reason
	}
	return "rpc: function's process killed: " + e.Reason
}

// Unwrap returns the root's reason sentinel of the same text, if any.
func (e *KilledError) Unwrap() error {
	for _, r := range []error{nodal.ReasonKilled, nodal.ReasonShutdown, nodal.ReasonNormal, nodal.ReasonNoConnection, nodal.ReasonKill} {
		if r.Error() == e.Reason {
			return r
		}
	}
	return nil
}

// sentinels maps the names of errors registered with RegisterError to them,
// in registration order (the first match wins on the callee).
var sentinels = struct {
	sync.RWMutex
	names  []string
	byName map[string]error
}{byName: map[string]error{}}

// RegisterError makes err's identity travel: when a function returns an
// error for which errors.Is(returned, err) holds, the caller's *FuncError
// matches err under errors.Is, provided the caller registered the same
// name too. Register at start-up, like codec types. A few sentinels are
// registered already: context.Canceled ("context.canceled"),
// context.DeadlineExceeded ("context.deadline"), nodal.ErrNoProc
// ("nodal.noproc"), nodal.ErrNotRegistered ("nodal.notregistered"),
// nodal.ErrTimeout ("nodal.timeout"), nodal.ErrNoConnection
// ("nodal.noconnection").
func RegisterError(name string, err error) error {
	if name == "" || err == nil {
		return fmt.Errorf("%w: RegisterError needs a name and an error", nodal.ErrBadOption)
	}
	sentinels.Lock()
	defer sentinels.Unlock()
	if old, ok := sentinels.byName[name]; ok {
		if old == err {
			return nil
		}
		return fmt.Errorf("%w: error name %q already registered", nodal.ErrBadOption, name)
	}
	sentinels.byName[name] = err
	sentinels.names = append(sentinels.names, name)
	return nil
}

func init() {
	for _, s := range []struct {
		name string
		err  error
	}{
		{"context.canceled", context.Canceled},
		{"context.deadline", context.DeadlineExceeded},
		{"nodal.noproc", nodal.ErrNoProc},
		{"nodal.notregistered", nodal.ErrNotRegistered},
		{"nodal.timeout", nodal.ErrTimeout},
		{"nodal.noconnection", nodal.ErrNoConnection},
	} {
		if err := RegisterError(s.name, s.err); err != nil {
			panic(err)
		}
	}
}

// sentinelName returns the name of the first registered sentinel err
// matches, or "".
func sentinelName(err error) string {
	sentinels.RLock()
	defer sentinels.RUnlock()
	for _, name := range sentinels.names {
		if errors.Is(err, sentinels.byName[name]) {
			return name
		}
	}
	return ""
}

func sentinelByName(name string) error {
	if name == "" {
		return nil
	}
	sentinels.RLock()
	defer sentinels.RUnlock()
	return sentinels.byName[name]
}

// timeoutError is the error of a wait that ended with ctx.
func timeoutError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w (the function may or may not have been applied): %w", ErrTimeout, err)
	}
	return err
}
