package p2p

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/libp2p/go-libp2p/core/peer"
)

// delegate adapts memberlist's callbacks to the Host. The callbacks come on
// memberlist's goroutines and never block: membership changes are handed to
// the membership worker through h.pending (one slot per node, last wins).
type delegate struct{ h *Host }

var (
	_ memberlist.Delegate         = (*delegate)(nil)
	_ memberlist.EventDelegate    = (*delegate)(nil)
	_ memberlist.ConflictDelegate = (*delegate)(nil)
	_ memberlist.MergeDelegate    = (*delegate)(nil)
	_ memberlist.AliveDelegate    = (*delegate)(nil)
)

// NodeMeta implements memberlist.Delegate.
func (d *delegate) NodeMeta(limit int) []byte {
	if len(d.h.meta) > limit {
		return nil
	}
	return d.h.meta
}

// NotifyMsg implements memberlist.Delegate (no user messages on gossip).
func (d *delegate) NotifyMsg([]byte) {}

// GetBroadcasts implements memberlist.Delegate.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState implements memberlist.Delegate.
func (d *delegate) LocalState(join bool) []byte { return nil }

// MergeRemoteState implements memberlist.Delegate.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {}

type memberEventKind int

const (
	evAlive memberEventKind = iota
	evGone
	evKick // a connection to a member broke: reconnect if still alive
)

type memberEvent struct {
	kind  memberEventKind
	meta  *nodeMeta
	state memberlist.NodeStateType
}

func (d *delegate) push(n *memberlist.Node, kind memberEventKind) {
	if n.Name == d.h.cfg.Name {
		return
	}
	meta, err := decodeMeta(n.Meta)
	if err != nil {
		log.Warnw("ignoring member with bad meta", "node", n.Name, "err", err.Error())
		return
	}
	h := d.h
	h.evMu.Lock()
	// memberlist calls us with its lock held; the *Node must not be read
	// later (memberlist mutates it), so copy what we need now.
	if kind == evGone {
		delete(h.view, n.Name)
		delete(h.viewMeta, n.Name)
	} else {
		h.viewMeta[n.Name] = meta
		h.view[n.Name] = Member{
			Name:        n.Name,
			Incarnation: meta.Incarnation,
			ID:          meta.ID,
			Addrs:       addrStrings(meta.Addrs),
			GossipAddr:  n.Address(),
			State:       MemberAlive,
		}
	}
	h.pending[n.Name] = memberEvent{kind: kind, meta: meta, state: n.State}
	h.evMu.Unlock()
	select {
	case h.evWake <- struct{}{}:
	default:
	}
}

// NotifyJoin implements memberlist.EventDelegate.
func (d *delegate) NotifyJoin(n *memberlist.Node) { d.push(n, evAlive) }

// NotifyUpdate implements memberlist.EventDelegate.
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.push(n, evAlive) }

// NotifyLeave implements memberlist.EventDelegate.
func (d *delegate) NotifyLeave(n *memberlist.Node) { d.push(n, evGone) }

// NotifyConflict implements memberlist.ConflictDelegate: two nodes gossip
// with one name. memberlist keeps the existing one; we say so.
func (d *delegate) NotifyConflict(existing, other *memberlist.Node) {
	log.Warnw("name in use: refused a second node named "+other.Name,
		"node", other.Name, "existing", existing.Address(), "other", other.Address())
}

// NotifyAlive implements memberlist.AliveDelegate: nodes with a bad name,
// the other name mode or unreadable meta are kept out of the membership.
func (d *delegate) NotifyAlive(n *memberlist.Node) error {
	if n.Name == d.h.cfg.Name {
		return nil
	}
	if err := checkMode(d.h.name, n.Name); err != nil {
		log.Warnw("refused member "+n.Name, "node", n.Name, "err", err.Error())
		return err
	}
	if _, err := decodeMeta(n.Meta); err != nil {
		return err
	}
	return nil
}

// NotifyMerge implements memberlist.MergeDelegate: a push/pull (join)
// is refused when it would mix name modes or bring a second live node
// with a name already in use (ours included).
func (d *delegate) NotifyMerge(peers []*memberlist.Node) error {
	h := d.h
	err := h.checkMerge(peers)
	if err != nil {
		h.mu.Lock()
		h.mergeErr = err
		h.mu.Unlock()
		log.Warnw("refused membership merge", "err", err.Error())
	}
	return err
}

