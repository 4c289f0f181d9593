package nodal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/nodal-go/nodal/p2p"
)

// NodeInfo describes a node as this node knows it. It never carries the
// cookie.
type NodeInfo struct {
	Name        string   // "a@host"
	Incarnation uint32   // creation of the node start; pids of other starts are dead
	Addrs       []string // libp2p multiaddrs it listens on
	Alive       bool     // connected to this node now (always true for self)
	Hidden      bool     // a hidden node: not in Nodes()
	Self        bool     // this node
}

// Behaviour is the body of a process that other nodes may spawn on this node
// by name (closures do not travel between nodes). args is the value the
// spawner passed, decoded by the codec.
type Behaviour func(p *Process, args any) error

// distributed returns the distribution layer or ErrNotDistributed.
func (n *Node) distributed() (*dist, error) {
	if n.dist == nil {
		return nil, ErrNotDistributed
	}
	return n.dist, nil
}

// Nodes returns the names of the visible nodes this node is connected to,
// sorted, without this node (erlang:nodes()).
func (n *Node) Nodes() []string { return n.nodes(NodeVisible) }

// HiddenNodes returns the connected hidden nodes, sorted (erlang:nodes(hidden)).
func (n *Node) HiddenNodes() []string { return n.nodes(NodeHidden) }

