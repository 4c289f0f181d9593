package supervisor

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/nodal-go/nodal"
)

// Strategy is a supervisor's restart strategy.
type Strategy int

const (
	// OneForOne restarts only the child that exited (OTP one_for_one).
	OneForOne Strategy = iota
	// OneForAll stops all the other children in reverse start order, then
	// starts all of them again in start order (OTP one_for_all).
	OneForAll
	// RestForOne stops the children started after the one that exited in
	// reverse start order, then starts it and them again in start order
	// (OTP rest_for_one).
	RestForOne
	// SimpleOneForOne is a dynamic OneForOne supervisor of one kind of
	// child: it starts with no children and StartDynamicChild adds
	// children made from Spec.Template (OTP simple_one_for_one).
	SimpleOneForOne
)

// String returns the OTP name of the strategy, e.g. "one_for_one".
func (s Strategy) String() string {
	switch s {
	case OneForOne:
		return "one_for_one"
	case OneForAll:
		return "one_for_all"
	case RestForOne:
		return "rest_for_one"
	case SimpleOneForOne:
		return "simple_one_for_one"
	default:
		return fmt.Sprintf("Strategy(%d)", int(s))
	}
}

// RestartType says when a supervisor restarts a child that exited.
type RestartType int

const (
	// Permanent children are always restarted (OTP permanent).
	Permanent RestartType = iota
	// Transient children are restarted only when they exit abnormally, that
	// is with a reason for which nodal.IsNormal is false: not normal, shutdown or
	// *nodal.ShutdownError (OTP transient).
	Transient
	// Temporary children are never restarted and are forgotten when they
	// exit (OTP temporary).
	Temporary
)

// String returns the OTP name of the restart type, e.g. "permanent".
func (r RestartType) String() string {
	switch r {
	case Permanent:
		return "permanent"
	case Transient:
		return "transient"
	case Temporary:
		return "temporary"
	default:
		return fmt.Sprintf("RestartType(%d)", int(r))
	}
}

// ChildType tells a worker from a supervisor child. It sets the default
// Shutdown and is reported by WhichChildren and CountChildren.
type ChildType int

const (
	// ChildWorker is an ordinary process (OTP worker).
	ChildWorker ChildType = iota
	// ChildSupervisor is a supervisor (OTP supervisor).
	ChildSupervisor
)

// String returns the OTP name of the child type, "worker" or "supervisor".
func (t ChildType) String() string {
	switch t {
	case ChildWorker:
		return "worker"
	case ChildSupervisor:
		return "supervisor"
	default:
		return fmt.Sprintf("ChildType(%d)", int(t))
	}
}

const (
	// BrutalKill as a Shutdown kills the child at once with nodal.ReasonKill
	// (OTP brutal_kill).
	BrutalKill time.Duration = -1
	// Infinity as a Shutdown waits for the child to stop however long it
	// takes (OTP infinity); the default for ChildSupervisor children.
	Infinity time.Duration = math.MaxInt64

	// DefaultShutdown is the Shutdown of a worker whose Child leaves it
	// zero: 5 s, OTP's default.
	DefaultShutdown = 5 * time.Second
	// DefaultIntensity and DefaultPeriod are the restart intensity used
	// when Spec leaves them zero: at most 1 restart in 5 s, OTP's
	// defaults.
	DefaultIntensity = 1
	// DefaultPeriod: see DefaultIntensity.
	DefaultPeriod = 5 * time.Second
)

// Child describes a static child of a supervisor (OTP child_spec()).
// Nested builds the Child of a child supervisor and Remote the Child of a
// worker on another node; any other child sets Start itself.
type Child struct {
	// ID names the child within its supervisor; required and unique.
	ID string
	// Start starts the child and returns its pid. It runs on the
	// supervisor's process p and must start a process linked to p, usually
	// with p.Spawn(fn, nodal.WithLink()), p.SpawnActor(a, nodal.WithLink())
	// or p.SpawnOn(ctx, node, behaviour, args, nodal.WithLink()); the
	// supervisor also links to the returned pid, so a forgotten link is
	// repaired. A non-nil
	// error (or a panic) is a failed start. A zero Pid with a nil error
	// means "ignore" (OTP ignore): the child is kept but not running.
	Start func(p *nodal.Process) (nodal.Pid, error)
	// Restart says when the child is restarted; the zero value is Permanent.
	Restart RestartType
	// Shutdown is how long the supervisor waits, after sending the child an
	// exit signal nodal.ReasonShutdown, for it to stop before killing it with
	// nodal.ReasonKill. BrutalKill kills at once; Infinity waits forever. Zero
	// means DefaultShutdown (5 s) for a worker and Infinity for a
	// supervisor, as in OTP.
	Shutdown time.Duration
	// Type is ChildWorker (the zero value) or ChildSupervisor.
	Type ChildType
}

