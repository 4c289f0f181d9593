package nodal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lni/goutils/syncutil"

	"github.com/nodal-go/nodal/p2p"
)

// Distribution frame kinds. Their numbers are part of the wire protocol
// "/nodal/dist/1.0.0" carried by p2p.
const (
	dMsg          byte = iota + 1 // from, to, value
	dMsgName                      // from, name, value
	dReply                        // from, to, ref, value
	dLink                         // from, to
	dUnlink                       // from, to
	dExit                         // from, to, reason (erlang:exit/2)
	dLinkExit                     // from, to, reason (a linked process died)
	dMonitor                      // from, to, ref
	dDemonitor                    // from, to, ref
	dDown                         // from, to, ref, reason
	dSpawnReq                     // req, from, group leader, flags, ref, behaviour, args
	dSpawnReply                   // req, pid | error text
	dWhereisReq                   // req, name
	dWhereisReply                 // req, found, pid
	dService                      // service name, payload (see Service)
	dCall                         // from, to, ref, request: monitor + CallRequest (Process.Call)
	dReplyDemon                   // from, to, ref, value: a reply that also ended the dCall's monitor
)

// spawn request flags.
const (
	spawnFlagLink    = 1
	spawnFlagMonitor = 2
)

// dist connects a node's processes to other nodes through p2p: it encodes
// signals for pids of other nodes, decodes the frames of other nodes into
// local signals, and turns node-down into noconnection for every link and
// monitor towards the lost node.
type dist struct {
	n     *Node
	host  *p2p.Host
	codec *Codec

	mu        sync.RWMutex
	upChanged chan struct{} // closed and replaced at every NodeUp
	// peers holds the connected nodes by name (visible and hidden). The map
	// is never modified once stored: NodeUp and NodeDown store a new one
	// under mu, so senders on many cores read it without a shared lock word.
	peers atomic.Pointer[map[string]p2p.Peer]

	// Auto-connect queues (dist_connect.go): signals for members that are
	// not connected yet.
	connMu      sync.Mutex
	connWaits   map[string]*connWait
	connWaiting atomic.Int32 // len(connWaits), read without connMu
	connGen     uint64

	watchMu     sync.Mutex
	nodeWatches map[string]map[Pid]int // MonitorNode: node -> watcher -> count
	subscribers map[Pid]NodeType       // MonitorNodes

	reqMu   sync.Mutex
	nextReq uint64
	pending map[uint64]*pendingReq // remote spawn / whereis replies

	// asyncq carries signals produced while delivering an incoming frame
	// (exit and down signals of processes that died because of it). They
	// are sent by the async worker so that a p2p reader goroutine never
	// blocks on a full outbound queue, which could deadlock two nodes.
	asyncMu  sync.Mutex
	asyncq   []asyncItem
	asyncSig chan struct{}

	ctx    context.Context // cancelled by stop: bounds the async sender's blocking sends
	cancel context.CancelFunc

	stopper *syncutil.Stopper

	// hostReady is closed once host is set (or the start failed and host
	// stays nil): p2p may call the handler while p2p.Start is still joining.
	hostReady chan struct{}
	hostSet   atomic.Bool // host is set: the fast path of waitHost

	backlog   int           // Config.RemoteBacklog, resolved
	delivered atomic.Uint64 // messages delivered from other nodes (sampling clock)
	throttled atomic.Uint64 // times a reader paused for a long mailbox

	decodeErrors atomic.Uint64 // frames dropped because they could not be decoded
	sendErrors   atomic.Uint64 // signals lost because their connection failed
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

// NodeUp is delivered to processes that called MonitorNodes when a
// connection to a node comes up, before any signal from that connection.
type NodeUp struct {
	Node   string
	Hidden bool
}

// asyncItem is a signal to route, or a raw frame to send to node.
type asyncItem struct {
	s     signal
	node  string
	frame []byte
	after func() // run once the frame is handed to p2p (or failed)
	run   func() // if set, the whole item: run it on the async sender
}

func newDist(n *Node, codec *Codec) *dist {
	ctx, cancel := context.WithCancel(context.Background())
	return &dist{
		ctx:         ctx,
		cancel:      cancel,
		n:           n,
		codec:       codec,
		upChanged:   make(chan struct{}),
		nodeWatches: make(map[string]map[Pid]int),
		subscribers: make(map[Pid]NodeType),
		pending:     make(map[uint64]*pendingReq),
		connWaits:   make(map[string]*connWait),
		asyncSig:    make(chan struct{}, 1),
		hostReady:   make(chan struct{}),
		stopper:     syncutil.NewStopper(),
	}
}

// start runs the async sender; the host must be set.
func (d *dist) start() {
	d.stopper.RunWorker(d.asyncLoop)
}

func (d *dist) stop() {
	d.cancel()
	d.stopper.Stop()
}

func (d *dist) asyncLoop() {
	for {
		select {
		case <-d.stopper.ShouldStop():
			return
		case <-d.asyncSig:
		}
		for {
			d.asyncMu.Lock()
			q := d.asyncq
			d.asyncq = nil
			d.asyncMu.Unlock()
			if len(q) == 0 {
				break
			}
			for _, it := range q {
				if it.run != nil {
					it.run()
					continue
				}
				if it.frame == nil {
					d.n.route(it.s)
					continue
				}
				if err := d.host.Send(d.ctx, it.node, it.frame); err != nil {
					d.sendErrors.Add(1)
				}
				if it.after != nil {
					it.after()
				}
			}
		}
	}
}

func (d *dist) enqueueAsync(it asyncItem) {
	d.asyncMu.Lock()
	d.asyncq = append(d.asyncq, it)
	d.asyncMu.Unlock()
	select {
	case d.asyncSig <- struct{}{}:
	default:
	}
}

// hiddenConn reports whether the connection to p is hidden: either end is
// a hidden node (Erlang: such a connection shows only in nodes(hidden)).
func (d *dist) hiddenConn(p p2p.Peer) bool { return p.Hidden || d.n.cfg.Hidden }

// waitHost waits until the p2p host is known; false if the start failed.
func (d *dist) waitHost() bool {
	if d.hostSet.Load() {
		return true // no channel lock on the send path
	}
	<-d.hostReady
	return d.host != nil
}

// waitPeer waits until node's connection is known to this layer (its
// NodeUp was handled), bounded by ctx.
func (d *dist) waitPeer(ctx context.Context, node string) error {
	for {
		d.mu.RLock()
		_, ok := d.peer(node)
		ch := d.upChanged
		d.mu.RUnlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("nodal: connect to %s: %w", node, ctxError(ctx.Err()))
		case <-d.ctx.Done():
			return ErrStopped
		}
	}
}

