package heal

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/lni/goutils/syncutil"

	"github.com/nodal-go/nodal"
)

var log = logging.Logger("nodal/heal")

// ServiceName is the name the heal service attaches under on every node.
const ServiceName = "heal"

// Heal is a node's heal service: it knows the expected nodes, reports
// partitions and heals, reconnects lost nodes, runs the reconcilers after a
// heal, applies the split-brain strategy and runs votes. Make one per node
// with New; its methods are safe for concurrent use.
type Heal struct {
	n       *nodal.Node
	cfg     Config
	self    string
	started int64 // Unix nanoseconds of New: the node's age for keep-oldest

	ctx    context.Context // cancelled by Stop
	cancel context.CancelFunc

	stopper *syncutil.Stopper // the loop and the voter
	work    *syncutil.Stopper // reconnect attempts and reconcile rounds, started by the loop
	wake    chan struct{}     // cap 1: state changed, run a step

	mu    sync.Mutex
	nodes map[string]*nodeRec
	st    loopState // owned by the loop, read under mu by View

	recMu       sync.Mutex
	reconcilers []namedReconciler

	subMu sync.Mutex
	subs  map[*Subscription]struct{}

	votes voteTable

	stopOnce sync.Once
	stopped  atomic.Bool

	badFrames atomic.Uint64
}

// nodeRec is what the heal service knows of another node. Guarded by mu.
type nodeRec struct {
	name       string
	inc        uint64
	gossip     string // last known memberlist address
	configured bool   // in Config.Expected
	seen       bool   // ever a member
	member     bool   // an alive member now
	left       bool   // left gracefully
	connected  bool
	heal       bool // runs the heal service (a hello came)
	healTag    bool // its metadata lists the heal service

	since time.Time // when it entered its state (lost, left, failed)
	lost  bool      // expected and unreachable (since 'since')

	settings Settings
	started  int64
	refused  bool // its settings differ

	reach    []string // the nodes it reports connections to
	reachSeq uint64

	helloSent bool
	reachSent uint64 // the seq of our reach report it got

	// reconnect
	trying   bool
	nextTry  time.Time
	backoff  time.Duration
	attempts int
	lastErr  error
}

// expected reports whether r counts in the expected set.
func (r *nodeRec) expected() bool {
	if r.refused {
		return false
	}
	return r.configured || (r.seen && !r.left)
}

