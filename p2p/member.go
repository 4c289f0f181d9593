package p2p

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/memberlist"
	"github.com/libp2p/go-libp2p/core/peer"
)

// MemberState is a member's liveness as this node last saw it.
type MemberState int

// Member states. memberlist v0.7 tells its delegates when a node joins,
// changes its meta, and is declared dead or gone, but never when it is
// suspected (the suspicion stays inside memberlist, and the Node.State it
// hands out is never filled in), so there is no suspect state: a member is
// alive from its join until its failure or leave is known.
const (
	// StateAlive is the state of every node Members lists.
	StateAlive MemberState = iota
	// StateFailed is a member memberlist declared dead (it stopped
	// answering probes, or it crashed). Only MemberEvent carries it.
	StateFailed
	// StateLeft is a member that left gracefully (Stop). Only MemberEvent
	// carries it.
	StateLeft
)

// String returns the state in words.
func (s MemberState) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateFailed:
		return "failed"
	case StateLeft:
		return "left"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// Member is one node of the membership.
type Member struct {
	Name        string
	Incarnation uint64 // its start (Config.Incarnation), new on every start
	ID          peer.ID
	Addrs       []string          // libp2p multiaddrs from its meta, sorted
	GossipAddr  string            // memberlist "host:port"
	State       MemberState       // as seen by this node
	Tags        map[string]string // its Config.Tags or last SetTags; nil when none
}

func (m Member) clone() Member {
	m.Addrs = slices.Clone(m.Addrs)
	m.Tags = maps.Clone(m.Tags)
	return m
}

// MemberEventKind says what happened to a member.
type MemberEventKind int

// Member event kinds.
const (
	// MemberJoined: a node joined the membership (or rejoined after it was
	// reported failed or left).
	MemberJoined MemberEventKind = iota + 1
	// MemberUpdated: a member changed its tags or addresses (same start).
	MemberUpdated
	// MemberFailed: memberlist declared the member dead. Reason wraps
	// ErrFailureDetected.
	MemberFailed
	// MemberLeft: the member left gracefully. Reason wraps ErrLeft.
	MemberLeft
	// MemberReplaced: the name is now held by a new start of the node (a
	// new incarnation) before its earlier start was reported failed, as
	// after a crash and a quick restart on the same gossip address.
	// Reason wraps ErrReplaced; OldIncarnation is the earlier start's.
	MemberReplaced
)

// String returns the kind in words.
func (k MemberEventKind) String() string {
	switch k {
	case MemberJoined:
		return "joined"
	case MemberUpdated:
		return "updated"
	case MemberFailed:
		return "failed"
	case MemberLeft:
		return "left"
	case MemberReplaced:
		return "replaced"
	}
	return fmt.Sprintf("member-event(%d)", int(k))
}

// MemberEvent is one change of the membership, as seen by this node.
type MemberEvent struct {
	Kind MemberEventKind
	// Member is the member after the change: for MemberFailed and
	// MemberLeft its last known view, with State StateFailed or
	// StateLeft.
	Member Member
	// Reason says why, for the kinds that end a member's start:
	// ErrFailureDetected, ErrLeft, ErrReplaced; nil otherwise.
	Reason error
	// OldIncarnation is the replaced start's incarnation (MemberReplaced only).
	OldIncarnation uint64
}

// String describes the event in words, e.g. "b@host failed: p2p: failure detected".
func (e MemberEvent) String() string {
	s := e.Member.Name + " " + e.Kind.String()
	if e.Kind == MemberReplaced {
		s += fmt.Sprintf(" (incarnation %d by %d)", e.OldIncarnation, e.Member.Incarnation)
	}
	if e.Reason != nil {
		s += ": " + e.Reason.Error()
	}
	return s
}

// MemberHandler is an optional interface of a Handler: a Handler that
// implements it is told of membership changes, whether or not a
// connection to the member is open (a member that fails while nobody is
// connected to it is reported too). Hidden nodes are never members and
// produce no member events; a hidden Host reports none.
//
// Concurrency contract: MemberEvent is called from one goroutine (the
// host's membership worker), never concurrently with itself, so the events
// of one member arrive in the order this node saw them (Joined, then any
// Updated, then Failed, Left or Replaced; after Failed or Left the name may
// join again). It must not block for long: it delays the membership's
// other work (reconnecting the mesh, closing connections of failed
// members). Member events are not ordered with the connection callbacks
// (NodeUp, Frame, NodeDown), which come on the connections' goroutines. It
// must not call Host.Stop.
//
// Latency: Joined, Updated and Replaced follow memberlist's gossip of the
// member's alive message (sub-second on a LAN); Failed follows memberlist's
// failure detection (about 5 s with ProfileLAN); Left follows the member's
// leave message. A member that stops says it is leaving in its meta before
// it leaves, so it is reported Left; a member whose leave announcement did
// not reach this node before its leave (rare) is reported Failed. A crash
// is never reported as Left. Events that memberlist produces faster than
// the handler takes them queue up to maxPendingMemberEvents; beyond that
// they are dropped and logged at Warn.
type MemberHandler interface {
	MemberEvent(ev MemberEvent)
}

