package nodal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nodal-go/nodal/internal/hoptrace"
	"github.com/nodal-go/nodal/p2p"
)

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
	if err := ValidateNodeName(node); err != nil {
		return err
	}
	if node == n.name {
		return n.sendName(from, name, msg)
	}
	if err := validateName(name); err != nil {
		return err
	}
	d, err := n.distributed()
	if err != nil {
		return nil // unreachable node: dropped
	}
	b := []byte{dMsgName}
	b = appendRemotePid(b, from, n.name, n.incarnation)
	b = appendString(b, name)
	b, err = d.codec.AppendValue(b, msg)
	if err != nil {
		return err
	}
	// An unreachable node drops the message silently, as in Erlang.
	if err := d.sendFrame(n.ctx, node, b, true); err != nil && !errors.Is(err, ErrNoConnection) {
		return fmt.Errorf("nodal: send to %s on %s: %w", name, node, err)
	}
	return nil
}

// sendFrame sends a frame that is not a pid signal (a {name, node} message,
// a service frame) on node's ordered path, the one pid signals take: onto
// its connection when it is up and nothing waits for it, else into its
// auto-connect queue, so it never overtakes a signal routed before it. With
// block it waits (bounded by ctx) while the connection's outbound queue is
// full; without, a full queue is an error wrapping ErrQueueFull. A node that
// is neither connected nor a live member gives ErrNoConnection. frame is not
// kept after sendFrame returns (p2p copies it; the connect queue clones it).
func (d *dist) sendFrame(ctx context.Context, node string, frame []byte, block bool) error {
	if !d.waitHost() {
		return fmt.Errorf("%w: %s", ErrNoConnection, node)
	}
	if _, ok := d.peer(node); !ok || d.waitingFor(node) {
		if err := d.checkFrameSize(frame, node); err != nil {
			return err
		}
		switch d.enqueueForConnect(node, connWaitItem{frame: slices.Clone(frame)}) {
		case queued:
			return nil
		case refused:
			return fmt.Errorf("%w: %s", ErrNoConnection, node)
		}
		// upNow: the connection came up meanwhile; send on it.
	}
	var err error
	if block {
		err = d.host.Send(ctx, node, frame)
	} else {
		err = d.host.TrySend(node, frame)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, p2p.ErrFrameTooLarge), errors.Is(err, p2p.ErrQueueFull):
		return err
	case ctx.Err() != nil:
		return ctxError(ctx.Err())
	}
	d.sendErrors.Add(1)
	return fmt.Errorf("%w: %s: %v", ErrNoConnection, node, err)
}

// route sends a signal to a pid of another node. A node that is not
// connected is unreachable (links and monitors fire noconnection at once); a
// pid of an earlier start of a connected node is dead (noproc). It returns an
// error only when the message cannot be encoded.
func (d *dist) route(s signal) error {
	if !d.waitHost() {
		d.undeliverable(s, ReasonNoConnection)
		return nil
	}
	peer, ok := d.peer(s.to.Node)
	if !ok || d.waitingFor(s.to.Node) {
		return d.routeNotConnected(s)
	}
	if peer.Incarnation != s.to.Incarnation {
		d.undeliverable(s, ReasonNoProc)
		return nil
	}
	bp := framePool.Get().(*[]byte)
	frame, err := d.encodeSignal((*bp)[:0], s, peer.Name)
	if err != nil {
		framePool.Put(bp)
		return err
	}
	hoptrace.Stamp(hoptrace.Encoded)
	err = d.host.Send(d.n.ctx, peer.Name, frame) // copies frame
	if cap(frame) <= maxPooledFrame {
		*bp = frame[:0]
		framePool.Put(bp)
	}
	if err != nil {
		d.sendErrors.Add(1)
		if errors.Is(err, p2p.ErrFrameTooLarge) {
			return fmt.Errorf("nodal: send to %v: %w", s.to, err)
		}
		// The connection went away: the node-down scan (or this) fires
		// links and monitors; messages are lost, as in Erlang.
		d.undeliverable(s, ReasonNoConnection)
	}
	return nil
}

