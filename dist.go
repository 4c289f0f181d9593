package nodal

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/lni/goutils/syncutil"

	"github.com/nodal-go/nodal/p2p"
)

// Distribution frame kinds. Their numbers are part of the wire protocol
// "/nodal/dist/1.1.0" carried by p2p.
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
	dMsgSame                      // value: a message with the pids of the frame before, a dMsg (p2p.Link.SendHead)
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
	incEnc    []byte        // this node's incarnation as a uvarint (decodeLocalMsg)
	inHeads   sync.Map      // node name -> *msgHead: the head of its connection's last frame (dist.Frames)
	delivered atomic.Uint64 // messages delivered from other nodes (sampling clock)
	throttled atomic.Uint64 // times a reader paused for a long mailbox

	decodeErrors atomic.Uint64 // frames dropped because they could not be decoded
	sendErrors   atomic.Uint64 // signals lost because their connection failed
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
		incEnc:      binary.AppendUvarint(nil, n.incarnation),
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

func sortedPids[V any](m map[Pid]V) []Pid {
	return slices.SortedFunc(maps.Keys(m), Pid.Compare)
}

// DistStats are counters of the distribution layer.
type DistStats struct {
	DecodeErrors uint64 // frames dropped because they could not be decoded
	SendErrors   uint64 // signals lost because their connection failed
	Throttled    uint64 // times a connection was paused for a long mailbox (RemoteBacklog)
	// UnknownService counts, by service name, frames that arrived for a
	// service not attached here (dropped; each node and service is logged once).
	UnknownService map[string]uint64
	P2P            p2p.Stats
}

// DistStats returns the distribution counters (zero on a local-only node).
func (n *Node) DistStats() DistStats {
	d := n.dist
	if d == nil || !d.waitHost() {
		return DistStats{UnknownService: n.svc.unknownServiceFrames()}
	}
	return DistStats{
		DecodeErrors:   d.decodeErrors.Load(),
		SendErrors:     d.sendErrors.Load(),
		Throttled:      d.throttled.Load(),
		UnknownService: n.svc.unknownServiceFrames(),
		P2P:            d.host.Stats(),
	}
}
