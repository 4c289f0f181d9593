package nodal

import "fmt"

// SpawnOption configures one spawn. Options are checked when applied; an
// invalid or conflicting option makes the spawn fail with ErrBadOption (or
// ErrBadName) and no process is started.
type SpawnOption func(*spawnConfig) error

type spawnConfig struct {
	link, monitor, trapExit bool
	name                    string
	groupLeader             Pid
	hasGroupLeader          bool
}

// WithLink links the new process to the spawner atomically at spawn
// (Erlang's spawn_link): if the child dies at once, the spawner still gets
// the exit signal. It needs a spawning process. A monitor is set up by the
// SpawnMonitor calls instead, which return its Ref; WithLink combines with
// them (spawn_opt [link, monitor]).
func WithLink() SpawnOption {
	return func(c *spawnConfig) error { c.link = true; return nil }
}

// newSpawnConfig applies opts; monitor says whether the call sets up a
// monitor (the SpawnMonitor family). Link and monitor need a spawner.
func newSpawnConfig(parent *Process, monitor bool, opts []SpawnOption) (spawnConfig, error) {
	cfg := spawnConfig{monitor: monitor}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return spawnConfig{}, err
		}
	}
	if parent == nil && (cfg.link || cfg.monitor) {
		return spawnConfig{}, fmt.Errorf("%w: link or monitor needs a spawning process", ErrBadOption)
	}
	return cfg, nil
}

// adopt installs the spawner's half of the link and monitor to child, unless
// the spawner is already dead; it then returns dead and its exit reason.
func (cfg *spawnConfig) adopt(parent *Process, child Pid, ref Ref) (dead bool, reason error) {
	if parent == nil || !(cfg.link || cfg.monitor) {
		return false, nil
	}
	parent.mu.Lock()
	defer parent.mu.Unlock()
	if parent.dead {
		return true, parent.reason
	}
	if cfg.link {
		parent.links.put(child, struct{}{})
	}
	if cfg.monitor {
		parent.monitors.put(ref, child)
	}
	return false, nil
}

// WithName registers the new process under name before it runs; the spawn
// fails with ErrNameTaken if the name is held.
func WithName(name string) SpawnOption {
	return func(c *spawnConfig) error {
		if err := validateName(name); err != nil {
			return err
		}
		if c.name != "" && c.name != name {
			return fmt.Errorf("%w: two names %q and %q", ErrBadOption, c.name, name)
		}
		c.name = name
		return nil
	}
}

// WithTrapExit starts the new process trapping exits.
func WithTrapExit() SpawnOption {
	return func(c *spawnConfig) error { c.trapExit = true; return nil }
}

// WithGroupLeader sets the new process's group leader (by default it inherits
// the spawner's).
func WithGroupLeader(gl Pid) SpawnOption {
	return func(c *spawnConfig) error {
		if c.hasGroupLeader && c.groupLeader != gl {
			return fmt.Errorf("%w: two group leaders %v and %v", ErrBadOption, c.groupLeader, gl)
		}
		c.groupLeader, c.hasGroupLeader = gl, true
		return nil
	}
}

// Spawn starts a goroutine-style process running fn (with WithLink, linked
// to the caller: spawn_link).
func (p *Process) Spawn(fn Func, opts ...SpawnOption) (Pid, error) {
	pid, _, err := p.node.spawn(p, fn, nil, false, opts)
	return pid, err
}

// SpawnMonitor starts a process running fn, monitored by the caller
// (spawn_monitor), and returns the monitor's Ref.
func (p *Process) SpawnMonitor(fn Func, opts ...SpawnOption) (Pid, Ref, error) {
	return p.node.spawn(p, fn, nil, true, opts)
}

// SpawnActor starts a handler-style process; WithLink applies (use
// SpawnActorMonitor for a monitor). Init runs on the caller's goroutine
// before SpawnActor returns; if it fails, the process exits with that reason
// (links and monitors fire) and the error is an *ExitError wrapping
// ErrInitFailed and the reason.
func (p *Process) SpawnActor(a Actor, opts ...SpawnOption) (Pid, error) {
	pid, _, err := p.node.spawn(p, nil, a, false, opts)
	return pid, err
}

// SpawnActorMonitor is SpawnActor with a monitor from the caller; it returns
// the monitor's Ref.
func (p *Process) SpawnActorMonitor(a Actor, opts ...SpawnOption) (Pid, Ref, error) {
	return p.node.spawn(p, nil, a, true, opts)
}

// spawn creates a process of either style; parent is nil outside a process.
// monitor says whether the spawner monitors the new process.
func (n *Node) spawn(parent *Process, fn Func, a Actor, monitor bool, opts []SpawnOption) (Pid, Ref, error) {
	if fn == nil && a == nil {
		return Pid{}, Ref{}, fmt.Errorf("%w: nil function or actor", ErrBadOption)
	}
	cfg, err := newSpawnConfig(parent, monitor, opts)
	if err != nil {
		return Pid{}, Ref{}, err
	}
	if parent != nil {
		if err := parent.exited(); err != nil {
			return Pid{}, Ref{}, err
		}
	}
	if n.stopping.Load() {
		return Pid{}, Ref{}, ErrStopped
	}
	p := &Process{
		node: n,
		pid:  Pid{Node: n.name, ID: n.nextID.Add(1), Incarnation: n.incarnation},
		fn:   fn,
	}
	if a != nil {
		p.kind, p.actor = kindActor, a
		p.scheduled = true // Init runs first; messages wait for it
	}
	p.trapExit = cfg.trapExit
	switch {
	case cfg.hasGroupLeader:
		gl := cfg.groupLeader
		p.groupLeader = &gl
	case parent != nil:
		parent.mu.Lock()
		p.groupLeader = parent.groupLeader // immutable once set: shared
		parent.mu.Unlock()
	}
	if cfg.link {
		p.links.put(parent.pid, struct{}{})
	}
	var ref Ref
	if cfg.monitor {
		ref = n.newRef()
		p.monitoredBy.put(ref, parent.pid)
	}
	if cfg.name != "" {
		if err := n.claimName(cfg.name, p); err != nil {
			return Pid{}, Ref{}, err
		}
	}
	n.procs.put(p)
	if n.stopping.Load() {
		// Stop began after the check above and may have sent its shutdown
		// signals before p was in the table: p must not start.
		n.terminate(p, ReasonShutdown)
		return Pid{}, Ref{}, ErrStopped
	}
	// The child is visible; now the parent's half of the link and monitor.
	if dead, preason := cfg.adopt(parent, p.pid, ref); dead {
		// The parent died meanwhile: its death missed the new link.
		if cfg.link {
			n.route(signal{kind: sigLinkExit, from: parent.pid, to: p.pid, reason: preason})
		}
		if cfg.monitor {
			n.route(signal{kind: sigDemonitor, from: parent.pid, to: p.pid, ref: ref})
		}
	}
	if a == nil {
		if !n.runWorker(p.pid.ID, func() { n.runFunc(p) }) {
			n.terminate(p, ReasonShutdown)
			return Pid{}, Ref{}, ErrStopped
		}
		return p.pid, ref, nil
	}
	if reason := p.initActor(); reason != nil {
		p.finish(reason)
		return p.pid, ref, &ExitError{Pid: p.pid, Reason: reason, init: true}
	}
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		return p.pid, ref, nil
	}
	pending := p.inLenLocked() > 0 || p.count > 0
	if !pending {
		p.scheduled = false
	}
	p.mu.Unlock()
	if pending {
		n.schedule(p)
	}
	return p.pid, ref, nil
}
