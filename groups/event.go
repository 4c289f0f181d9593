package groups

import (
	"fmt"

	"github.com/nodal-go/nodal"
)

// EventKind says whether members joined or left.
type EventKind uint8

// Event kinds.
const (
	// Joined: the pids became visible members of the group.
	Joined EventKind = 1
	// Left: the pids stopped being visible members of the group.
	Left EventKind = 2
)

// String returns "join" or "leave", pg's words.
func (k EventKind) String() string {
	switch k {
	case Joined:
		return "join"
	case Left:
		return "leave"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Cause says why members joined or left, like syn's event reasons.
type Cause uint8

// Causes.
const (
	// CauseLocal: Join or Leave on this node.
	CauseLocal Cause = 1
	// CauseExit: a member process of this node exited, so it left every
	// group (other nodes see CauseRemote).
	CauseExit Cause = 2
	// CauseRemote: the members' node joined or left them.
	CauseRemote Cause = 3
	// CauseNodeDown: the members' node is unreachable; its members are
	// hidden, not forgotten (they come back with CauseNodeUp).
	CauseNodeDown Cause = 4
	// CauseNodeUp: the members' node is reachable again, with the same
	// start; its members are shown again.
	CauseNodeUp Cause = 5
	// CausePurged: the members' node is gone for good (it left, restarted
	// with a new incarnation, or stayed down past the purge period).
	CausePurged Cause = 6
)

// String names the cause.
func (c Cause) String() string {
	switch c {
	case CauseLocal:
		return "local"
	case CauseExit:
		return "exit"
	case CauseRemote:
		return "remote"
	case CauseNodeDown:
		return "nodedown"
	case CauseNodeUp:
		return "nodeup"
	case CausePurged:
		return "purged"
	}
	return fmt.Sprintf("cause(%d)", uint8(c))
}

// Event is a change of a group's visible members, pg's {Ref, join | leave,
// Group, Pids}. A pid that joined twice appears twice in a Joined event
// (or in two events).
type Event struct {
	Kind  EventKind
	Group string
	Pids  []nodal.Pid // in pid order
	Cause Cause
}

// String describes the event, e.g. "join room [<a@h.1.1>] (local)".
func (e Event) String() string {
	return fmt.Sprintf("%v %s %v (%v)", e.Kind, e.Group, e.Pids, e.Cause)
}