func (n *Node) nodes(t NodeType) []string {
	d := n.dist
	if d == nil {
		return nil
	}
	peers := d.peerMap()
	out := make([]string, 0, len(peers))
	for name, p := range peers {
		if t == NodeAll || (t == NodeHidden) == d.hiddenConn(p) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Info returns this node's own NodeInfo.
func (n *Node) Info() NodeInfo {
	info := NodeInfo{Name: n.name, Incarnation: n.incarnation, Alive: true, Self: true, Hidden: n.cfg.Hidden}
	if n.dist != nil && n.dist.host != nil {
		info.Addrs = slices.Clone(n.dist.host.Self().Addrs)
	}
	return info
}

// NodeInfo returns what this node knows of node: itself, a connected node,
// or a member of the cluster that is not connected (Alive false). An unknown
// node gives an error wrapping ErrUnknownNode.
func (n *Node) NodeInfo(node string) (NodeInfo, error) {
	if node == n.name {
		return n.Info(), nil
	}
	d, err := n.distributed()
	if err != nil {
		return NodeInfo{}, err
	}
	if p, ok := d.peer(node); ok {
		return NodeInfo{Name: p.Name, Incarnation: uint32(p.Incarnation), Addrs: slices.Clone(p.Addrs), Alive: true, Hidden: d.hiddenConn(p)}, nil
	}
	for _, m := range d.host.Members() {
		if m.Name == node {
			return NodeInfo{Name: m.Name, Incarnation: uint32(m.Incarnation), Addrs: slices.Clone(m.Addrs)}, nil
		}
	}
	return NodeInfo{}, fmt.Errorf("%w: %s", ErrUnknownNode, node)
}

// Connect connects to node, a member of the cluster
// (net_kernel:connect_node). On success the connection is usable at once.
func (n *Node) Connect(ctx context.Context, node string) error {
	d, err := n.distributed()
	if err != nil {
		return err
	}
	if node == n.name {
		return nil
	}
	if err := d.host.Connect(ctx, node); err != nil {
		return err
	}
	return d.waitPeer(ctx, node)
}

// ConnectAddr connects to the node whose libp2p listener is at addr
// ("host:port"), as a hidden node does, and returns its name.
func (n *Node) ConnectAddr(ctx context.Context, addr string) (string, error) {
	d, err := n.distributed()
	if err != nil {
		return "", err
	}
	p, err := d.host.ConnectAddr(ctx, addr)
	if err != nil {
		return "", err
	}
	// Usable on return: the connection's NodeUp has been handled, so a Send
	// or Call right away reaches the node.
	return p.Name, d.waitPeer(ctx, p.Name)
}

// Disconnect drops the connection to node (erlang:disconnect_node). Links
// and monitors towards it fire with reason noconnection.
func (n *Node) Disconnect(node string) error {
	d, err := n.distributed()
	if err != nil {
		return err
	}
	return d.host.Disconnect(node)
}

// Ping measures a round trip to node (net_adm:ping); an unreachable node
// gives an error.
func (n *Node) Ping(ctx context.Context, node string) (time.Duration, error) {
	if node == n.name {
		return 0, nil
	}
	d, err := n.distributed()
	if err != nil {
		return 0, err
	}
	return d.host.Ping(ctx, node)
}

// MonitorNode asks for one NodeDown{Node, Reason} message when the
// connection to node goes down (erlang:monitor_node(Node, true)). Each call
// adds one. If node is not connected but is a live member, a connection is
// attempted, as in Erlang, and the NodeDown (reason noconnection) comes if
// it fails; if node is not a member the NodeDown comes at once.
func (p *Process) MonitorNode(node string) {
	d := p.node.dist
	if node == p.node.name {
		return
	}
	if d == nil {
		p.node.route(signal{kind: sigMessage, to: p.pid, msg: NodeDown{Node: node, Reason: ReasonNoConnection}})
		return
	}
	if !d.waitHost() {
		p.node.route(signal{kind: sigMessage, to: p.pid, msg: NodeDown{Node: node, Reason: ReasonNoConnection}})
		return
	}
	d.watchMu.Lock()
	if _, ok := d.peer(node); !ok {
		rctx, cancel := context.WithTimeout(d.ctx, AutoConnectTimeout)
		if !d.host.Reach(rctx, node, func(err error) {
			cancel()
			if err != nil {
				d.enqueueAsync(asyncItem{run: func() { d.fireNodeWatches(node, ReasonNoConnection, true) }})
			}
		}) {
			cancel()
			d.watchMu.Unlock()
			p.node.route(signal{kind: sigMessage, to: p.pid, msg: NodeDown{Node: node, Reason: ReasonNoConnection}})
			return
		}
	}
	w := d.nodeWatches[node]
	if w == nil {
		w = make(map[Pid]int)
		d.nodeWatches[node] = w
	}
	w[p.pid]++
	d.watchMu.Unlock()
}

// DemonitorNode removes every node monitor of p on node
// (erlang:monitor_node(Node, false)).
func (p *Process) DemonitorNode(node string) {
	d := p.node.dist
	if d == nil {
		return
	}
	d.watchMu.Lock()
	delete(d.nodeWatches[node], p.pid)
	d.watchMu.Unlock()
}

// MonitorNodes subscribes p (on true) or unsubscribes it (on false) to
// NodeUp and NodeDown messages for nodes of type t
// (net_kernel:monitor_nodes/2). NodeUp arrives before any message from the
// new connection; NodeDown after the last one.
func (p *Process) MonitorNodes(on bool, t NodeType) {
	d := p.node.dist
	if d == nil {
		return
	}
	d.watchMu.Lock()
	if on {
		d.subscribers[p.pid] = t
	} else {
		delete(d.subscribers, p.pid)
	}
	d.watchMu.Unlock()
}

// SendNode sends msg to the process registered as name on node
// ({Name, Node} ! Msg). On this node an unregistered name is an error
// wrapping ErrNotRegistered; on another node the message is dropped silently
// when the name is not registered there, as in Erlang. A value the codec
// cannot encode fails here, at the sender.
func (p *Process) SendNode(node, name string, msg any) error {
	if err := p.exited(); err != nil {
		return err
	}
	return p.node.sendNode(p.pid, node, name, msg)
}

// SendNode is Process.SendNode from outside any process.
func (n *Node) SendNode(node, name string, msg any) error {
	return n.sendNode(Pid{}, node, name, msg)
}

func (n *Node) sendNode(from Pid, node, name string, msg any) error {
	if node == n.name {
		return n.sendName(from, name, msg)
	}
	d, err := n.distributed()
	if err != nil || !d.waitHost() {
		return nil // unreachable node: dropped
	}
	b := []byte{dMsgName}
	b = appendRemotePid(b, from, n.name)
	b = appendString(b, name)
	b, err = d.codec.AppendValue(b, msg)
	if err != nil {
		return err
	}
	if _, ok := d.peer(node); !ok || d.waitingFor(node) {
		// Not connected (yet): wait for the connection, if node is a live
		// member; dropped otherwise, as for any unreachable node.
		if err := d.checkFrameSize(b, name+" on "+node); err != nil {
			return err
		}
		d.enqueueForConnect(node, connWaitItem{frame: b})
		return nil
	}
	if err := d.host.Send(n.ctx, node, b); err != nil {
		d.sendErrors.Add(1)
		if errors.Is(err, p2p.ErrFrameTooLarge) {
			return fmt.Errorf("nodal: send to %s on %s: %w", name, node, err)
		}
	}
	return nil
}

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
// returns its pid (erlang:spawn(Node, ...)). WithLink and WithMonitor link
// the new process to p or make p monitor it (use SpawnMonitorOn for the
// Ref). The new process has p's group leader, so what it prints with Printf
// shows on p's node. An unknown behaviour gives an error wrapping
// ErrUnknownBehaviour; an unreachable node one wrapping ErrNoConnection.
func (p *Process) SpawnOn(ctx context.Context, node, behaviour string, args any, opts ...SpawnOption) (Pid, error) {
	pid, _, err := p.spawnOn(ctx, node, behaviour, args, opts)
	return pid, err
}

// SpawnLinkOn is SpawnOn with WithLink (erlang:spawn_link(Node, ...)).
func (p *Process) SpawnLinkOn(ctx context.Context, node, behaviour string, args any, opts ...SpawnOption) (Pid, error) {
	pid, _, err := p.spawnOn(ctx, node, behaviour, args, append(opts, WithLink()))
	return pid, err
}

// SpawnMonitorOn is SpawnOn with WithMonitor (erlang:spawn_monitor(Node, ...)).
func (p *Process) SpawnMonitorOn(ctx context.Context, node, behaviour string, args any, opts ...SpawnOption) (Pid, Ref, error) {
	return p.spawnOn(ctx, node, behaviour, args, append(opts, WithMonitor()))
}

// SpawnOn is Process.SpawnOn from outside any process; the new process gets
// this node's default group leader. WithLink and WithMonitor are refused.
func (n *Node) SpawnOn(ctx context.Context, node, behaviour string, args any, opts ...SpawnOption) (Pid, error) {
	pid, _, err := n.spawnOn(ctx, nil, node, behaviour, args, opts)
	return pid, err
}

func (p *Process) spawnOn(ctx context.Context, node, behaviour string, args any, opts []SpawnOption) (Pid, Ref, error) {
	if err := p.exited(); err != nil {
		return Pid{}, Ref{}, err
	}
	return p.node.spawnOn(ctx, p, node, behaviour, args, opts)
}

func (n *Node) spawnOn(ctx context.Context, parent *Process, node, behaviour string, args any, opts []SpawnOption) (Pid, Ref, error) {
	var cfg spawnConfig
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return Pid{}, Ref{}, err
		}
	}
	if parent == nil && (cfg.link || cfg.monitor) {
		return Pid{}, Ref{}, fmt.Errorf("%w: link or monitor needs a spawning process", ErrBadOption)
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
		return n.spawn(parent, fn, nil, opts)
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
			pid, ok := v.(Pid)
			if !ok {
				return
			}
			parent.mu.Lock()
			if !parent.dead {
				if cfg.link {
					parent.links.put(pid, struct{}{})
				}
				if cfg.monitor {
					parent.monitors.put(ref, pid)
				}
			}
			parent.mu.Unlock()
		}
	}
	req, wait := d.newPending(node, install)
	b := binary.AppendUvarint([]byte{dSpawnReq}, req)
	b = appendRemotePid(b, from, n.name)
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