// ChildTemplate describes the children of a SimpleOneForOne supervisor.
// Its fields mean what Child's do.
type ChildTemplate struct {
	// Start starts one child; args is the value given to
	// StartDynamicChild. The rules of Child.Start apply.
	Start func(p *nodal.Process, args any) (nodal.Pid, error)
	// Restart: see Child.Restart.
	Restart RestartType
	// Shutdown: see Child.Shutdown. A SimpleOneForOne supervisor stops
	// its children all at once and waits at most Shutdown for all of them.
	Shutdown time.Duration
	// Type: see Child.Type.
	Type ChildType
}

// Spec configures a supervisor (OTP sup_flags() and child specs).
// Start copies it; later changes to the caller's value have no
// effect.
type Spec struct {
	// Strategy is the restart strategy; the zero value is OneForOne.
	Strategy Strategy
	// Intensity is the most restarts allowed in Period; one more stops the
	// supervisor (OTP intensity). Zero means DefaultIntensity (1). A
	// negative value allows no restart at all (OTP intensity 0): the first
	// exit that needs a restart stops the supervisor.
	Intensity int
	// Period is the sliding window of Intensity (OTP period). Zero means
	// DefaultPeriod (5 s).
	Period time.Duration
	// Children are the static children, started in this order and stopped
	// in the reverse order. Empty for SimpleOneForOne.
	Children []Child
	// Template describes the children of a SimpleOneForOne supervisor;
	// required for it and nil for the other strategies.
	Template *ChildTemplate
}

// Spawner is what a supervisor is started from: a *nodal.Node (a top-level
// supervisor) or a *nodal.Process (for instance a supervisor starting a
// child supervisor, on its own goroutine). Both implement it.
type Spawner interface {
	Spawn(fn nodal.Func, opts ...nodal.SpawnOption) (nodal.Pid, error)
}

var (
	_ Spawner = (*nodal.Node)(nil)
	_ Spawner = (*nodal.Process)(nil)
)

// Start starts a supervisor process from parent and returns once its
// children are started, in order (OTP supervisor:start_link). opts are
// passed to Spawn: nodal.WithLink() links the supervisor to a
// *nodal.Process parent (a supervisor child must be linked; Nested does
// it), nodal.WithName registers it.
//
// ctx bounds the start only, not the supervisor's life. If ctx ends before
// the children are all started (or, for a *nodal.Process parent, that
// process is killed, or the node stops), the supervisor is killed, its
// linked children with it, and Start returns an error wrapping ctx.Err()
// (and nodal.ErrTimeout on a deadline), or nodal.ErrStopped.
//
// If a child fails to start, the children already started are stopped in
// reverse order, the supervisor exits with a *nodal.ShutdownError and
// Start returns a *ChildError naming the child that wraps ErrStartChild
// and the start error. The supervisor unlinks from a *nodal.Process parent
// before that exit, so the parent learns of the failure from the returned
// error only. An invalid spec returns an error wrapping ErrInvalidSpec and
// starts nothing.
//
// When parent is a *nodal.Process, Start must be called on that process's
// goroutine; an exit signal from the parent (or one sent from outside any
// process with nodal.Node.Exit) stops the supervisor: it stops its
// children in reverse order and exits with the signal's reason.
func Start(ctx context.Context, parent Spawner, spec Spec, opts ...nodal.SpawnOption) (nodal.Pid, error) {
	spec, err := spec.normalize()
	if err != nil {
		return nodal.Pid{}, err
	}
	var parentPid nodal.Pid
	parentCtx := context.Background()
	var nodeDone <-chan struct{}
	kill := func(nodal.Pid) {}
	switch pp := parent.(type) {
	case *nodal.Process:
		parentPid = pp.Self()
		parentCtx = pp.Context()
		nodeDone = pp.Node().Done()
		registerTypes(pp.Node().Codec())
		kill = func(pid nodal.Pid) { pp.SendExit(pid, nodal.ReasonKill) }
	case *nodal.Node:
		nodeDone = pp.Done()
		registerTypes(pp.Codec())
		kill = func(pid nodal.Pid) { pp.Exit(pid, nodal.ReasonKill) }
	}
	ack := make(chan error, 1)
	// Trap exits from the first instant: an exit signal from the parent or
	// a child must never kill a supervisor.
	opts = append([]nodal.SpawnOption{nodal.WithTrapExit()}, opts...)
	pid, err := parent.Spawn(func(p *nodal.Process) error {
		return runSupervisor(p, spec, parentPid, ack)
	}, opts...)
	if err != nil {
		return nodal.Pid{}, err
	}
	select {
	case err := <-ack:
		if err != nil {
			return nodal.Pid{}, err
		}
		return pid, nil
	case <-ctx.Done():
		kill(pid) // ack is buffered: the supervisor never blocks on it
		err := ctx.Err()
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w: %w", nodal.ErrTimeout, err)
		}
		return nodal.Pid{}, fmt.Errorf("supervisor: starting %v: %w", pid, err)
	case <-parentCtx.Done():
		return nodal.Pid{}, fmt.Errorf("supervisor: starting %v: %w", pid, parentCtx.Err())
	case <-nodeDone:
		return nodal.Pid{}, fmt.Errorf("supervisor: starting %v: %w", pid, nodal.ErrStopped)
	}
}

