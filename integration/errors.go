package integration

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/rpc"
)

var (
	// ErrUnknownNode means a name that is not one of the cluster's nodes.
	ErrUnknownNode = errors.New("integration: unknown node")
	// ErrNotRunning means an operation on a node that is killed, stopped
	// or frozen.
	ErrNotRunning = errors.New("integration: node not running")
	// ErrCtl means node ctl (real mode) failed without an answer from the
	// node: it could not run, or printed no JSON object.
	ErrCtl = errors.New("integration: node ctl failed")
)

// OpError is the failure of an operation asked of a node: Node and Op
// (call, send, rpc, ...) say what, and Err why. In-process Err is the
// error the Go API returned. In real mode the node's answer crosses a
// process boundary as text; Err then keeps that text and matches, with
// errors.Is, the nodal and rpc sentinels and reasons whose texts it
// contains (nodal.ErrNoConnection, nodal.ReasonNoConnection, rpc.ErrNodeDown,
// nodal.ErrTimeout, ...), so one test body checks errors the same way in
// both modes.
type OpError struct {
	Node string
	Op   string
	Err  error
}

// Error implements error.
func (e *OpError) Error() string {
	return fmt.Sprintf("integration: %s on %s: %v", e.Op, e.Node, e.Err)
}

// Unwrap returns Err.
func (e *OpError) Unwrap() error { return e.Err }

// textError is an error that came back as text from node ctl, with the
// sentinels its text names.
type textError struct {
	text string
	is   []error
}

func (e *textError) Error() string   { return e.text }
func (e *textError) Unwrap() []error { return e.is }

// knownErrors are the sentinels a text from node ctl is matched against,
// each with the further sentinels it implies (as nodal.CallError unwraps
// noconnection to ErrNoConnection too).
var knownErrors = []struct {
	err     error
	implies []error
}{
	{nodal.ErrNoConnection, nil},
	{nodal.ErrTimeout, []error{context.DeadlineExceeded}},
	{nodal.ErrNoProc, nil},
	{nodal.ErrNotRegistered, nil},
	{nodal.ErrUnknownNode, nil},
	{nodal.ErrUnknownBehaviour, nil},
	{nodal.ErrStopped, nil},
	{rpc.ErrNodeDown, []error{nodal.ErrNoConnection}},
	{rpc.ErrNoFunction, nil},
	{rpc.ErrBadArgs, nil},
	{rpc.ErrSystemLimit, nil},
	{context.DeadlineExceeded, nil},
}

// knownReasons are exit reasons, matched as whole words of a text.
var knownReasons = []struct {
	err     error
	implies []error
}{
	{nodal.ReasonNoConnection, []error{nodal.ErrNoConnection}},
	{nodal.ReasonNoProc, []error{nodal.ErrNoProc}},
	{nodal.ReasonKilled, nil},
	{nodal.ReasonShutdown, nil},
}

// errorFromText turns a text node ctl printed into an error that matches
// the sentinels the text names.
func errorFromText(text string) error {
	e := &textError{text: text}
	add := func(errs ...error) {
		for _, err := range errs {
			if !errors.Is(e, err) {
				e.is = append(e.is, err)
			}
		}
	}
	for _, k := range knownErrors {
		if strings.Contains(text, k.err.Error()) {
			add(k.err)
			add(k.implies...)
		}
	}
	words := strings.FieldsFunc(text, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_')
	})
	for _, k := range knownReasons {
		for _, w := range words {
			if w == k.err.Error() {
				add(k.err)
				add(k.implies...)
				break
			}
		}
	}
	return e
}

// reasonFromText turns an exit reason printed by node ctl back into the
// nodal reason of that text, or an error with the text.
func reasonFromText(text string) error {
	for _, r := range []error{nodal.ReasonNoConnection, nodal.ReasonNoProc, nodal.ReasonKilled,
		nodal.ReasonShutdown, nodal.ReasonNormal, nodal.ReasonKill} {
		if text == r.Error() {
			return r
		}
	}
	return errorFromText(text)
}