type pendingReq struct {
	node    string
	ch      chan any  // receives a Pid or an error
	onReply func(any) // run on the reader goroutine before ch is sent to
}

func (d *dist) newPending(node string, onReply func(any)) (uint64, chan any) {
	ch := make(chan any, 1)
	d.reqMu.Lock()
	d.nextReq++
	req := d.nextReq
	d.pending[req] = &pendingReq{node: node, ch: ch, onReply: onReply}
	d.reqMu.Unlock()
	return req, ch
}

func (d *dist) dropPending(req uint64) {
	d.reqMu.Lock()
	delete(d.pending, req)
	d.reqMu.Unlock()
}

func (d *dist) await(ctx context.Context, req uint64, ch chan any) (any, error) {
	select {
	case v := <-ch:
		if err, ok := v.(error); ok {
			return nil, err
		}
		return v, nil
	case <-ctx.Done():
		d.dropPending(req)
		return nil, ctxError(ctx.Err())
	case <-d.ctx.Done():
		d.dropPending(req)
		return nil, ErrStopped
	}
}

func (d *dist) resolvePending(req uint64, v any) {
	d.reqMu.Lock()
	pr, ok := d.pending[req]
	delete(d.pending, req)
	d.reqMu.Unlock()
	if ok {
		if pr.onReply != nil {
			pr.onReply(v)
		}
		pr.ch <- v
	}
}