// remoteDest is what a process's stream of messages to one pid of another
// node reuses from one send to the next (Process.sendOut): the frame's head
// (kind and both pids) encoded once, the connection's p2p.Link, and the
// peer table it was checked against. While the table is the same one
// (d.peers is replaced whenever a node comes up or goes down) and no node
// has signals waiting for its connection, every check route makes gives
// the same answer, so sendFrom skips them: no lookup by node name, no pid
// encoding, no pooled buffer per message. Only the process's own goroutine
// uses it.
type remoteDest struct {
	to    Pid
	peers *map[string]p2p.Peer
	link  p2p.Link
	frame []byte // frame[:head] is the head; a message's value is appended after it
	head  int
}

// sendFrom sends msg from p (its own goroutine) to to, a pid of another
// node: route's work for a message, through p's remoteDest when it still
// holds. Anything unusual (no connection, signals waiting for one, a pid
// of another start, a send that failed) takes route, which decides as for
// any signal.
func (d *dist) sendFrom(p *Process, to Pid, msg any) error {
	c := p.sendOut
	if c == nil || c.to != to || c.peers != d.peers.Load() || d.connWaiting.Load() != 0 {
		if c = d.newRemoteDest(p, to); c == nil {
			return d.route(signal{kind: sigMessage, from: p.pid, to: to, msg: msg})
		}
	}
	frame, err := d.codec.AppendValue(c.frame[:c.head], msg)
	if err != nil {
		return err
	}
	hoptrace.Stamp(hoptrace.Encoded)
	err = c.link.SendHead(d.n.ctx, frame[:c.head], sameHead, frame[c.head:]) // copies frame
	if cap(frame) <= maxPooledFrame {
		c.frame = frame
	} else {
		c.frame = slices.Clone(frame[:c.head])
	}
	if err != nil {
		if errors.Is(err, p2p.ErrFrameTooLarge) {
			d.sendErrors.Add(1)
			return fmt.Errorf("nodal: send to %v: %w", to, err)
		}
		// The connection closed (maybe replaced by another one already):
		// route looks everything up again.
		p.sendOut = nil
		return d.route(signal{kind: sigMessage, from: p.pid, to: to, msg: msg})
	}
	return nil
}

// newRemoteDest makes p's remoteDest for to (reusing the one p has), or
// returns nil when route must decide: the host is not set up, to's node is
// not connected or has signals waiting for its connection, or to is a pid
// of another start of it.
func (d *dist) newRemoteDest(p *Process, to Pid) *remoteDest {
	if !d.hostSet.Load() || d.connWaiting.Load() != 0 {
		return nil
	}
	peers := d.peers.Load()
	if peers == nil {
		return nil
	}
	peer, ok := (*peers)[to.Node]
	if !ok || peer.Incarnation != to.Incarnation {
		return nil
	}
	link, ok := d.host.Link(peer.Name)
	if !ok {
		return nil
	}
	c := p.sendOut
	if c == nil {
		c = new(remoteDest)
	}
	b := append(c.frame[:0], dMsg)
	b = appendRemotePid(b, p.pid, d.n.name, d.n.incarnation)
	b = appendRemotePid(b, to, peer.Name, link.Peer().Incarnation)
	*c = remoteDest{to: to, peers: peers, link: link, frame: b, head: len(b)}
	p.sendOut = c
	return c
}

func (d *dist) undeliverable(s signal, reason error) {
	var q signalQueue
	d.n.undeliverable(&s, reason, &q)
	d.n.drain(&q)
}

// appendRemotePid encodes a pid whose node is usually implied (the sender's
// or the receiver's name). When its node is implied, the node name is left
// out (a 0 where the name would be); when its incarnation is inc too, the
// incarnation is left out as well (pidImplied where the name would be: no
// node name is one byte long), which saves 5 of a message frame's ~17
// bytes of head for each of its two pids. inc is the implied node's
// incarnation when the frame is sure to reach that incarnation or come
// from it, else 0: the sender's own incarnation for a pid of its own, the
// connection's peer for a frame sent on a p2p.Link (which fails rather
// than go on another connection), never for a frame sent by node name,
// which could reach a restarted node that would take an old pid for one of
// its own.
func appendRemotePid(b []byte, p Pid, implied string, inc uint64) []byte {
	if p.Node != implied {
		b = appendString(b, p.Node)
	} else if inc != 0 && p.Incarnation == inc {
		return binary.AppendUvarint(append(b, pidImplied), p.ID)
	} else {
		b = append(b, 0)
	}
	b = binary.AppendUvarint(b, p.ID)
	return binary.AppendUvarint(b, p.Incarnation)
}

