package nodal

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/nodal-go/nodal/p2p"
)

// Behaviour is the body of a process that other nodes may spawn on this node
// by name (closures do not travel between nodes). args is the value the
// spawner passed, decoded by the codec.
type Behaviour func(p *Process, args any) error

// RegisterBehaviour makes b spawnable by name from other nodes (and this
// one) with SpawnOn. Registering a name twice is an error.
func (n *Node) RegisterBehaviour(name string, b Behaviour) error {
	if name == "" || b == nil {
		return fmt.Errorf("%w: behaviour needs a name and a function", ErrBadOption)
	}
	n.behavioursMu.Lock()
	defer n.behavioursMu.Unlock()
	if n.behaviours == nil {
		n.behaviours = make(map[string]Behaviour)
	}
	if _, ok := n.behaviours[name]; ok {
		return fmt.Errorf("%w: behaviour %q already registered", ErrBadOption, name)
	}
	n.behaviours[name] = b
	return nil
}

func (n *Node) behaviour(name string) (Behaviour, bool) {
	n.behavioursMu.RLock()
	defer n.behavioursMu.RUnlock()
	b, ok := n.behaviours[name]
	return b, ok
}

// SpawnOn starts the behaviour registered as behaviour on node with args and
// returns its pid (erlang:spawn(Node, ...)). WithLink links the new process
// to p (spawn_link); SpawnMonitorOn makes p monitor it. The new process has p's group leader, so what it prints with Printf
// shows on p's node. An unknown behaviour gives an error wrapping
// ErrUnknownBehaviour; an unreachable node one wrapping ErrNoConnection.
func (p *Process) SpawnOn(ctx context.Context, node, behaviour string, args any, opts ...SpawnOption) (Pid, error) {
	pid, _, err := p.spawnOn(ctx, node, behaviour, args, false, opts)
	return pid, err
}

// SpawnMonitorOn is SpawnOn with a monitor from the caller (erlang:spawn_monitor(Node, ...)); it returns the monitor's Ref. WithLink combines with it.
func (p *Process) SpawnMonitorOn(ctx context.Context, node, behaviour string, args any, opts ...SpawnOption) (Pid, Ref, error) {
	return p.spawnOn(ctx, node, behaviour, args, true, opts)
}

// SpawnOn is Process.SpawnOn from outside any process; the new process gets
// this node's default group leader. WithLink is refused.
func (n *Node) SpawnOn(ctx context.Context, node, behaviour string, args any, opts ...SpawnOption) (Pid, error) {
	pid, _, err := n.spawnOn(ctx, nil, node, behaviour, args, false, opts)
	return pid, err
}

func (p *Process) spawnOn(ctx context.Context, node, behaviour string, args any, monitor bool, opts []SpawnOption) (Pid, Ref, error) {
	if err := p.exited(); err != nil {
		return Pid{}, Ref{}, err
	}
	return p.node.spawnOn(ctx, p, node, behaviour, args, monitor, opts)
}

func (n *Node) spawnOn(ctx context.Context, parent *Process, node, behaviour string, args any, monitor bool, opts []SpawnOption) (Pid, Ref, error) {
	if err := ValidateNodeName(node); err != nil {
		return Pid{}, Ref{}, err
	}
	cfg, err := newSpawnConfig(parent, monitor, opts)
	if err != nil {
		return Pid{}, Ref{}, err
	}
	if cfg.name != "" || cfg.trapExit {
		return Pid{}, Ref{}, fmt.Errorf("%w: WithName and WithTrapExit do not apply to a remote spawn; let the behaviour do it", ErrBadOption)
	}
	if node == n.name {
		b, ok := n.behaviour(behaviour)
		if !ok {
			return Pid{}, Ref{}, fmt.Errorf("%w: %q on %s", ErrUnknownBehaviour, behaviour, node)
		}
		fn := func(p *Process) error { return b(p, args) }
		return n.spawn(parent, fn, nil, monitor, opts)
	}
	d, err := n.distributed()
	if err != nil {
		return Pid{}, Ref{}, fmt.Errorf("%w: %s", ErrNoConnection, node)
	}
	if err := d.ensureConnected(ctx, node); err != nil {
		return Pid{}, Ref{}, err
	}
	gl := cfg.groupLeader
	if !cfg.hasGroupLeader {
		if parent != nil {
			gl = parent.GroupLeader()
		}
		if gl.IsZero() {
			gl = n.groupLeader
		}
	}
	var from Pid
	if parent != nil {
		from = parent.pid
	}
	var flags byte
	var ref Ref
	if cfg.link {
		flags |= spawnFlagLink
	}
	if cfg.monitor {
		flags |= spawnFlagMonitor
		ref = n.newRef()
	}
	// The link and monitor are installed on the reader goroutine that
	// delivers the reply, before any later frame from node (such as the new
	// process's Down) is delivered.
	var install func(any)
	if parent != nil && (cfg.link || cfg.monitor) {
		install = func(v any) {
			if pid, ok := v.(Pid); ok {
				cfg.adopt(parent, pid, ref)
			}
		}
	}
	req, wait := d.newPending(node, install)
	b := binary.AppendUvarint([]byte{dSpawnReq}, req)
	b = appendRemotePid(b, from, n.name, n.incarnation)
	b = appendPid(b, gl)
	b = append(b, flags)
	b = appendRef(b, ref)
	b = appendString(b, behaviour)
	b, err = d.codec.AppendValue(b, args)
	if err != nil {
		d.dropPending(req)
		return Pid{}, Ref{}, err
	}
	if err := d.host.Send(ctx, node, b); err != nil {
		d.dropPending(req)
		return Pid{}, Ref{}, fmt.Errorf("nodal: spawn on %s: %w", node, err)
	}
	v, err := d.await(ctx, req, wait)
	if err != nil {
		return Pid{}, Ref{}, fmt.Errorf("nodal: spawn %q on %s: %w", behaviour, node, err)
	}
	pid := v.(Pid)
	return pid, ref, nil
}