// failPending fails every request waiting on node.
func (d *dist) failPending(node string, reason error) {
	d.reqMu.Lock()
	var fail []*pendingReq
	for req, pr := range d.pending {
		if pr.node == node {
			fail = append(fail, pr)
			delete(d.pending, req)
		}
	}
	d.reqMu.Unlock()
	for _, pr := range fail {
		pr.ch <- fmt.Errorf("%w: %s went down (%v)", ErrNoConnection, node, reason)
	}
}

func (d *dist) handleReply(p p2p.Peer, kind byte, dec *decoder) error {
	req := dec.uvarint()
	var v any
	switch kind {
	case dSpawnReply:
		if dec.byte() == 1 {
			v = dec.pid()
		} else {
			v = &RemoteError{Text: dec.string()}
		}
	case dWhereisReply:
		if dec.byte() == 1 {
			v = dec.pid()
		} else {
			v = fmt.Errorf("%w: on %s", ErrNotRegistered, p.Name)
		}
	}
	if err := dec.done(); err != nil {
		return err
	}
	if re, ok := v.(*RemoteError); ok {
		if len(re.Text) > 0 && re.Text[0] == '?' {
			v = fmt.Errorf("%w: %s", ErrUnknownBehaviour, re.Text[1:])
		} else {
			v = fmt.Errorf("nodal: remote spawn failed: %s", re.Text)
		}
	}
	d.reqMu.Lock()
	pr, ok := d.pending[req]
	if ok && pr.node != p.Name {
		ok = false // a reply must come from the node asked
	}
	d.reqMu.Unlock()
	if ok {
		d.resolvePending(req, v)
	}
	return nil
}

