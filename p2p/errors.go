package p2p

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers branch on them with errors.Is; messages are for people.
var (
	// ErrInvalidConfig wraps every Config validation error; the message names the field.
	ErrInvalidConfig = errors.New("p2p: invalid config")
	// ErrInvalidName is returned for a node name that is not "name@host".
	ErrInvalidName = errors.New("p2p: invalid node name")
	// ErrNameMode is returned when short and long node names would be mixed in one cluster.
	ErrNameMode = errors.New("p2p: short and long node names cannot be mixed")
	// ErrNameInUse is returned when a second live node claims a name already in use.
	ErrNameInUse = errors.New("p2p: node name already in use by a live node")
	// ErrCookieMismatch is returned (and given as a node-down reason) when the
	// peer does not share our cookie. The cookie itself is never part of a message.
	ErrCookieMismatch = errors.New("p2p: cookie mismatch")
	// ErrNoConnection is returned when a node is unknown or cannot be reached.
	ErrNoConnection = errors.New("p2p: no connection to node")
	// ErrFrameTooLarge is returned for a frame above Config.Advanced.MaxFrameSize.
	ErrFrameTooLarge = errors.New("p2p: frame too large")
	// ErrQueueFull is returned by TrySend when the peer's outbound queue is full.
	ErrQueueFull = errors.New("p2p: outbound queue full")
	// ErrStopped is returned by calls on a stopped Host.
	ErrStopped = errors.New("p2p: host stopped")
	// ErrTimeout is wrapped (with context.DeadlineExceeded) when a ctx deadline ends a wait.
	ErrTimeout = errors.New("p2p: timeout")
	// ErrProtocol is returned for malformed input from the network.
	ErrProtocol = errors.New("p2p: protocol error")
	// ErrTagsTooLarge is returned by SetTags (and wrapped by Validate) for
	// tags above MaxTagsSize.
	ErrTagsTooLarge = errors.New("p2p: node tags too large")
	// ErrInvalidTags is returned by SetTags (and wrapped by Validate) for a
	// tag with an empty key.
	ErrInvalidTags = errors.New("p2p: invalid node tags")
	// ErrBroadcastTooLarge is returned by Broadcast for a message above
	// MaxBroadcastSize (or what the tuned memberlist packet size leaves).
	ErrBroadcastTooLarge = errors.New("p2p: broadcast too large")

	// ErrConnClosed is a node-down reason: the connection was closed or reset.
	ErrConnClosed = errors.New("p2p: connection closed")
	// ErrFailureDetected is a node-down and member-event reason: memberlist
	// declared the node dead.
	ErrFailureDetected = errors.New("p2p: failure detected")
	// ErrLeft is a node-down and member-event reason: the node left the
	// cluster gracefully.
	ErrLeft = errors.New("p2p: node left")
	// ErrReplaced is a member-event reason (MemberReplaced): a new start of
	// the node took its name before its earlier start was declared dead.
	ErrReplaced = errors.New("p2p: node replaced by a new start")
	// ErrDisconnected is a node-down reason: Disconnect was called on either side.
	ErrDisconnected = errors.New("p2p: disconnected")
	// ErrShutdown is a node-down reason: the local host is stopping.
	ErrShutdown = errors.New("p2p: local host shutting down")
)

// PeerError is a failure involving one remote node. It wraps the cause, so
// errors.Is(err, ErrCookieMismatch) and friends work on it.
type PeerError struct {
	Node string // the peer's node name, or its address when the name is not known
	Err  error  // the cause
}

// Error implements error.
func (e *PeerError) Error() string {
	return fmt.Sprintf("%v from %s", e.Err, e.Node)
}

// Unwrap returns the cause.
func (e *PeerError) Unwrap() error { return e.Err }
