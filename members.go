package nodal

import (
	"cmp"
	"slices"

	"github.com/nodal-go/nodal/p2p"
)

// Membership, as memberlist sees it, independent of connections: a member
// that fails or leaves while no connection to it is open is reported too.

// Reasons a node goes down or a member ends, usable with errors.Is on the
// reason of a NodeDown message, of Service.NodeDown and of a MemberEvent.
// They are the transport's own sentinels, so no caller needs to import p2p.
var (
	// ErrNodeLeft: the node left the cluster gracefully (it stopped).
	ErrNodeLeft = p2p.ErrLeft
	// ErrNodeFailed: failure detection declared the node dead (it crashed,
	// hangs, or is cut off by a partition).
	ErrNodeFailed = p2p.ErrFailureDetected
	// ErrNodeReplaced: a new start of the node (a new incarnation) holds
	// its name now; the old start is gone for good.
	ErrNodeReplaced = p2p.ErrReplaced
	// ErrConnectionClosed: the connection was closed or reset.
	ErrConnectionClosed = p2p.ErrConnClosed
	// ErrDisconnected: Disconnect was called on either side.
	ErrDisconnected = p2p.ErrDisconnected
	// ErrCookieMismatch: the other node does not share this node's cookie.
	ErrCookieMismatch = p2p.ErrCookieMismatch
)

// MemberState is a member's liveness as this node last saw it.
type MemberState int

// Member states. Failure detection has no observable suspect state here:
// memberlist keeps its suspicion to itself, so a member is alive from its
// join until its failure or leave is known.
const (
	MemberStateAlive  MemberState = MemberState(p2p.StateAlive)
	MemberStateFailed MemberState = MemberState(p2p.StateFailed)
	MemberStateLeft   MemberState = MemberState(p2p.StateLeft)
)

// String returns the state in words.
func (s MemberState) String() string { return p2p.MemberState(s).String() }

// Member is one node of the cluster's membership.
type Member struct {
	Name        string
	Incarnation uint64      // its start; new on every start
	State       MemberState // as this node last saw it
	ListenAddrs []string    // libp2p multiaddrs its processes' traffic uses
	GossipAddr  string      // memberlist "host:port": a seed for Join
	Services    []string    // the services attached on it, in attachment order
}

// Ref returns the member's NodeRef (members are never hidden).
func (m Member) Ref() NodeRef { return NodeRef{Name: m.Name, Incarnation: m.Incarnation} }

// MemberEventKind says what happened to a member.
type MemberEventKind int

// Member event kinds.
const (
	// MemberJoined: a node joined (or rejoined after it failed or left).
	MemberJoined MemberEventKind = MemberEventKind(p2p.MemberJoined)
	// MemberUpdated: a member changed its metadata (its services, say).
	MemberUpdated MemberEventKind = MemberEventKind(p2p.MemberUpdated)
	// MemberFailed: failure detection declared the member dead; Reason
	// wraps ErrNodeFailed.
	MemberFailed MemberEventKind = MemberEventKind(p2p.MemberFailed)
	// MemberLeft: the member left gracefully; Reason wraps ErrNodeLeft.
	MemberLeft MemberEventKind = MemberEventKind(p2p.MemberLeft)
	// MemberReplaced: a new start of the node holds the name (a restart
	// faster than failure detection); Reason wraps ErrNodeReplaced and
	// OldIncarnation names the start that is gone.
	MemberReplaced MemberEventKind = MemberEventKind(p2p.MemberReplaced)
)

// String returns the kind in words.
func (k MemberEventKind) String() string { return p2p.MemberEventKind(k).String() }

// MemberEvent is one change of the membership as this node saw it.
type MemberEvent struct {
	Kind           MemberEventKind
	Member         Member // after the change (for Failed and Left: its last view)
	Reason         error  // why the start ended (Failed, Left, Replaced); nil otherwise
	OldIncarnation uint64 // MemberReplaced: the incarnation that is gone
}

// String describes the event in words, e.g. "b@host failed: p2p: failure detected".
func (e MemberEvent) String() string {
	return p2p.MemberEvent{Kind: p2p.MemberEventKind(e.Kind), Member: p2p.Member{Name: e.Member.Name, Incarnation: e.Member.Incarnation}, Reason: e.Reason, OldIncarnation: e.OldIncarnation}.String()
}

// MemberWatcher is a Service that is also told of membership changes,
// whether or not a connection to the member is open. MemberEvent is called
// one at a time, never concurrently with the service's NodeUp and NodeDown,
// and the events of one member arrive in the order this node saw them. A
// service attached late gets a MemberJoined for every current member first
// (a member joining at that very moment may be reported twice). Member
// events are not ordered with connection events: a node may be up before it
// is reported joined, or down after it is reported failed. It must not block.
type MemberWatcher interface {
	Service
	MemberEvent(ev MemberEvent)
}

// Members returns the cluster's members as this node sees them, sorted by
// name, without this node; nil on a local-only or hidden node.
func (n *Node) Members() []Member {
	d := n.dist
	if d == nil || !d.waitHost() {
		return nil
	}
	ms := d.host.Members()
	out := make([]Member, 0, len(ms))
	for _, m := range ms {
		if m.Name != n.name {
			out = append(out, memberOf(m))
		}
	}
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

func memberOf(m p2p.Member) Member {
	return Member{
		Name:        m.Name,
		Incarnation: m.Incarnation,
		State:       MemberState(m.State),
		ListenAddrs: slices.Clone(m.Addrs),
		GossipAddr:  m.GossipAddr,
		Services:    splitServiceNames(m.Tags[tagServices]),
	}
}

// MemberEvent implements p2p.MemberHandler: it tells every MemberWatcher.
func (d *dist) MemberEvent(ev p2p.MemberEvent) {
	e := MemberEvent{Kind: MemberEventKind(ev.Kind), Member: memberOf(ev.Member), Reason: ev.Reason, OldIncarnation: ev.OldIncarnation}
	log.Infow("member "+e.Kind.String(), "node", e.Member.Name, "incarnation", e.Member.Incarnation, "reason", e.Reason)
	d.n.svc.mu.Lock()
	defer d.n.svc.mu.Unlock()
	d.n.eachService(func(s Service) {
		if w, ok := s.(MemberWatcher); ok {
			w.MemberEvent(e)
		}
	})
}

var _ p2p.MemberHandler = (*dist)(nil)
