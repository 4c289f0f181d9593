package replica

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/lni/goutils/syncutil"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/crdt"
)

var log = logging.Logger("nodal/replica")

// Defaults of Config.
const (
	DefaultPermdownPeriod = 20 * time.Minute
	DefaultSyncInterval   = 5 * time.Second
	DefaultMaxQueueBytes  = 64 << 20
)

// housekeeping is how often the engine retries pushes that could not be
// queued and checks permanent-down deadlines.
const housekeeping = 100 * time.Millisecond

// maxPurgeMarks bounds the purged incarnations remembered per node name.
const maxPurgeMarks = 8

// ErrStopped is returned by the methods of a Replica that has stopped.
var ErrStopped = errors.New("replica: stopped")

// Config configures a Replica.
type Config[K comparable, V any] struct {
	// Service is the name the engine attaches under on the node, the same
	// on every node (e.g. "registry:" + scope). Required.
	Service string
	// Keys and Values describe the key and value types. Required.
	Keys   crdt.Codec[K]
	Values crdt.Codec[V]
	// PermdownPeriod: a node down for longer than this has its entries
	// purged (DefaultPermdownPeriod if zero). Keep it the same on every
	// node, and longer than the time heal takes to reconnect.
	PermdownPeriod time.Duration
	// SyncInterval is how often a digest is exchanged with one random peer,
	// besides memberlist's push/pull and node-up exchanges
	// (DefaultSyncInterval if zero).
	SyncInterval time.Duration
	// LogLimit is how many recent events per origin the state keeps to
	// serve peers' gaps from (crdt.DefaultLogLimit if zero, none if < 0).
	LogLimit int
	// MaxQueueBytes bounds the inbound frames waiting for the engine
	// (DefaultMaxQueueBytes if zero); beyond it frames are dropped and
	// repaired by the next digest exchange.
	MaxQueueBytes int
	// Check, if set, is asked about every entry of a delta that arrives
	// from another node (a push, a pull's answer), before the engine sees
	// it, on the receiving goroutine: a delta with an entry Check refuses
	// is bad input, dropped whole and counted (Stats.Refused). It must be
	// pure and safe for concurrent use.
	Check func(key K, sib crdt.Sibling[V]) error
	// OnChange is called on the engine's goroutine with the visible
	// changes, in order. It may mutate through s (its changes come in a
	// later call) and must not block. changes is valid only during the
	// call (the engine reuses it).
	OnChange func(s *State[K, V], changes []Change[K, V])
	// OnVisibility, if set, is told once per origin that its entries are
	// hidden (its node went down here) or shown again (the same
	// incarnation came back), instead of OnChange being told one NodeDown
	// or NodeUp change per entry; OnChange then also gets the changes to
	// hidden origins' entries (Change.Hidden), so the service can keep
	// them and filter reads by origin: a heal costs what changed, not the
	// state. It runs on the engine's goroutine after OnChange has seen
	// every change before it, with State.Visible already saying the new
	// visibility; it may mutate through s like OnChange.
	OnVisibility func(s *State[K, V], id crdt.ReplicaID, visible bool)
	// OnNotice, if set, receives on the engine's goroutine the payloads
	// other nodes' replicas sent with State.Notify, in the order each sent
	// them. payload belongs to the callee.
	OnNotice func(s *State[K, V], from nodal.NodeRef, payload []byte)
	// OnStop, if set, is called once when the replica has stopped (by Stop
	// or Node.Stop), on Stop's goroutine, after the engine's goroutine ended
	// (no OnChange or OnNotice runs after it), with Stop's ctx.
	OnStop func(ctx context.Context)
}

// Reason says why an entry became visible or invisible.
type Reason int

// Reasons of a Change.
const (
	// Local: a mutation on this node.
	Local Reason = iota + 1
	// Remote: a delta from another node (its mutation, or anti-entropy).
	Remote
	// NodeDown: the owner's node went down here; the entry is hidden.
	NodeDown
	// NodeUp: the owner's node is up again with the same incarnation.
	NodeUp
	// Purged: the owner's incarnation is gone for good (it left, restarted,
	// or stayed down for PermdownPeriod).
	Purged
)

