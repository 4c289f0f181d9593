package p2p

import (
	"fmt"

	"github.com/hashicorp/memberlist"
)

// delegate adapts memberlist's callbacks to the Host. The callbacks come on
// memberlist's goroutines, with memberlist's locks held, and never block:
// membership changes update the member view and are queued for the
// membership worker (member.go); gossip payloads go to the GossipHandler
// (gossip.go), which must not block either.
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
	m := *d.h.meta.Load()
	if len(m) > limit {
		return nil
	}
	return m
}

// NotifyMsg implements memberlist.Delegate: a Broadcast from another member.
func (d *delegate) NotifyMsg(buf []byte) { d.h.notifyMsg(buf) }

// GetBroadcasts implements memberlist.Delegate: Broadcast's queue.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.h.broadcasts.GetBroadcasts(overhead, limit)
}

// LocalState implements memberlist.Delegate: the GossipHandler's state,
// framed with our name and incarnation.
func (d *delegate) LocalState(join bool) []byte { return d.h.localState(join) }

// MergeRemoteState implements memberlist.Delegate.
func (d *delegate) MergeRemoteState(buf []byte, join bool) { d.h.mergeRemoteState(buf, join) }

// NotifyJoin implements memberlist.EventDelegate.
func (d *delegate) NotifyJoin(n *memberlist.Node) { d.h.observe(n, false) }

// NotifyUpdate implements memberlist.EventDelegate.
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.h.observe(n, false) }

// NotifyLeave implements memberlist.EventDelegate.
func (d *delegate) NotifyLeave(n *memberlist.Node) { d.h.observe(n, true) }

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
	local := *h.members.view.Load()
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