// maxPendingMemberEvents bounds the member events waiting for the
// membership worker.
const maxPendingMemberEvents = 1 << 16

// memberRec is one other member as memberlist last reported it. Records
// are immutable once in the view.
type memberRec struct {
	Member
	meta *nodeMeta
}

func (r *memberRec) addrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: r.meta.ID, Addrs: r.meta.Addrs}
}

// memberChange is one membership change for the membership worker: the
// event to report (if any) and the connection work it implies.
type memberChange struct {
	ev   MemberEvent
	meta *nodeMeta
}

// membership is the Host's one member view: the other members as
// memberlist reports them, kept as a copy-on-write snapshot. memberlist's
// callbacks (the only writers) replace it under mu; every reader (Members,
// Reach, dialing, admission, the mesh, the merge check) loads it without a
// lock. mu also guards the queue of changes for the membership worker.
type membership struct {
	view atomic.Pointer[map[string]*memberRec]

	mu      sync.Mutex
	changes []memberChange      // in the order memberlist reported them
	kicks   map[string]struct{} // members whose connection broke: reconnect if still members
	// saidBye holds, by name, the incarnation of members that said a
	// graceful goodbye on a connection: their coming leave is Left even if
	// their leave announcement in meta never reached this node (memberlist
	// invalidates a queued alive message by the dead one that follows).
	saidBye map[string]uint64
	wake    chan struct{} // cap 1
	dropped uint64
}

func (m *membership) init() {
	v := map[string]*memberRec{}
	m.view.Store(&v)
	m.kicks = map[string]struct{}{}
	m.saidBye = map[string]uint64{}
	m.wake = make(chan struct{}, 1)
}

func (m *membership) signal() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// member returns the member named name, or nil.
func (h *Host) member(name string) *memberRec {
	return (*h.members.view.Load())[name]
}

// observe records what memberlist reports about n (gone: declared dead or
// left) in the view and queues the change for the membership worker. It
// runs on memberlist's goroutines with memberlist's lock held and never
// blocks; n must not be kept (memberlist mutates it).
func (h *Host) observe(n *memberlist.Node, gone bool) {
	if n.Name == h.cfg.Name {
		return
	}
	meta, err := decodeMeta(n.Meta)
	if err != nil {
		log.Warnw("ignoring member with bad meta", "node", n.Name, "err", err.Error())
		return
	}
	if meta.Hidden {
		return // never a member (a hidden node runs no memberlist)
	}
	rec := &memberRec{Member: Member{
		Name:        n.Name,
		Incarnation: meta.Incarnation,
		ID:          meta.ID,
		Addrs:       addrStrings(meta.Addrs),
		GossipAddr:  n.Address(),
		State:       StateAlive,
		Tags:        meta.Tags,
	}, meta: meta}
	ms := &h.members
	ms.mu.Lock()
	defer ms.mu.Unlock()
	old := *ms.view.Load()
	prev := old[n.Name]
	next := maps.Clone(old)
	var ch memberChange
	switch {
	case gone:
		if prev == nil {
			return
		}
		delete(next, n.Name)
		rec.State, ch.ev.Kind, ch.ev.Reason = StateFailed, MemberFailed, ErrFailureDetected
		bye, ok := ms.saidBye[n.Name]
		delete(ms.saidBye, n.Name)
		if meta.Leaving || (ok && bye == meta.Incarnation) {
			rec.State, ch.ev.Kind, ch.ev.Reason = StateLeft, MemberLeft, ErrLeft
		}
	case prev == nil:
		next[n.Name] = rec
		ch.ev.Kind = MemberJoined
	case prev.Incarnation != meta.Incarnation:
		next[n.Name] = rec
		ch.ev.Kind, ch.ev.Reason, ch.ev.OldIncarnation = MemberReplaced, ErrReplaced, prev.Incarnation
	default:
		next[n.Name] = rec
		if maps.Equal(prev.Tags, rec.Tags) && slices.Equal(prev.Addrs, rec.Addrs) && prev.GossipAddr == rec.GossipAddr {
			ch.ev.Kind = 0 // nothing the layer above sees changed (e.g. the leave announcement)
		} else {
			ch.ev.Kind = MemberUpdated
		}
	}
	ms.view.Store(&next)
	ch.ev.Member, ch.meta = rec.Member, meta
	if len(ms.changes) >= maxPendingMemberEvents {
		ms.dropped++
		log.Warnw("member event dropped: the handler is too slow", "node", n.Name, "event", ch.ev.Kind.String(), "dropped", ms.dropped)
		// The view is current; only the report is lost. Connection work
		// still happens through a kick.
		ms.kicks[n.Name] = struct{}{}
	} else {
		ms.changes = append(ms.changes, ch)
	}
	ms.signal()
}

// noteBye records that the start inc of name said a graceful goodbye on
// a connection (its leave is then Left, whatever memberlist's gossip
// brought). Only members are recorded, so the table stays bounded.
func (h *Host) noteBye(name string, inc uint64) {
	ms := &h.members
	if _, member := (*ms.view.Load())[name]; !member {
		return
	}
	ms.mu.Lock()
	ms.saidBye[name] = inc
	ms.mu.Unlock()
}