// String returns the reason in words.
func (r Reason) String() string {
	switch r {
	case Local:
		return "local"
	case Remote:
		return "remote"
	case NodeDown:
		return "nodedown"
	case NodeUp:
		return "nodeup"
	case Purged:
		return "purged"
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// Change is one entry becoming visible (Op crdt.Added) or invisible
// (crdt.Removed) on this node.
type Change[K comparable, V any] struct {
	Op     crdt.Op
	Key    K
	Value  V
	Dot    crdt.Dot // the entry's dot; Dot.Replica is its owner
	Reason Reason
	// Hidden: the entry's origin is hidden here, so the change is not
	// visible (only with Config.OnVisibility).
	Hidden bool
}

// Stats counts what a Replica exchanged. Bytes and entries count frames
// sent and received, digests included.
type Stats struct {
	DeltasSent, DeltasReceived   uint64 // delta frames (pushes, pull answers, sync)
	EntriesSent, EntriesReceived uint64 // live entries carried by those deltas
	BytesSent, BytesReceived     uint64 // every frame of this service
	DigestsSent, DigestsReceived uint64 // pulls, sync requests, push/pull states
	Syncs                        uint64 // Sync calls completed
	Purged                       uint64 // incarnations purged
	Dropped                      uint64 // frames and entries of purged incarnations, dropped
	BadFrames                    uint64 // undecodable frames and states, dropped
	Refused                      uint64 // deltas with an entry Config.Check refused, dropped
	QueueDrops                   uint64 // frames not queued (inbound full, outbound full)
}

type counters struct {
	deltasSent, deltasRecv, entriesSent, entriesRecv, bytesSent, bytesRecv,
	digestsSent, digestsRecv, syncs, purged, dropped, badFrames, refused, queueDrops atomic.Uint64
}

// Replica is one replicated ORMap on a node, kept in agreement with the
// replicas of the same service on the other nodes. Its methods are safe for
// concurrent use.
type Replica[K comparable, V any] struct {
	n    *nodal.Node
	cfg  Config[K, V]
	self crdt.ReplicaID

	stopper  *syncutil.Stopper
	stopOnce sync.Once
	stopped  atomic.Bool
	ops      chan op[K, V]

	qmu        sync.Mutex
	queue      []event[K, V]
	queueBytes int
	queued     atomic.Bool // queue is not empty (set and cleared under qmu)
	wake       chan struct{}

	deltas   sync.Pool              // of *crdt.ORMap: joined pushes, for the next to decode into
	gossip   atomic.Pointer[[]byte] // this replica's digest for push/pull
	peerList atomic.Pointer[[]string]
	st       counters
	traffic  trafficTable // per node, since it came up (TrafficSinceUp)

	// mu guards what follows: held by the engine's goroutine for each of
	// its turns, and by an Update that runs its operation itself.
	mu        sync.Mutex
	m         *crdt.ORMap[K, V]
	up        map[string]uint64 // connected nodes -> incarnation
	serving   map[string]bool   // nodes that advertise the service
	downSince map[string]time.Time
	purged    map[string][]purgeMark
	behind    map[string]bool // peers a push to could not be queued
	pl        puller          // pulls from peers' digests (pull.go)
	pending   []Change[K, V]
	joined    []crdt.ValueChange[K, V] // joinRemote's buffer
	spare     []Change[K, V]           // the other change buffer, reused by flush
	out       *crdt.ORMap[K, V]        // local deltas not pushed yet
	spareOut  *crdt.ORMap[K, V]        // the last pushed delta, emptied, for reuse
	syncs     map[uint64]*syncWait
	syncID    uint64
	dirty     bool
	lastSync  time.Time
	rng       *rand.Rand
	state     State[K, V]
	done      []opResult      // callers of this turn's operations
	synced    []chan struct{} // syncs answered this turn, closed after its flush
	lastPush  time.Time
	pushTimer *time.Timer
	pushArmed bool
	free      chan chan error // Update's reply channels, for reuse
	// pushPerEntry: bytes per live entry of the last push, to size the
	// next push's buffer.
	pushPerEntry int
}

type purgeMark struct {
	epoch uint64
	final bool // left or replaced: never accepted again
}

type syncWait struct {
	peers map[string]int         // halves still awaited: covered, acknowledged
	sent  map[string]crdt.Digest // the digest sent to each peer, known held there once acknowledged
	done  chan struct{}
}

type op[K comparable, V any] struct {
	fn   func(s *State[K, V]) error
	done chan error
}

type opResult struct {
	done chan error
	err  error
}

type eventKind int

const (
	evFrame eventKind = iota
	evUp
	evDown
	evMember
)

type event[K comparable, V any] struct {
	kind   eventKind
	from   nodal.NodeRef
	frame  frame[K, V]
	size   int
	member nodal.MemberEvent
}

// New makes a Replica and attaches it to n under cfg.Service. Node.Stop
// stops it; Stop stops it earlier.
func New[K comparable, V any](n *nodal.Node, cfg Config[K, V]) (*Replica[K, V], error) {
	if cfg.Service == "" || cfg.Keys == nil || cfg.Values == nil {
		return nil, fmt.Errorf("%w: replica needs a service name and key and value codecs", nodal.ErrBadOption)
	}
	if cfg.PermdownPeriod <= 0 {
		cfg.PermdownPeriod = DefaultPermdownPeriod
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = DefaultSyncInterval
	}
	if cfg.MaxQueueBytes <= 0 {
		cfg.MaxQueueBytes = DefaultMaxQueueBytes
	}
	self := crdt.ReplicaID{Name: n.Name(), Epoch: n.Incarnation()}
	r := &Replica[K, V]{
		n:         n,
		cfg:       cfg,
		self:      self,
		stopper:   syncutil.NewStopper(),
		ops:       make(chan op[K, V], 1024),
		free:      make(chan chan error, 1024),
		wake:      make(chan struct{}, 1),
		m:         crdt.NewORMap(self, cfg.Keys, cfg.Values),
		up:        map[string]uint64{},
		serving:   map[string]bool{},
		downSince: map[string]time.Time{},
		purged:    map[string][]purgeMark{},
		behind:    map[string]bool{},
		syncs:     map[uint64]*syncWait{},
		rng:       rand.New(rand.NewPCG(self.Epoch, uint64(time.Now().UnixNano()))),
	}
	switch {
	case cfg.LogLimit < 0:
		r.m.SetLogLimit(0)
	case cfg.LogLimit > 0:
		r.m.SetLogLimit(cfg.LogLimit)
	}
	r.pl.init()
	r.state.r = r
	r.deltas.New = func() any { return crdt.NewORMap(crdt.ReplicaID{}, cfg.Keys, cfg.Values) }
	r.pushTimer = time.NewTimer(time.Hour)
	r.pushTimer.Stop()
	r.lastSync = time.Now()
	r.refreshGossip()
	r.stopper.RunWorker(r.run)
	if err := n.AttachService(cfg.Service, &service[K, V]{r}); err != nil {
		r.stopper.Stop()
		return nil, err
	}
	return r, nil
}

// Self returns the replica identity this node writes as.
func (r *Replica[K, V]) Self() crdt.ReplicaID { return r.self }

// Node returns the node the replica runs on.
func (r *Replica[K, V]) Node() *nodal.Node { return r.n }

// Update runs fn with the state and returns its error. fn runs after the
// engine has handled every frame, node and member event delivered to the
// service before Update was called (a node whose NodeUp was delivered is
// up in s). Mutations fn makes through s are reported to OnChange (with
// reason Local) and pushed to the other nodes (or the push is scheduled,
// so that a burst goes out as one frame per peer) before Update returns,
// so OnChange has seen fn's changes by then. A fn that only reads is a
// consistent read of the state. fn must not block, nor call Update. When
// the engine is idle, fn runs on the caller's goroutine with the engine's
// lock held (no hand-off); otherwise it is handed to the engine, which
// runs the operations that arrive together in one turn: then ctx bounds
// only the hand-over, and Update waits for fn to run.
func (r *Replica[K, V]) Update(ctx context.Context, fn func(s *State[K, V]) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.mu.TryLock() {
		if r.stopped.Load() {
			r.mu.Unlock()
			return ErrStopped
		}
		r.catchUp()
		err := fn(&r.state)
		r.flush()
		r.mu.Unlock()
		return err
	}
	o := op[K, V]{fn: fn, done: r.getDone()}
	select {
	case r.ops <- o: // the common case: room in the queue, no full select
	default:
		select {
		case r.ops <- o:
		case <-ctx.Done():
			r.putDone(o.done)
			return ctx.Err()
		case <-r.stopper.ShouldStop():
			r.putDone(o.done)
			return ErrStopped
		}
	}
	select {
	case err := <-o.done:
		r.putDone(o.done)
		return err
	case <-r.stopper.ShouldStop():
		select {
		case err := <-o.done:
			return err
		default:
			return ErrStopped
		}
	}
}

// getDone returns an empty reply channel (buffered 1).
func (r *Replica[K, V]) getDone() chan error {
	select {
	case c := <-r.free:
		return c
	default:
		return make(chan error, 1)
	}
}

// putDone recycles an empty reply channel.
func (r *Replica[K, V]) putDone(c chan error) {
	select {
	case r.free <- c:
	default:
	}
}

// Sync exchanges digests with every up node that runs the service (up:
// its NodeUp was delivered before the call, as for Update), both ways,
// and returns once each has answered and acknowledged what this node sent
// it (Erlang's global:sync/0), or once it went down meanwhile. It returns
// ctx's error if ctx ends first.
func (r *Replica[K, V]) Sync(ctx context.Context) error {
	var w *syncWait
	var id uint64
	err := r.Update(ctx, func(s *State[K, V]) error {
		w, id = r.startSync()
		return nil
	})
	if err != nil {
		return err
	}
	select {
	case <-w.done:
		r.st.syncs.Add(1)
		return nil
	case <-ctx.Done():
		_ = r.Update(context.Background(), func(*State[K, V]) error {
			delete(r.syncs, id)
			return nil
		})
		return ctx.Err()
	case <-r.stopper.ShouldStop():
		return ErrStopped
	}
}

// Peers returns the nodes this replica exchanges with: up here and running
// the service, sorted.
func (r *Replica[K, V]) Peers() []string {
	if p := r.peerList.Load(); p != nil {
		return slices.Clone(*p)
	}
	return nil
}

// Stats returns the counters.
func (r *Replica[K, V]) Stats() Stats {
	s := &r.st
	return Stats{
		DeltasSent: s.deltasSent.Load(), DeltasReceived: s.deltasRecv.Load(),
		EntriesSent: s.entriesSent.Load(), EntriesReceived: s.entriesRecv.Load(),
		BytesSent: s.bytesSent.Load(), BytesReceived: s.bytesRecv.Load(),
		DigestsSent: s.digestsSent.Load(), DigestsReceived: s.digestsRecv.Load(),
		Syncs: s.syncs.Load(), Purged: s.purged.Load(), Dropped: s.dropped.Load(),
		BadFrames: s.badFrames.Load(), Refused: s.refused.Load(), QueueDrops: s.queueDrops.Load(),
	}
}

// Stop detaches the service and ends the engine's goroutine; pending
// Update and Sync calls return ErrStopped. It is idempotent; Node.Stop
// calls it.
func (r *Replica[K, V]) Stop(ctx context.Context) error {
	r.stopOnce.Do(func() {
		r.stopped.Store(true)
		r.n.DetachService(r.cfg.Service)
		r.stopper.Stop()
		r.mu.Lock() // an Update running its operation itself has ended
		r.mu.Unlock()
		if r.cfg.OnStop != nil {
			r.cfg.OnStop(ctx)
		}
	})
	return nil
}

// State is the replica's state as the engine's goroutine sees it. It is
// valid only during the call it is passed to (Update's function, OnChange).
type State[K comparable, V any] struct{ r *Replica[K, V] }

// Map returns the CRDT, hidden entries included. It must not be mutated
// directly: use Add, Replace and RemoveDots.
func (s *State[K, V]) Map() *crdt.ORMap[K, V] { return s.r.m }

// Self returns the replica identity this node writes as.
func (s *State[K, V]) Self() crdt.ReplicaID { return s.r.self }

// Visible reports whether entries written by replica id are shown: id is
// this node's, or its node is up here with that incarnation.
func (s *State[K, V]) Visible(id crdt.ReplicaID) bool { return s.r.visible(id) }

// Up reports whether node is connected here (for this node itself: true).
func (s *State[K, V]) Up(node string) bool {
	if node == s.r.self.Name {
		return true
	}
	_, ok := s.r.up[node]
	return ok
}

// Siblings appends the visible siblings of k to dst, in dot order.
func (s *State[K, V]) Siblings(dst []crdt.Sibling[V], k K) []crdt.Sibling[V] {
	n := len(dst)
	dst = s.r.m.AppendSiblings(dst, k)
	out := dst[:n]
	for _, sib := range dst[n:] {
		if s.r.visible(sib.Dot.Replica) {
			out = append(out, sib)
		}
	}
	return out
}

// Notify sends payload (at most MaxNotice bytes) to the replica on node,
// where Config.OnNotice receives it, ordered with this replica's other
// frames to node; false if node is not a peer or the frame could not be
// queued. For what a CRDT cannot say, such as asking another owner to act
// on its own entries.
func (s *State[K, V]) Notify(node string, payload []byte) bool {
	if len(payload) > MaxNotice || !s.r.serving[node] {
		return false
	}
	if _, up := s.r.up[node]; !up {
		return false
	}
	return s.r.sendCtl(node, encodeNotice(payload))
}

// Add writes v under k as a new sibling owned by this node and returns its
// dot.
func (s *State[K, V]) Add(k K, v V) crdt.Dot {
	r := s.r
	var dot crdt.Dot
	r.out, dot = r.m.AddInto(r.acc(), k, v)
	r.local(nil, Change[K, V]{Op: crdt.Added, Key: k, Value: v, Dot: dot, Reason: Local})
	return dot
}

// Replace removes the given live siblings and writes v under k, as one
// event (no moment where neither is visible), and returns the new dot.
// Under the single-writer rule a node replaces only its own dots.
func (s *State[K, V]) Replace(k K, v V, dots ...crdt.Dot) crdt.Dot {
	r := s.r
	gone := r.removedChanges(dots)
	var dot crdt.Dot
	r.out, dot = r.m.ReplaceInto(r.acc(), k, v, dots...)
	r.local(gone, Change[K, V]{Op: crdt.Added, Key: k, Value: v, Dot: dot, Reason: Local})
	return dot
}

// RemoveDots removes the given siblings (those live); under the
// single-writer rule a node removes only its own dots.
func (s *State[K, V]) RemoveDots(dots ...crdt.Dot) {
	gone := s.r.removedChanges(dots)
	if len(gone) == 0 {
		return
	}
	r := s.r
	r.out = r.m.RemoveDotsInto(r.acc(), dots...)
	r.local(gone)
}

// acc returns the delta local mutations join into: r.out, or the last
// pushed one emptied (its buffer reused), or nil for a new one.
func (r *Replica[K, V]) acc() *crdt.ORMap[K, V] {
	if r.out == nil && r.spareOut != nil {
		r.out, r.spareOut = r.spareOut, nil
	}
	return r.out
}

func (r *Replica[K, V]) removedChanges(dots []crdt.Dot) []Change[K, V] {
	var out []Change[K, V]
	for _, d := range dots {
		if k, v, ok := r.m.Lookup(d); ok {
			out = append(out, Change[K, V]{Op: crdt.Removed, Key: k, Value: v, Dot: d, Reason: Local})
		}
	}
	return out
}

// local records the changes of a local mutation whose delta has joined
// r.out, the delta to push.
func (r *Replica[K, V]) local(gone []Change[K, V], added ...Change[K, V]) {
	for _, c := range gone {
		if r.visible(c.Dot.Replica) {
			r.pending = append(r.pending, c)
		} else if r.cfg.OnVisibility != nil {
			c.Hidden = true
			r.pending = append(r.pending, c)
		}
	}
	r.pending = append(r.pending, added...)
	r.dirty = true
}

func (r *Replica[K, V]) visible(id crdt.ReplicaID) bool {
	if id == r.self {
		return true
	}
	inc, ok := r.up[id.Name]
	return ok && inc == id.Epoch
}

func (r *Replica[K, V]) isPurged(name string, epoch uint64) bool {
	for _, p := range r.purged[name] {
		if p.epoch == epoch {
			return true
		}
	}
	return false
}

// peers returns the up nodes that run the service, sorted.
func (r *Replica[K, V]) peers() []string {
	var out []string
	for name := range r.up {
		if r.serving[name] {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}
