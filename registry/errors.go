package registry

import (
	"errors"
	"fmt"

	"github.com/nodal-go/nodal"
)

// Size limits on what a registration carries, checked by Register and by
// the decoders of frames from the network.
const (
	// MaxNameLen bounds a name, in bytes.
	MaxNameLen = 255
	// MaxMetaLen bounds a registration's metadata, in bytes.
	MaxMetaLen = 1024
	// MaxResolverLen bounds a resolver's name, in bytes.
	MaxResolverLen = 64
)

// Sentinels, usable with errors.Is.
var (
	// ErrNotRegistered: the name has no visible registration here.
	ErrNotRegistered = errors.New("registry: name not registered")
	// ErrNameTooLong: the name is empty or longer than MaxNameLen.
	ErrNameTooLong = errors.New("registry: name empty or too long")
	// ErrMetaTooLong: the metadata is longer than MaxMetaLen.
	ErrMetaTooLong = errors.New("registry: metadata too long")
	// ErrNotLocal: the pid is not a process of this node (only a pid's own
	// node registers it).
	ErrNotLocal = errors.New("registry: pid is not a process of this node")
	// ErrUnknownResolver: the resolver's name is not in Config.Resolvers or
	// the built-ins.
	ErrUnknownResolver = errors.New("registry: unknown resolver")
	// ErrForeignClaim: a claim from the network whose pid is not a process
	// of the node (and incarnation) that wrote it; only a pid's own node
	// registers it, so such a claim is bad input and the delta carrying it
	// is dropped (Stats.Refused).
	ErrForeignClaim = errors.New("registry: claim of a pid its origin does not own")
	// ErrStopped: the registry has stopped.
	ErrStopped = errors.New("registry: stopped")
)

// AlreadyRegisteredError: the name is taken here by another process. It
// matches ErrAlreadyRegistered with errors.Is; errors.As gives the holder.
type AlreadyRegisteredError struct {
	Name   string
	Holder nodal.Pid
}

// ErrAlreadyRegistered is matched by every *AlreadyRegisteredError.
var ErrAlreadyRegistered = errors.New("registry: name already registered")

func (e *AlreadyRegisteredError) Error() string {
	return fmt.Sprintf("registry: name %q already registered to %v", e.Name, e.Holder)
}

// Is matches ErrAlreadyRegistered.
func (e *AlreadyRegisteredError) Is(target error) bool { return target == ErrAlreadyRegistered }

// PidHasNameError: the process already has a (different) name here. It
// matches ErrPidHasName with errors.Is.
type PidHasNameError struct {
	Pid  nodal.Pid
	Name string
}

// ErrPidHasName is matched by every *PidHasNameError.
var ErrPidHasName = errors.New("registry: pid already has a name")

func (e *PidHasNameError) Error() string {
	return fmt.Sprintf("registry: %v already registered as %q", e.Pid, e.Name)
}

// Is matches ErrPidHasName.
func (e *PidHasNameError) Is(target error) bool { return target == ErrPidHasName }

// NotOwnerError: Unregister of a name held by a process of another node
// (only the owner's node removes a registration). It matches ErrNotOwner.
type NotOwnerError struct {
	Name   string
	Holder nodal.Pid
}

// ErrNotOwner is matched by every *NotOwnerError.
var ErrNotOwner = errors.New("registry: name held by a process of another node")

func (e *NotOwnerError) Error() string {
	return fmt.Sprintf("registry: name %q is held by %v, a process of another node", e.Name, e.Holder)
}

// Is matches ErrNotOwner.
func (e *NotOwnerError) Is(target error) bool { return target == ErrNotOwner }

// ConflictError is the exit reason of a process that lost its name in a
// conflict under an exit policy (Erlang's random_exit_name, Horde's
// {:name_conflict, ...}). A process that traps exits receives it in an
// nodal.Exit message and may hand its state to Winner before it ends.
type ConflictError struct {
	Name   string
	Winner nodal.Pid
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("registry: name conflict: %q kept by %v", e.Name, e.Winner)
}

// NameConflict is the message a process receives when it lost its name in
// a conflict under a notify policy (Erlang's {global_name_conflict, Name,
// Other}). Its name is removed; it stays alive. Winner is the process that
// kept the name, or, when nobody kept it (NotifyAll), the other claimant.
type NameConflict struct {
	Name   string
	Winner nodal.Pid
}