// New attaches a heal service to n under ServiceName. Node.Stop stops it
// first; Stop stops it earlier. A node has at most one.
func New(n *nodal.Node, cfg Config) (*Heal, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	now := time.Now()
	h := &Heal{
		n:       n,
		cfg:     cfg,
		self:    n.Name(),
		started: now.UnixNano(),
		stopper: syncutil.NewStopper(),
		work:    syncutil.NewStopper(),
		wake:    make(chan struct{}, 1),
		nodes:   map[string]*nodeRec{},
		subs:    map[*Subscription]struct{}{},
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.votes.init()
	h.st.init(now)
	for _, name := range cfg.Expected {
		if name == h.self {
			continue
		}
		r := h.rec(name)
		r.configured = true
		r.since = now
	}
	if err := n.AttachService(ServiceName, &service{h}); err != nil {
		h.cancel()
		return nil, err
	}
	h.stopper.RunWorker(h.loop)
	h.stopper.RunWorker(h.voter)
	return h, nil
}

// rec returns the record of name, creating it; callers hold mu.
func (h *Heal) rec(name string) *nodeRec {
	r := h.nodes[name]
	if r == nil {
		r = &nodeRec{name: name}
		h.nodes[name] = r
	}
	return r
}

// Node returns the node h runs on.
func (h *Heal) Node() *nodal.Node { return h.n }

// Settings returns the values this node shares with every node.
func (h *Heal) Settings() Settings { return h.cfg.settings() }

// Stop detaches the service, ends reconnect attempts, reconcile rounds and
// votes (a running Propose returns an error wrapping ErrStopped) and closes every
// subscription; it waits for its goroutines. It is idempotent; Node.Stop
// calls it first.
func (h *Heal) Stop(ctx context.Context) error {
	h.stopOnce.Do(func() {
		h.stopped.Store(true)
		h.n.DetachService(ServiceName)
		h.cancel()
		h.stopper.Stop()
		h.work.Stop()
		h.closeSubs()
	})
	return nil
}

// signal wakes the loop.
func (h *Heal) signal() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// service is the Heal's nodal.Service adapter, so the hook's methods stay
// off Heal's API.
type service struct{ h *Heal }

var (
	_ nodal.ServiceStopper = (*service)(nil)
	_ nodal.MemberWatcher  = (*service)(nil)
)

// HandleFrame implements nodal.Service.
func (s *service) HandleFrame(from nodal.NodeRef, data []byte) {
	h := s.h
	if from.Hidden {
		return
	}
	f, err := decodeFrame(data)
	if err != nil {
		if h.badFrames.Add(1) == 1 {
			log.Warnw("malformed heal frame dropped (logged once)", "from", from.Name, "err", err)
		}
		return
	}
	switch f.kind {
	case kindHello:
		h.gotHello(from, f)
	case kindReach:
		h.mu.Lock()
		if r := h.nodes[from.Name]; r != nil && r.inc == from.Incarnation && f.seq > r.reachSeq {
			r.reach, r.reachSeq = f.nodes, f.seq
		}
		h.mu.Unlock()
	case kindVoteReq:
		h.votes.request(h, from, f)
	case kindVoteResp:
		h.votes.answer(from.Name, f)
	}
}

// gotHello records a node's settings and start, and refuses it when its
// settings differ.
func (h *Heal) gotHello(from nodal.NodeRef, f frame) {
	ours := h.cfg.settings()
	h.mu.Lock()
	r := h.rec(from.Name)
	if r.inc != from.Incarnation {
		r.inc = from.Incarnation
	}
	r.heal, r.settings, r.started = true, f.settings, f.started
	wasRefused := r.refused
	r.refused = f.settings != ours
	var ev *Refused
	if r.refused && !wasRefused {
		self := h.started > f.started || (h.started == f.started && h.self > from.Name)
		ev = &Refused{At: time.Now(), Node: from.Name, Ours: ours, Theirs: f.settings, Self: self}
	}
	h.mu.Unlock()
	if ev != nil {
		log.Errorw("heal settings differ: the newer node is refused", "node", h.self, "other", from.Name,
			"ours", ours.String(), "theirs", f.settings.String(), "this node refused", ev.Self)
		h.emit(*ev)
	}
	h.signal()
}

// NodeUp implements nodal.Service.
func (s *service) NodeUp(node nodal.NodeRef) {
	if node.Hidden {
		return
	}
	h := s.h
	h.mu.Lock()
	r := h.rec(node.Name)
	if r.inc != node.Incarnation {
		h.newIncarnationLocked(r, node.Incarnation)
	}
	r.connected, r.helloSent, r.reachSent = true, false, 0
	r.seen = true
	h.mu.Unlock()
	h.signal()
}

// NodeDown implements nodal.Service.
func (s *service) NodeDown(node nodal.NodeRef, _ error) {
	if node.Hidden {
		return
	}
	h := s.h
	h.mu.Lock()
	if r := h.nodes[node.Name]; r != nil && r.inc == node.Incarnation {
		r.connected = false
	}
	h.mu.Unlock()
	h.signal()
}

// newIncarnationLocked forgets what belonged to r's earlier start.
func (h *Heal) newIncarnationLocked(r *nodeRec, inc uint64) {
	r.inc = inc
	r.heal, r.refused, r.started, r.settings = false, false, 0, Settings{}
	r.reach, r.reachSeq = nil, 0
}

// MemberEvent implements nodal.MemberWatcher.
func (s *service) MemberEvent(ev nodal.MemberEvent) {
	h := s.h
	m := ev.Member
	if m.Name == h.self {
		return
	}
	now := time.Now()
	h.mu.Lock()
	r := h.rec(m.Name)
	if m.GossipAddr != "" {
		r.gossip = m.GossipAddr
	}
	r.healTag = slices.Contains(m.Services, ServiceName)
	switch ev.Kind {
	case nodal.MemberJoined, nodal.MemberUpdated, nodal.MemberReplaced:
		if r.inc != m.Incarnation {
			h.newIncarnationLocked(r, m.Incarnation)
		}
		r.seen, r.member, r.left = true, true, false
	case nodal.MemberFailed:
		if r.inc == m.Incarnation {
			r.member = false
		}
	case nodal.MemberLeft:
		if r.inc == m.Incarnation {
			r.member, r.left, r.since = false, true, now
		}
	}
	h.mu.Unlock()
	h.signal()
}

// Stop implements nodal.ServiceStopper.
func (s *service) Stop(ctx context.Context) error { return s.h.Stop(ctx) }

// Paused reports whether this node's side lost a split under ActionPause,
// or this node was refused for settings that differ from the cluster's.
// Registries and groups consult it to refuse registrations and joins while
// it holds.
func (h *Heal) Paused() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pausedLocked()
}

func (h *Heal) pausedLocked() bool {
	return (h.st.decision != nil && !h.st.decision.Survive && h.cfg.Action == ActionPause) || h.selfRefusedLocked()
}

// selfRefusedLocked: some node older than this one has other settings.
func (h *Heal) selfRefusedLocked() bool {
	for _, r := range h.nodes {
		if r.refused && r.connected && (h.started > r.started || (h.started == r.started && h.self > r.name)) {
			return true
		}
	}
	return false
}

// HasMajority reports whether this node reaches more than half of the
// expected nodes, itself included.
func (h *Heal) HasMajority() bool {
	v := h.View()
	return 2*len(v.Reachable) > len(v.Expected)
}

// BadFrames counts heal frames from other nodes that could not be decoded.
func (h *Heal) BadFrames() uint64 { return h.badFrames.Load() }

// sortedKeys returns the keys of a set, sorted.
func sortedKeys(m map[string]bool) []string {
	return slices.Sorted(maps.Keys(m))
}

// errStopped wraps ErrStopped for a call cut short by Stop.
func errStopped(what string) error { return fmt.Errorf("%s: %w", what, ErrStopped) }