// kickMesh asks the membership worker to reconnect name if it is still a
// member.
func (h *Host) kickMesh(name string) {
	ms := &h.members
	ms.mu.Lock()
	ms.kicks[name] = struct{}{}
	ms.mu.Unlock()
	ms.signal()
}

// membershipLoop applies membership changes in order: it reports them to
// the MemberHandler, starts mesh dialers for new members and closes
// connections of members that failed or left.
func (h *Host) membershipLoop() {
	ms := &h.members
	for {
		select {
		case <-ms.wake:
		case <-h.stopper.ShouldStop():
			return
		}
		ms.mu.Lock()
		changes, kicks := ms.changes, ms.kicks
		ms.changes, ms.kicks = nil, map[string]struct{}{}
		ms.mu.Unlock()
		for _, ch := range changes {
			if h.isStopping() {
				return
			}
			h.applyChange(ch)
		}
		for _, name := range slices.Sorted(maps.Keys(kicks)) {
			h.ensureMesh(name)
		}
	}
}

func (h *Host) applyChange(ch memberChange) {
	name := ch.ev.Member.Name
	switch ch.ev.Kind {
	case MemberFailed, MemberLeft:
		h.mu.Lock()
		c := h.conns[name]
		h.mu.Unlock()
		if c != nil && c.peer.ID == ch.meta.ID {
			log.Infow("member gone, closing its connection", "node", name, "reason", ch.ev.Reason.Error())
			c.close(ch.ev.Reason)
		}
	default:
		h.ensureMesh(name)
	}
	if ch.ev.Kind != 0 && h.memberH != nil {
		h.memberH.MemberEvent(ch.ev)
	}
}

// Join joins the membership through any of seeds (gossip "host:port").
// A seed's host may be a DNS name: it is looked up now, on every Join
// (Config.Advanced.Resolver), and every address it resolves to is tried.
// ctx bounds the lookups and the wait; a refusal (cookie, name in use,
// name mode) is an error that says so.
func (h *Host) Join(ctx context.Context, seeds []string) error {
	if h.ml == nil {
		return fmt.Errorf("%w: a hidden node does not join the membership", ErrInvalidConfig)
	}
	names := seeds
	seeds, err := resolveSeeds(ctx, h.cfg.Advanced.Resolver, seeds)
	if err != nil {
		return fmt.Errorf("%w: join %s: %w", ErrNoConnection, strings.Join(names, ","), err)
	}
	type result struct {
		n   int
		err error
	}
	res := make(chan result, 1)
	// The worker starts under the host lock, never into a stopping stopper
	// (Stop sets stopping under the lock before it stops the stopper).
	h.mu.Lock()
	if h.stopping {
		h.mu.Unlock()
		return ErrStopped
	}
	h.mergeErr = nil
	h.stopper.RunWorker(func() {
		n, err := h.ml.Join(seeds)
		res <- result{n, err}
	})
	h.mu.Unlock()
	var r result
	select {
	case r = <-res:
	case <-ctx.Done():
		return fmt.Errorf("p2p: join %s: %w", strings.Join(seeds, ","), ctxErr(ctx))
	case <-h.stopper.ShouldStop():
		return ErrStopped
	}
	h.mu.Lock()
	merr := h.mergeErr
	h.mu.Unlock()
	if merr != nil {
		return fmt.Errorf("p2p: join %s refused: %w", strings.Join(seeds, ","), merr)
	}
	if r.n > 0 {
		return nil
	}
	if r.err != nil && strings.Contains(strings.ToLower(r.err.Error()), "no installed keys could decrypt") {
		log.Warnw("cookie mismatch from gossip seed "+strings.Join(seeds, ","), "seeds", seeds)
		return &PeerError{Node: strings.Join(seeds, ","), Err: fmt.Errorf("%w: gossip could not be authenticated", ErrCookieMismatch)}
	}
	return fmt.Errorf("%w: join %s: %v", ErrNoConnection, strings.Join(seeds, ","), r.err)
}

// Members returns the membership (self included), sorted by name: every
// node memberlist counts as a member, with State StateAlive. Members that
// failed or left are gone from it (MemberHandler hears of them). Hidden
// nodes are never members; a hidden node has none.
func (h *Host) Members() []Member {
	if h.ml == nil {
		return nil
	}
	view := *h.members.view.Load()
	out := make([]Member, 0, len(view)+1)
	for _, r := range view {
		out = append(out, r.Member.clone())
	}
	h.metaMu.Lock()
	tags := maps.Clone(h.tags)
	h.metaMu.Unlock()
	out = append(out, Member{
		Name:        h.self.Name,
		Incarnation: h.self.Incarnation,
		ID:          h.self.ID,
		Addrs:       slices.Clone(h.self.Addrs),
		GossipAddr:  h.gossipAddr,
		State:       StateAlive,
		Tags:        tags,
	})
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}