// peer returns the connection to node, if any.
func (d *dist) peer(node string) (p2p.Peer, bool) {
	p, ok := d.peerMap()[node]
	return p, ok
}

// peerMap returns the current table of connected nodes; read only.
func (d *dist) peerMap() map[string]p2p.Peer {
	if m := d.peers.Load(); m != nil {
		return *m
	}
	return nil
}

// updatePeersLocked stores a modified copy of the peer table; d.mu is held.
func (d *dist) updatePeersLocked(edit func(map[string]p2p.Peer)) {
	m := maps.Clone(d.peerMap())
	if m == nil {
		m = make(map[string]p2p.Peer)
	}
	edit(m)
	d.peers.Store(&m)
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

func (d *dist) undeliverable(s signal, reason error) {
	var q signalQueue
	d.n.undeliverable(&s, reason, &q)
	d.n.drain(&q)
}

// appendRemotePid encodes a pid whose node is usually implied (the sender's
// or the receiver's name): the node name is left out when it equals implied.
func appendRemotePid(b []byte, p Pid, implied string) []byte {
	if p.Node == implied {
		b = append(b, 0)
	} else {
		b = appendString(b, p.Node)
	}
	b = binary.AppendUvarint(b, p.ID)
	return binary.AppendUvarint(b, p.Incarnation)
}

func (dec *decoder) remotePid(implied string) Pid {
	node, id, inc := dec.ident()
	if node == "" {
		node = implied
	}
	return Pid{Node: node, ID: id, Incarnation: inc}
}

// framePool recycles encoding buffers: p2p copies a frame when it queues it.
var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// maxPooledFrame keeps large one-off buffers out of the pool.
const maxPooledFrame = 64 << 10

// encodeSignal appends the encoding of s, for the node named peer, to b.
func (d *dist) encodeSignal(b []byte, s signal, peer string) ([]byte, error) {
	self := d.n.name
	var kind byte
	switch s.kind {
	case sigMessage:
		kind = dMsg
	case sigReply:
		kind = dReply
		if r, ok := s.msg.(CallReply); ok && r.dropped {
			kind = dReplyDemon
		}
	case sigCall:
		kind = dCall
	case sigLink:
		kind = dLink
	case sigUnlink:
		kind = dUnlink
	case sigExit:
		kind = dExit
	case sigLinkExit:
		kind = dLinkExit
	case sigMonitor:
		kind = dMonitor
	case sigDemonitor:
		kind = dDemonitor
	case sigDown:
		kind = dDown
	default:
		return nil, fmt.Errorf("nodal: cannot send a %v signal to another node", s.kind)
	}
	b = append(b, kind)
	b = appendRemotePid(b, s.from, self)
	b = appendRemotePid(b, s.to, peer)
	switch kind {
	case dMsg:
		return d.codec.AppendValue(b, s.msg)
	case dReply, dReplyDemon:
		b = appendRef(b, s.ref)
		var reply any
		if r, ok := s.msg.(CallReply); ok {
			reply = r.Reply
		}
		return d.codec.AppendValue(b, reply)
	case dCall:
		b = appendRef(b, s.ref)
		var req any
		if r, ok := s.msg.(CallRequest); ok {
			req = r.Req
		}
		return d.codec.AppendValue(b, req)
	case dExit, dLinkExit:
		return appendReason(b, s.reason), nil
	case dMonitor, dDemonitor:
		return appendRef(b, s.ref), nil
	case dDown:
		b = appendRef(b, s.ref)
		return appendReason(b, s.reason), nil
	}
	return b, nil
}

// NodeUp implements p2p.Handler: the connection is up before any of its
// frames is delivered.
func (d *dist) NodeUp(p p2p.Peer) {
	d.mu.Lock()
	d.updatePeersLocked(func(m map[string]p2p.Peer) { m[p.Name] = p })
	close(d.upChanged)
	d.upChanged = make(chan struct{})
	d.mu.Unlock()
	hidden := d.hiddenConn(p)
	log.Infow("node up", "node", p.Name, "hidden", hidden)
	d.notifySubscribers(hidden, NodeUp{Node: p.Name, Hidden: hidden})
	// Signals that waited for this connection go out first (after peers
	// is published, so a queue made from now on sees the node up).
	d.connMu.Lock() // not waitingFor's lock-free look: a queue may be in the making
	_, waited := d.connWaits[p.Name]
	d.connMu.Unlock()
	if waited {
		d.enqueueAsync(asyncItem{run: func() { d.flushConnWait(p.Name) }})
	}
}

// NodeDown implements p2p.Handler: every link and monitor towards the lost
// node fires with reason noconnection, and node monitors get NodeDown.
func (d *dist) NodeDown(p p2p.Peer, reason error) {
	d.mu.Lock()
	if cur, ok := d.peer(p.Name); ok && cur.ID == p.ID && cur.Incarnation == p.Incarnation {
		d.updatePeersLocked(func(m map[string]p2p.Peer) { delete(m, p.Name) })
	}
	d.mu.Unlock()
	log.Infow("node down", "node", p.Name, "reason", reason)
	d.failPending(p.Name, reason)
	d.fireNoConnection(p.Name)

	d.fireNodeWatches(p.Name, reason, false)
	d.notifySubscribers(d.hiddenConn(p), NodeDown{Node: p.Name, Reason: reason})
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

func sortedPids[V any](m map[Pid]V) []Pid {
	out := make([]Pid, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	slices.SortFunc(out, Pid.Compare)
	return out
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

// fireNoConnection delivers noconnection for every link and monitor that a
// local process holds towards a pid of node, and forgets the monitors that
// processes of node hold on local processes.
func (d *dist) fireNoConnection(node string) {
	for _, p := range d.n.procs.all() {
		var links []Pid
		var mons []Ref
		var targets []Pid
		p.mu.Lock()
		p.links.each(func(l Pid, _ struct{}) {
			if l.Node == node {
				links = append(links, l)
			}
		})
		p.monitors.each(func(ref Ref, t Pid) {
			if t.Node == node {
				mons = append(mons, ref)
				targets = append(targets, t)
			}
		})
		var gone []Ref
		p.monitoredBy.each(func(ref Ref, w Pid) {
			if w.Node == node {
				gone = append(gone, ref)
			}
		})
		for _, ref := range gone {
			p.monitoredBy.del(ref)
		}
		p.mu.Unlock()
		slices.SortFunc(links, Pid.Compare)
		// Deliver as incoming signals: exits they cause towards other
		// nodes go out through the async sender, never blocking the p2p
		// goroutine that reports the node-down.
		for _, l := range links {
			d.deliverIncoming(signal{kind: sigLinkExit, from: l, to: p.pid, reason: ReasonNoConnection})
		}
		for i, ref := range mons {
			d.deliverIncoming(signal{kind: sigDown, from: targets[i], to: p.pid, ref: ref, reason: ReasonNoConnection})
		}
	}
}

// Frame implements p2p.Handler: it decodes one frame and delivers it. A frame
// that cannot be decoded is dropped, counted and logged; the connection
// survives.
func (d *dist) Frame(p p2p.Peer, data []byte) {
	if !d.waitHost() {
		return
	}
	if err := d.handleFrame(p, data); err != nil {
		d.decodeErrors.Add(1)
		log.Warnw("dropped undecodable frame", "from", p.Name, "bytes", len(data), "error", err)
	}
}

func (d *dist) handleFrame(p p2p.Peer, data []byte) error {
	dec := decoder{b: data, owned: true} // p2p gives us the frame
	kind := dec.byte()
	switch kind {
	case dMsg, dReply, dReplyDemon, dCall, dLink, dUnlink, dExit, dLinkExit, dMonitor, dDemonitor, dDown:
		return d.handleSignal(p, kind, &dec)
	case dMsgName:
		from := dec.remotePid(p.Name)
		name := dec.string()
		v := d.codec.decodeValue(&dec)
		if err := dec.done(); err != nil {
			return err
		}
		// {Name, Node} ! Msg to a name that is not registered is dropped
		// silently, as in Erlang.
		_ = d.n.sendName(from, name, v)
		return nil
	case dSpawnReq:
		return d.handleSpawnRequest(p, &dec)
	case dSpawnReply, dWhereisReply:
		return d.handleReply(p, kind, &dec)
	case dWhereisReq:
		req := dec.uvarint()
		name := dec.string()
		if err := dec.done(); err != nil {
			return err
		}
		pid, ok := d.n.Whereis(name)
		b := binary.AppendUvarint([]byte{dWhereisReply}, req)
		if ok {
			b = append(b, 1)
			b = appendPid(b, pid)
		} else {
			b = append(b, 0)
		}
		d.sendAsyncFrame(p.Name, b, nil)
		return nil
	case dService:
		return d.n.handleServiceFrame(p.Name, &dec)
	}
	return fmt.Errorf("%w: unknown frame kind %d", ErrCodec, kind)
}

func (dec *decoder) done() error {
	if dec.err != nil {
		return dec.err
	}
	if dec.off != len(dec.b) {
		return fmt.Errorf("%w: %d trailing bytes", ErrCodec, len(dec.b)-dec.off)
	}
	return nil
}

func (d *dist) handleSignal(p p2p.Peer, kind byte, dec *decoder) error {
	s := signal{
		from: dec.remotePid(p.Name),
		to:   dec.remotePid(d.n.name),
	}
	if s.from.Node != p.Name && !s.from.IsZero() {
		return fmt.Errorf("%w: signal from %v relayed by %s", ErrCodec, s.from, p.Name)
	}
	switch kind {
	case dMsg:
		s.kind = sigMessage
		s.msg = d.codec.decodeValue(dec)
	case dReply, dReplyDemon:
		s.kind = sigReply
		s.ref = dec.ref()
		s.msg = CallReply{Ref: s.ref, Reply: d.codec.decodeValue(dec), dropped: kind == dReplyDemon}
	case dCall:
		s.kind = sigCall
		s.ref = dec.ref()
		s.msg = CallRequest{From: From{Pid: s.from, Ref: s.ref, mon: true}, Req: d.codec.decodeValue(dec)}
	case dLink:
		s.kind = sigLink
	case dUnlink:
		s.kind = sigUnlink
	case dExit:
		s.kind = sigExit
		s.reason = dec.reason()
	case dLinkExit:
		s.kind = sigLinkExit
		s.reason = dec.reason()
	case dMonitor:
		s.kind = sigMonitor
		s.ref = dec.ref()
	case dDemonitor:
		s.kind = sigDemonitor
		s.ref = dec.ref()
	case dDown:
		s.kind = sigDown
		s.ref = dec.ref()
		s.reason = dec.reason()
	}
	if err := dec.done(); err != nil {
		return err
	}
	d.deliverIncoming(s)
	return nil
}

// deliverIncoming delivers a signal from another node. Signals it causes
// for pids of other nodes go through the async sender, never from the p2p
// reader goroutine that called us.
func (d *dist) deliverIncoming(s signal) {
	n := d.n
	if s.kind == sigMessage && n.isLocal(s.to) {
		if p := n.procs.get(s.to.ID); p != nil && p.deliver(s.msg) {
			d.throttle(p)
		}
		return
	}
	var q signalQueue
	if n.isLocal(s.to) {
		n.deliverQ(&s, &q)
	} else {
		n.undeliverable(&s, ReasonNoProc, &q)
	}
	for q.head < len(q.items) {
		f := q.items[q.head]
		q.items[q.head] = signal{}
		q.head++
		if f.to.Node == n.name {
			n.routeQ(&f, &q)
		} else {
			d.enqueueAsync(asyncItem{s: f})
		}
	}
}

// throttle pauses the calling p2p reader while p's mailbox is above the
// backlog bound, until it is under half of it (or p exits, or the node
// stops). It samples the mailbox once every 64 deliveries per reader call
// site, which keeps the check off the common path.
func (d *dist) throttle(p *Process) {
	max := d.backlog
	if max <= 0 || d.delivered.Add(1)&63 != 0 {
		return
	}
	if d.queueLen(p) <= max {
		return
	}
	d.throttled.Add(1)
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for d.queueLen(p) > max/2 {
		select {
		case <-t.C:
		case <-d.ctx.Done():
			return
		}
	}
}

func (d *dist) queueLen(p *Process) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead {
		return 0
	}
	return p.queueLenLocked()
}

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