// handleSpawnRequest spawns a registered behaviour for another node. The new
// process starts running, and is linked to or monitored by the spawner,
// only after the reply is on its way, so the reply reaches the spawner
// before any signal from the new process.
func (d *dist) handleSpawnRequest(p p2p.Peer, dec *decoder) error {
	req := dec.Uvarint()
	from := dec.remotePid(p.Name, p.Incarnation)
	gl := dec.pid()
	flags := dec.Byte()
	ref := dec.ref()
	name := dec.Str()
	args := d.codec.decodeValue(dec)
	if err := dec.done(); err != nil {
		// Still answer, so the spawner does not wait for its timeout.
		if dec.Offset() > 0 && req != 0 {
			d.replySpawn(p.Name, req, Pid{}, "cannot decode spawn request: "+err.Error(), nil)
		}
		return err
	}
	n := d.n
	b, ok := n.behaviour(name)
	if !ok {
		d.replySpawn(p.Name, req, Pid{}, fmt.Sprintf("?%q on %s", name, n.name), nil)
		return nil
	}
	ready := make(chan struct{})
	fn := func(proc *Process) error {
		select {
		case <-ready:
		case <-proc.Context().Done():
			return ReasonKilled
		}
		return b(proc, args)
	}
	pid, _, err := n.spawn(nil, fn, nil, false, []SpawnOption{WithGroupLeader(gl)})
	if err != nil {
		d.replySpawn(p.Name, req, Pid{}, err.Error(), nil)
		return nil
	}
	// The link and monitor to the spawner are installed only once the
	// reply is queued, so that no signal of the new process can overtake
	// the reply. A third party may kill the process before that: the
	// spawner then gets the real reason right after the reply.
	proc := n.procs.get(pid.ID)
	if testHookRemoteSpawned != nil {
		testHookRemoteSpawned(n, pid)
	}
	d.replySpawn(p.Name, req, pid, "", func() {
		if flags != 0 && !from.IsZero() {
			d.bindSpawner(proc, pid, from, flags, ref)
		}
		close(ready)
	})
	return nil
}

// testHookRemoteSpawned, set only by tests, runs between a remote spawn and
// its reply.
var testHookRemoteSpawned func(n *Node, pid Pid)

// bindSpawner links the remotely spawned proc to from and/or makes from
// monitor it; if proc died already, from gets the exit signal or Down
// with the reason it died with (noproc if that is no longer known).
func (d *dist) bindSpawner(proc *Process, pid, from Pid, flags byte, ref Ref) {
	reason := error(ReasonNoProc)
	if proc != nil {
		proc.mu.Lock()
		if !proc.dead {
			if flags&spawnFlagLink != 0 {
				proc.links.put(from, struct{}{})
			}
			if flags&spawnFlagMonitor != 0 {
				proc.monitoredBy.put(ref, from)
			}
			proc.mu.Unlock()
			// The spawner's node may have gone down since the request
			// (its node-down scan then missed this link): as in Erlang, a
			// link to an unreachable pid fires noconnection.
			if pr, ok := d.peer(from.Node); !ok || pr.Incarnation != from.Incarnation {
				gone := error(ReasonNoConnection)
				if ok {
					gone = ReasonNoProc
				}
				if flags&spawnFlagMonitor != 0 {
					d.deliverIncoming(signal{kind: sigDemonitor, from: from, to: pid, ref: ref})
				}
				if flags&spawnFlagLink != 0 {
					d.deliverIncoming(signal{kind: sigLinkExit, from: from, to: pid, reason: gone})
				}
			}
			return
		}
		reason = proc.reason
		proc.mu.Unlock()
	}
	// Through the async sender: this may run on a p2p reader goroutine.
	if flags&spawnFlagLink != 0 {
		d.enqueueAsync(asyncItem{s: signal{kind: sigLinkExit, from: pid, to: from, reason: reason}})
	}
	if flags&spawnFlagMonitor != 0 {
		d.enqueueAsync(asyncItem{s: signal{kind: sigDown, from: pid, to: from, ref: ref, reason: reason}})
	}
}

func (d *dist) replySpawn(node string, req uint64, pid Pid, errText string, after func()) {
	b := binary.AppendUvarint([]byte{dSpawnReply}, req)
	if errText == "" {
		b = append(b, 1)
		b = appendPid(b, pid)
	} else {
		b = append(b, 0)
		b = appendString(b, errText)
	}
	d.sendAsyncFrame(node, b, after)
}