func (h *Host) checkMerge(peers []*memberlist.Node) error {
	h.evMu.Lock()
	local := maps.Clone(h.view)
	h.evMu.Unlock()
	for _, p := range peers {
		if err := checkMode(h.name, p.Name); err != nil {
			return err
		}
		live := p.State == memberlist.StateAlive || p.State == memberlist.StateSuspect
		if !live {
			continue
		}
		meta, err := decodeMeta(p.Meta)
		if err != nil {
			return fmt.Errorf("%w: member %s", err, p.Name)
		}
		if p.Name == h.cfg.Name {
			if meta.Incarnation != h.self.Incarnation {
				if p.Address() == h.gossipAddr {
					// Our previous start, not yet declared dead: we hold
					// its gossip port now, so it is gone (a crash and a
					// quick restart, as under a process supervisor).
					log.Infow("replacing this node's previous start", "node", p.Name, "old_incarnation", meta.Incarnation)
					continue
				}
				return fmt.Errorf("%w: %s is this node's name and another live node (incarnation %d, gossip %s) has it", ErrNameInUse, p.Name, meta.Incarnation, p.Address())
			}
			continue
		}
		if l, ok := local[p.Name]; ok && l.Incarnation != meta.Incarnation && l.GossipAddr != p.Address() {
			// (At the same gossip address it is a restart of that node:
			// its earlier start cannot hold the port any more.)
			return fmt.Errorf("%w: %s is already a live member (incarnation %d, gossip %s)", ErrNameInUse, p.Name, l.Incarnation, l.GossipAddr)
		}
	}
	return nil
}

// membershipLoop applies membership changes: it records members, starts
// mesh dialers for new ones and closes connections of nodes that left or
// were declared dead.
func (h *Host) membershipLoop() {
	for {
		select {
		case <-h.evWake:
		case <-h.stopper.ShouldStop():
			return
		}
		h.evMu.Lock()
		batch := h.pending
		h.pending = make(map[string]memberEvent)
		h.evMu.Unlock()
		for _, name := range slices.Sorted(maps.Keys(batch)) {
			h.applyMemberEvent(name, batch[name])
		}
	}
}

// kickMesh asks the membership worker to reconnect name if it is a live
// member. It never overrides a pending membership change.
func (h *Host) kickMesh(name string) {
	h.evMu.Lock()
	if _, ok := h.pending[name]; !ok {
		h.pending[name] = memberEvent{kind: evKick}
	}
	h.evMu.Unlock()
	select {
	case h.evWake <- struct{}{}:
	default:
	}
}

func (h *Host) applyMemberEvent(name string, ev memberEvent) {
	h.mu.Lock()
	if h.stopping {
		h.mu.Unlock()
		return
	}
	if ev.kind == evKick {
		m := h.members[name]
		if m == nil || m.state != memberlist.StateAlive {
			h.mu.Unlock()
			return
		}
		ev = memberEvent{kind: evAlive, meta: m.meta, state: m.state}
	}
	if ev.kind == evGone {
		if m := h.members[name]; m != nil && m.meta.Incarnation == ev.meta.Incarnation {
			delete(h.members, name)
		}
		c := h.conns[name]
		h.mu.Unlock()
		if c != nil && c.peer.ID == ev.meta.ID {
			reason := ErrFailureDetected
			if ev.state == memberlist.StateLeft {
				reason = ErrLeft
			}
			log.Infow("member gone, closing its connection", "node", name, "reason", reason.Error())
			c.close(reason)
		}
		return
	}
	h.members[name] = &memberInfo{meta: ev.meta, state: ev.state}
	if c := h.conns[name]; (c != nil && c.peer.ID == ev.meta.ID) || h.meshDial[name] {
		h.mu.Unlock()
		return
	}
	h.meshDial[name] = true
	h.mu.Unlock()
	h.connStopper.RunWorker(func() { h.meshDialer(name) })
}

// meshDialer keeps dialing a member until connected, gone or stopping
// (Erlang's full mesh). The node with the lower name dials first; the other
// waits a little so that both rarely dial at once.
func (h *Host) meshDialer(name string) {
	defer func() {
		h.mu.Lock()
		delete(h.meshDial, name)
		h.mu.Unlock()
	}()
	wait := time.Duration(0)
	if h.cfg.Name > name {
		wait = time.Second
	}
	backoff := 100 * time.Millisecond
	for {
		if wait > 0 {
			select {
			case <-time.After(wait):
			case <-h.connStopper.ShouldStop():
				return
			}
		}
		h.mu.Lock()
		m := h.members[name]
		c := h.conns[name]
		h.mu.Unlock()
		if m == nil || (c != nil && c.peer.ID == m.meta.ID) {
			return
		}
		if c == nil {
			_, err := h.dial(h.ctx, h.addrInfoFromMeta(m), name)
			if err == nil {
				return
			}
			log.Debugw("mesh dial failed", "node", name, "err", err.Error())
		}
		wait = backoff
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (h *Host) addrInfoFromMeta(m *memberInfo) peer.AddrInfo {
	return peer.AddrInfo{ID: m.meta.ID, Addrs: m.meta.Addrs}
}
