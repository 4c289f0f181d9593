package nodal

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// NodeInfo describes a node as this node knows it. It never carries the
// cookie.
type NodeInfo struct {
	Name        string   // "a@host"
	Incarnation uint64   // creation of the node start; pids of other starts are dead
	Addrs       []string // libp2p multiaddrs it listens on
	Alive       bool     // connected to this node now (always true for self)
	Hidden      bool     // a hidden node: not in Nodes()
	Self        bool     // this node
}

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
	slices.Sort(out)
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
	if err := ValidateNodeName(node); err != nil {
		return NodeInfo{}, err
	}
	if node == n.name {
		return n.Info(), nil
	}
	d, err := n.distributed()
	if err != nil {
		return NodeInfo{}, err
	}
	if p, ok := d.peer(node); ok {
		return NodeInfo{Name: p.Name, Incarnation: p.Incarnation, Addrs: slices.Clone(p.Addrs), Alive: true, Hidden: d.hiddenConn(p)}, nil
	}
	for _, m := range d.host.Members() {
		if m.Name == node {
			return NodeInfo{Name: m.Name, Incarnation: m.Incarnation, Addrs: slices.Clone(m.Addrs)}, nil
		}
	}
	return NodeInfo{}, fmt.Errorf("%w: %s", ErrUnknownNode, node)
}

// Connect connects to node, a member of the cluster
// (net_kernel:connect_node). On success the connection is usable at once.
func (n *Node) Connect(ctx context.Context, node string) error {
	if err := ValidateNodeName(node); err != nil {
		return err
	}
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
// and monitors towards it fire with reason noconnection. As in Erlang, the
// nodes connect again when something is sent to node (auto-connect) or
// Connect is called; a member is also reconnected when its membership
// changes (it rejoins or restarts), never by itself.
func (n *Node) Disconnect(node string) error {
	if err := ValidateNodeName(node); err != nil {
		return err
	}
	d, err := n.distributed()
	if err != nil {
		return err
	}
	return d.host.Disconnect(node)
}

// Ping measures a round trip to node (net_adm:ping); an unreachable node
// gives an error.
func (n *Node) Ping(ctx context.Context, node string) (time.Duration, error) {
	if err := ValidateNodeName(node); err != nil {
		return 0, err
	}
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
// it fails; if node is not a member the NodeDown comes at once. A malformed
// node name is an error wrapping ErrBadNodeName.
func (p *Process) MonitorNode(node string) error {
	if err := ValidateNodeName(node); err != nil {
		return err
	}
	d := p.node.dist
	if node == p.node.name {
		return nil
	}
	if d == nil {
		p.node.route(signal{kind: sigMessage, to: p.pid, msg: NodeDown{Node: node, Reason: ReasonNoConnection}})
		return nil
	}
	if !d.waitHost() {
		p.node.route(signal{kind: sigMessage, to: p.pid, msg: NodeDown{Node: node, Reason: ReasonNoConnection}})
		return nil
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
			return nil
		}
	}
	w := d.nodeWatches[node]
	if w == nil {
		w = make(map[Pid]int)
		d.nodeWatches[node] = w
	}
	w[p.pid]++
	d.watchMu.Unlock()
	return nil
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

// ListenAddrs returns the libp2p "host:port" addresses this node bound (a
// wildcard host when it bound one), nil on a local-only node. Info().Addrs
// are the addresses it advertises (Config.AdvertiseAddr).
func (n *Node) ListenAddrs() []string {
	if n.dist == nil {
		return nil
	}
	return n.dist.host.ListenAddrs()
}

// GossipBindAddr returns the memberlist "host:port" this node bound ("" on
// a local-only or hidden node); GossipAddr is the one it advertises.
func (n *Node) GossipBindAddr() string {
	if n.dist == nil || n.cfg.Hidden {
		return ""
	}
	return n.dist.host.GossipBindAddr()
}

// GossipAddr returns the memberlist address other nodes use as a seed to
// join this node's cluster ("" on a local-only or hidden node): the
// advertised one (Config.AdvertiseGossipAddr or AdvertiseAddr's host) when
// set.
func (n *Node) GossipAddr() string {
	if n.dist == nil || n.cfg.Hidden {
		return ""
	}
	return n.dist.host.GossipAddr()
}

// NodeType selects which nodes MonitorNodes reports, as net_kernel's
// node_type option does.
type NodeType int

const (
	// NodeVisible reports visible nodes only (the default, as in Erlang).
	NodeVisible NodeType = iota
	// NodeHidden reports hidden nodes only.
	NodeHidden
	// NodeAll reports every node.
	NodeAll
)

// asyncItem is a signal to route, or a raw frame to send to node.
type asyncItem struct {
	s     signal
	node  string
	frame []byte
	after func() // run once the frame is handed to p2p (or failed)
	run   func() // if set, the whole item: run it on the async sender
}

// NodeUp is delivered to processes that called MonitorNodes when a
// connection to a node comes up, before any signal from that connection.
type NodeUp struct {
	Node   string
	Hidden bool
}

// fireNodeWatches delivers NodeDown to every MonitorNode watcher of node
// and ends those watches; with ifDown only if node is not connected (a
// connection attempt for them failed).
func (d *dist) fireNodeWatches(node string, reason error, ifDown bool) {
	d.watchMu.Lock()
	if _, up := d.peer(node); ifDown && up {
		d.watchMu.Unlock()
		return
	}
	watchers := d.nodeWatches[node]
	delete(d.nodeWatches, node)
	d.watchMu.Unlock()
	for _, w := range sortedPids(watchers) {
		for i := 0; i < watchers[w]; i++ {
			d.n.route(signal{kind: sigMessage, to: w, msg: NodeDown{Node: node, Reason: reason}})
		}
	}
}

func (d *dist) notifySubscribers(hidden bool, msg any) {
	d.watchMu.Lock()
	var to []Pid
	for pid, t := range d.subscribers {
		if t == NodeAll || (t == NodeHidden) == hidden {
			if d.n.procs.get(pid.ID) == nil {
				delete(d.subscribers, pid) // its process is gone
				continue
			}
			to = append(to, pid)
		}
	}
	d.watchMu.Unlock()
	slices.SortFunc(to, Pid.Compare)
	for _, pid := range to {
		d.n.route(signal{kind: sigMessage, to: pid, msg: msg})
	}
}

// Join joins the cluster through the gossip addresses seeds ("host:port";
// one reachable seed is enough; a host may be a DNS name, looked up again
// on every Join, each of its addresses tried), as Config.Seeds does at Start. It is how a
// node reaches members it lost (heal uses it after a partition). A hidden or
// local-only node cannot join.
func (n *Node) Join(ctx context.Context, seeds ...string) error {
	d, err := n.distributed()
	if err != nil {
		return err
	}
	if n.cfg.Hidden {
		return fmt.Errorf("%w: a hidden node does not join the membership", ErrBadOption)
	}
	if len(seeds) == 0 {
		return fmt.Errorf("%w: Join needs at least one seed", ErrBadOption)
	}
	if !d.waitHost() {
		return ErrStopped
	}
	if err := d.host.Join(ctx, seeds); err != nil {
		return fmt.Errorf("nodal: join %v: %w", seeds, err)
	}
	return nil
}