// handleSpawnRequest spawns a registered behaviour for another node. The new
// process starts running, and is linked to or monitored by the spawner,
// only after the reply is on its way, so the reply reaches the spawner
// before any signal from the new process.
func (d *dist) handleSpawnRequest(p p2p.Peer, dec *decoder) error {
	req := dec.uvarint()
	from := dec.remotePid(p.Name)
	gl := dec.pid()
	flags := dec.byte()
	ref := dec.ref()
	name := dec.string()
	args := d.codec.decodeValue(dec)
	if err := dec.done(); err != nil {
		// Still answer, so the spawner does not wait for its timeout.
		if dec.off > 0 && req != 0 {
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
	pid, _, err := n.spawn(nil, fn, nil, []SpawnOption{WithGroupLeader(gl)})
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
			if pr, ok := d.peer(from.Node); !ok || uint32(pr.Incarnation) != from.Incarnation {
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

// WhereisOn returns the pid registered as name on node (rpc:call(Node,
// erlang, whereis, [Name])). A name that is not registered there gives an
// error wrapping ErrNotRegistered.
func (n *Node) WhereisOn(ctx context.Context, node, name string) (Pid, error) {
	if node == n.name {
		pid, ok := n.Whereis(name)
		if !ok {
			return Pid{}, fmt.Errorf("%w: %s", ErrNotRegistered, name)
		}
		return pid, nil
	}
	d, err := n.distributed()
	if err != nil {
		return Pid{}, fmt.Errorf("%w: %s", ErrNoConnection, node)
	}
	if err := d.ensureConnected(ctx, node); err != nil {
		return Pid{}, err
	}
	req, wait := d.newPending(node, nil)
	b := binary.AppendUvarint([]byte{dWhereisReq}, req)
	b = appendString(b, name)
	if err := d.host.Send(ctx, node, b); err != nil {
		d.dropPending(req)
		return Pid{}, fmt.Errorf("nodal: whereis on %s: %w", node, err)
	}
	v, err := d.await(ctx, req, wait)
	if err != nil {
		return Pid{}, err
	}
	return v.(Pid), nil
}

// CallName calls the process registered as name on node
// (gen_server:call({Name, Node}, Req)).
func (p *Process) CallName(ctx context.Context, node, name string, req any) (any, error) {
	pid, err := p.node.WhereisOn(ctx, node, name)
	if err != nil {
		return nil, err
	}
	return p.Call(ctx, pid, req)
}

// CallName is Process.CallName from outside any process.
func (n *Node) CallName(ctx context.Context, node, name string, req any) (any, error) {
	pid, err := n.WhereisOn(ctx, node, name)
	if err != nil {
		return nil, err
	}
	return n.Call(ctx, pid, req)
}

// DistStats are counters of the distribution layer.
type DistStats struct {
	DecodeErrors uint64 // frames dropped because they could not be decoded
	SendErrors   uint64 // signals lost because their connection failed
	Throttled    uint64 // times a connection was paused for a long mailbox (RemoteBacklog)
	P2P          p2p.Stats
}

// DistStats returns the distribution counters (zero on a local-only node).
func (n *Node) DistStats() DistStats {
	d := n.dist
	if d == nil {
		return DistStats{}
	}
	return DistStats{DecodeErrors: d.decodeErrors.Load(), SendErrors: d.sendErrors.Load(), Throttled: d.throttled.Load(), P2P: d.host.Stats()}
}

// CallTimeoutError is the error of a Call whose wait ended (deadline or
// cancel) before a reply came. It says whether the target's node was
// connected at that moment (the process was merely slow, or the request or
// reply is still on its way) or not (the node is down or unreachable; the
// request may or may not have been handled, as with erpc).
type CallTimeoutError struct {
	To       Pid
	NodeUp   bool  // the target's node was connected when the wait ended
	Err      error // the wait's error: wraps ErrTimeout and ctx.Err()
	selfNode bool
}

// Error implements error.
func (e *CallTimeoutError) Error() string {
	switch {
	case e.selfNode:
		return fmt.Sprintf("nodal: call to %v: %v (local process did not reply)", e.To, e.Err)
	case e.NodeUp:
		return fmt.Sprintf("nodal: call to %v: %v (node %s is up; the process did not reply in time)", e.To, e.Err, e.To.Node)
	}
	return fmt.Sprintf("nodal: call to %v: %v (node %s is down or unreachable)", e.To, e.Err, e.To.Node)
}

// Unwrap returns the wait's error, and ErrNoConnection when the node was
// not connected.
func (e *CallTimeoutError) Unwrap() []error {
	if e.NodeUp || e.selfNode {
		return []error{e.Err}
	}
	return []error{e.Err, ErrNoConnection}
}

// callWaitError classifies an error that ended a Call's wait.
func (n *Node) callWaitError(to Pid, err error) error {
	if !errors.Is(err, ErrTimeout) && !errors.Is(err, context.Canceled) {
		return err // the caller itself exited, for example
	}
	if to.Node == n.name {
		return &CallTimeoutError{To: to, Err: err, selfNode: true}
	}
	up := false
	if n.dist != nil {
		_, up = n.dist.peer(to.Node)
	}
	return &CallTimeoutError{To: to, NodeUp: up, Err: err}
}

// GossipAddr returns the memberlist address other nodes use as a seed to
// join this node's cluster ("" on a local-only or hidden node).
func (n *Node) GossipAddr() string {
	if n.dist == nil || n.cfg.Hidden {
		return ""
	}
	return n.dist.host.GossipAddr()
}