// sameHead is what stands for a stream's head (kind and pids) after its
// first frame on a connection (p2p.Link.SendHead).
var sameHead = []byte{dMsgSame}

// pidImplied stands for a pid's node name and incarnation, both implied
// (appendRemotePid): as a name it would be one byte long, and no node name
// is (p2p.ParseName).
const pidImplied byte = 1

// framePool recycles encoding buffers: p2p copies a frame when it queues it.
var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// maxPooledFrame keeps large one-off buffers out of the pool.
const maxPooledFrame = 64 << 10

// sendAsyncFrame sends a raw frame without blocking the caller; frames
// queued this way keep their order.
func (d *dist) sendAsyncFrame(node string, frame []byte, after func()) {
	d.asyncMu.Lock()
	empty := len(d.asyncq) == 0
	d.asyncMu.Unlock()
	if empty && d.host.TrySend(node, frame) == nil {
		if after != nil {
			after()
		}
		return
	}
	d.enqueueAsync(asyncItem{node: node, frame: frame, after: after})
}

// Auto-connect (Erlang's dist_auto_connect): a signal for a live member of
// the cluster that is not connected yet (just joined, or reconnecting after
// a broken connection) is not lost. It waits, encoded, in a bounded queue
// per node while the connection is set up, and is sent, in order, when the
// node's NodeUp arrives; signals routed meanwhile join the queue, so FIFO
// per pair holds. If the connection attempt fails (a killed node refuses at
// once), no connection comes within AutoConnectTimeout, or the queue is
// full, the signals are undeliverable: links and monitors fire
// noconnection, messages are dropped, as for any unreachable node. A node
// that is not a live member is unreachable at once.

// AutoConnectTimeout bounds how long signals for a member that is not
// connected wait for its connection (Erlang's net_setuptime is 7 s).
const AutoConnectTimeout = 7 * time.Second

// maxPendingConnBytes bounds the signals waiting for one node's connection.
const maxPendingConnBytes = 16 << 20

// connWait is the queue of one node waiting for its connection.
type connWait struct {
	items []connWaitItem
	bytes int
	gen   uint64 // the connection attempt it waits for
}

type connWaitItem struct {
	frame  []byte
	s      signal // for undeliverable; msg dropped
	signal bool   // false for a {name, node} message (no effect when lost)
}

// ensureConnected connects to node if it is not connected (a request that
// waits for an answer anyway: remote spawn, whereis), bounded by ctx and
// AutoConnectTimeout. The error wraps ErrNoConnection.
func (d *dist) ensureConnected(ctx context.Context, node string) error {
	if _, ok := d.peer(node); ok {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, AutoConnectTimeout)
	defer cancel()
	if err := d.host.Connect(cctx, node); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrNoConnection, node, err)
	}
	if err := d.waitPeer(cctx, node); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrNoConnection, node, err)
	}
	return nil
}

// waitingFor reports whether signals for node are queued, cheaply when no
// node has a queue.
func (d *dist) waitingFor(node string) bool {
	if d.connWaiting.Load() == 0 {
		return false
	}
	d.connMu.Lock()
	_, ok := d.connWaits[node]
	d.connMu.Unlock()
	return ok
}

// routeNotConnected handles a signal for a node that has no connection, or
// whose connection is still being set up with signals queued for it.
func (d *dist) routeNotConnected(s signal) error {
	if err := ValidateNodeName(s.to.Node); err != nil {
		d.undeliverable(s, ReasonNoConnection) // a pid of no node: links and monitors fire
		return fmt.Errorf("nodal: send to %v: %w", s.to, err)
	}
	frame, err := d.encodeSignal(nil, s, s.to.Node)
	if err != nil {
		return err
	}
	if err := d.checkFrameSize(frame, s.to.String()); err != nil {
		return err
	}
	s.msg = nil // only kind, pids, ref and reason matter if it is lost
	it := connWaitItem{frame: frame, s: s, signal: true}
	switch d.enqueueForConnect(s.to.Node, it) {
	case upNow:
		d.sendWaited(s.to.Node, it)
	case refused:
		d.undeliverable(s, ReasonNoConnection)
	}
	return nil
}