// Nested returns the Child of a child supervisor started with
// spec: Type ChildSupervisor, Shutdown Infinity, Restart Permanent (change
// the returned value's fields to taste). Its start links the child
// supervisor to the parent supervisor.
func Nested(id string, spec Spec) Child {
	return Child{
		ID: id,
		Start: func(p *nodal.Process) (nodal.Pid, error) {
			return Start(p.Context(), p, spec, nodal.WithLink())
		},
		Restart:  Permanent,
		Shutdown: Infinity,
		Type:     ChildSupervisor,
	}
}

// normalize validates spec and returns a copy with defaults filled in.
func (spec Spec) normalize() (Spec, error) {
	out := spec
	out.Children = make([]Child, len(spec.Children))
	if spec.Template != nil {
		t := *spec.Template
		out.Template = &t
	}
	switch spec.Strategy {
	case OneForOne, OneForAll, RestForOne:
		if spec.Template != nil {
			return Spec{}, fmt.Errorf("%w: Template is only for SimpleOneForOne, strategy is %v", ErrInvalidSpec, spec.Strategy)
		}
	case SimpleOneForOne:
		if spec.Template == nil {
			return Spec{}, fmt.Errorf("%w: Template is required for SimpleOneForOne", ErrInvalidSpec)
		}
		if len(spec.Children) != 0 {
			return Spec{}, fmt.Errorf("%w: Children must be empty for SimpleOneForOne", ErrInvalidSpec)
		}
		if spec.Template.Start == nil {
			return Spec{}, fmt.Errorf("%w: Template.Start is nil", ErrInvalidSpec)
		}
		sh, err := normalizeChild(spec.Template.Restart, spec.Template.Shutdown, spec.Template.Type)
		if err != nil {
			return Spec{}, fmt.Errorf("%w: Template: %w", ErrInvalidSpec, err)
		}
		out.Template.Shutdown = sh
	default:
		return Spec{}, fmt.Errorf("%w: unknown Strategy %d", ErrInvalidSpec, int(spec.Strategy))
	}
	switch {
	case spec.Intensity == 0:
		out.Intensity = DefaultIntensity
	case spec.Intensity < 0:
		out.Intensity = 0
	}
	switch {
	case spec.Period == 0:
		out.Period = DefaultPeriod
	case spec.Period < 0:
		return Spec{}, fmt.Errorf("%w: negative Period %v", ErrInvalidSpec, spec.Period)
	}
	seen := make(map[string]bool, len(spec.Children))
	for i, c := range spec.Children {
		nc, err := c.normalize()
		if err != nil {
			return Spec{}, fmt.Errorf("%w: Children[%d]: %w", ErrInvalidSpec, i, err)
		}
		if seen[c.ID] {
			return Spec{}, fmt.Errorf("%w: Children[%d]: duplicate ID %q", ErrInvalidSpec, i, c.ID)
		}
		seen[c.ID] = true
		out.Children[i] = nc
	}
	return out, nil
}

// normalize validates a child spec and fills in the default Shutdown. The
// error does not wrap ErrInvalidSpec; callers add it.
func (c Child) normalize() (Child, error) {
	if c.ID == "" {
		return Child{}, fmt.Errorf("empty ID")
	}
	if c.Start == nil {
		return Child{}, fmt.Errorf("child %q: Start is nil", c.ID)
	}
	sh, err := normalizeChild(c.Restart, c.Shutdown, c.Type)
	if err != nil {
		return Child{}, fmt.Errorf("child %q: %w", c.ID, err)
	}
	c.Shutdown = sh
	return c, nil
}

func normalizeChild(r RestartType, shutdown time.Duration, t ChildType) (time.Duration, error) {
	switch r {
	case Permanent, Transient, Temporary:
	default:
		return 0, fmt.Errorf("unknown Restart %d", int(r))
	}
	switch t {
	case ChildWorker, ChildSupervisor:
	default:
		return 0, fmt.Errorf("unknown Type %d", int(t))
	}
	switch {
	case shutdown == 0 && t == ChildSupervisor:
		return Infinity, nil
	case shutdown == 0:
		return DefaultShutdown, nil
	case shutdown < 0 && shutdown != BrutalKill:
		return 0, fmt.Errorf("negative Shutdown %v (use BrutalKill)", shutdown)
	}
	return shutdown, nil
}
