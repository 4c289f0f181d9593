package groups

import (
	"errors"
	"fmt"

	"github.com/nodal-go/nodal"
)

// Errors of the groups API, usable with errors.Is.
var (
	// ErrNotJoined means Leave named a pid that is not a member of the
	// group (pg's not_joined): nothing changed.
	ErrNotJoined = errors.New("groups: not joined")
	// ErrNotLocal means Join or Leave named a pid of another node, or of
	// an earlier start of this node (pg's nolocal): only a pid's own node
	// changes its memberships. Nothing changed.
	ErrNotLocal = errors.New("groups: pid is not a process of this node")
	// ErrBadGroup means a group name is empty or longer than MaxGroupName.
	ErrBadGroup = errors.New("groups: bad group name")
	// ErrMetaTooLarge means a membership's metadata is longer than MaxMeta.
	ErrMetaTooLarge = errors.New("groups: metadata too large")
	// ErrBadScope means a scope name is empty, longer than MaxScopeName or
	// contains ',' or ' '.
	ErrBadScope = errors.New("groups: bad scope name")
	// ErrStopped means the scope was stopped (Stop, or Node.Stop).
	ErrStopped = errors.New("groups: stopped")
	// ErrMonitorOverflow ends a monitor whose reader fell more than its
	// buffer behind; Err returns it once the channel is closed. Monitor
	// again for a fresh snapshot.
	ErrMonitorOverflow = errors.New("groups: monitor fell behind its buffer")
	// ErrForeignMembership is wrapped by the error for a membership that
	// arrived from the network written by a node other than its pid's (at
	// the pid's incarnation): the delta carrying it is dropped whole and
	// counted (Replication.Refused).
	ErrForeignMembership = errors.New("groups: membership written by a node other than its pid's")
	// ErrMalformed is wrapped by every error decoding a membership or a
	// group name from the network.
	ErrMalformed = errors.New("groups: malformed encoding")
	// ErrTimeout is wrapped, with the ctx's error, by a member of a Call
	// that did not reply before the ctx's deadline. It is the root
	// package's sentinel.
	ErrTimeout = nodal.ErrTimeout
)

// NotLocalError is the error of a Join or Leave that named a pid of
// another node (or of an earlier start of this one). It wraps ErrNotLocal.
type NotLocalError struct {
	Pid  nodal.Pid
	Node string // this node
}

// Error implements error.
func (e *NotLocalError) Error() string {
	return fmt.Sprintf("%v: %v on %s", ErrNotLocal, e.Pid, e.Node)
}

// Unwrap returns ErrNotLocal.
func (e *NotLocalError) Unwrap() error { return ErrNotLocal }

// NotJoinedError is the error of a Leave of a pid that is not a member of
// the group. It wraps ErrNotJoined.
type NotJoinedError struct {
	Group string
	Pid   nodal.Pid
}

// Error implements error.
func (e *NotJoinedError) Error() string {
	return fmt.Sprintf("%v: %v is not a member of %q", ErrNotJoined, e.Pid, e.Group)
}

// Unwrap returns ErrNotJoined.
func (e *NotJoinedError) Unwrap() error { return ErrNotJoined }