func (d *dist) checkFrameSize(frame []byte, to string) error {
	if max := d.host.MaxFrameSize(); len(frame) > max {
		return fmt.Errorf("nodal: send to %s: %w: %d bytes, limit %d", to, p2p.ErrFrameTooLarge, len(frame), max)
	}
	return nil
}

// What enqueueForConnect did.
type queueResult int

const (
	queued  queueResult = iota // it waits for node's connection
	upNow                      // node connected meanwhile with nothing queued: send it directly
	refused                    // node cannot be waited for: not a live member, node stopping, queue full
)

// enqueueForConnect queues it for node and makes sure a connection is on its
// way.
func (d *dist) enqueueForConnect(node string, it connWaitItem) queueResult {
	d.connMu.Lock()
	w := d.connWaits[node]
	if w == nil {
		if _, up := d.peer(node); up {
			d.connMu.Unlock()
			return upNow
		}
		d.connGen++
		gen := d.connGen
		// The attempt ends within AutoConnectTimeout; a success shows as
		// the connection's NodeUp, which flushes the queue.
		rctx, cancel := context.WithTimeout(d.ctx, AutoConnectTimeout)
		if d.ctx.Err() != nil || !d.host.Reach(rctx, node, func(err error) {
			cancel()
			if err != nil {
				d.enqueueAsync(asyncItem{run: func() { d.connectFailed(node, gen, err) }})
			}
		}) {
			cancel()
			d.connMu.Unlock()
			return refused
		}
		w = &connWait{gen: gen}
		d.connWaits[node] = w
		d.connWaiting.Add(1)
	}
	if w.bytes+len(it.frame) > maxPendingConnBytes {
		d.connMu.Unlock()
		log.Warnw("auto-connect queue full, signal undeliverable", "node", node, "queued_bytes", w.bytes)
		return refused
	}
	w.items = append(w.items, it)
	w.bytes += len(it.frame)
	d.connMu.Unlock()
	return queued
}

// flushConnWait sends what waited for node, in order, once its connection
// is up (run by the async sender after NodeUp). Signals routed while it
// runs join the queue and go out in the same loop; the queue is removed
// only when empty, so later signals go straight to the connection after
// everything that waited.
func (d *dist) flushConnWait(node string) {
	for {
		d.connMu.Lock()
		w := d.connWaits[node]
		if w == nil {
			d.connMu.Unlock()
			return
		}
		items := w.items
		w.items, w.bytes = nil, 0
		if len(items) == 0 {
			delete(d.connWaits, node)
			d.connWaiting.Add(-1)
			d.connMu.Unlock()
			return
		}
		d.connMu.Unlock()
		for _, it := range items {
			d.sendWaited(node, it)
		}
	}
}

// sendWaited sends one waited-for item on node's connection, or makes it
// undeliverable.
func (d *dist) sendWaited(node string, it connWaitItem) {
	peer, ok := d.peer(node)
	switch {
	case !ok:
		d.loseWaited(it, ReasonNoConnection)
	case it.signal && peer.Incarnation != it.s.to.Incarnation:
		d.loseWaited(it, ReasonNoProc) // a pid of another start of that node
	default:
		if err := d.host.Send(d.ctx, node, it.frame); err != nil {
			d.sendErrors.Add(1)
			d.loseWaited(it, ReasonNoConnection)
		}
	}
}

func (d *dist) loseWaited(it connWaitItem, reason error) {
	if it.signal {
		d.undeliverable(it.s, reason)
	}
}

// connectFailed fails what waits for node's connection attempt gen (run by
// the async sender), unless the node is connected by now.
func (d *dist) connectFailed(node string, gen uint64, cause error) {
	d.connMu.Lock()
	w := d.connWaits[node]
	if w == nil || w.gen != gen {
		d.connMu.Unlock()
		return
	}
	if _, up := d.peer(node); up {
		d.connMu.Unlock()
		d.flushConnWait(node) // connected meanwhile
		return
	}
	delete(d.connWaits, node)
	d.connWaiting.Add(-1)
	d.connMu.Unlock()
	log.Infow("auto-connect failed; signals waiting for the node are undeliverable",
		"node", node, "signals", len(w.items), "err", cause)
	for _, it := range w.items {
		d.loseWaited(it, ReasonNoConnection)
	}
}
