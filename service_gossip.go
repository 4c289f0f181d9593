package nodal

import (
	"encoding/binary"
	"fmt"

	"github.com/nodal-go/nodal/internal/wire"
	"github.com/nodal-go/nodal/p2p"
)

// GossipService is a Service that also rides on memberlist's gossip, for
// digests and small notices that should reach every member without a
// connection (bulk data goes with SendService).
//
// LocalState returns this node's state for a push/pull, which memberlist
// runs periodically with one random member (every 30 s with the LAN
// profile) and on join; every member thereby merges every other member's
// state eventually, even after lost packets. MergeRemoteState receives
// another member's state with its sender. HandleBroadcast receives another
// member's BroadcastService message. All of this node's GossipServices
// share one push/pull state of at most MaxGossipState bytes.
//
// Concurrency: the three methods run on memberlist's goroutines, possibly
// concurrently with each other and with the Service methods: they must be
// thread-safe and must not block or call back into the node's membership
// (hand work to the service's own goroutine). The byte slices passed in
// belong to the service. A hidden node does not gossip.
type GossipService interface {
	Service
	LocalState(join bool) []byte
	MergeRemoteState(from NodeRef, state []byte, join bool)
	HandleBroadcast(from NodeRef, msg []byte)
}

// MaxGossipState bounds the push/pull state of all of a node's
// GossipServices together, names and framing included.
const MaxGossipState = p2p.MaxGossipStateSize

// MaxServiceBroadcast bounds one BroadcastService message together with its
// service name (it rides in a gossip packet).
const MaxServiceBroadcast = p2p.MaxBroadcastSize - 2

// ErrBroadcastTooLarge means a BroadcastService message is above
// MaxServiceBroadcast. It is p2p's sentinel, so errors.Is works for both.
var ErrBroadcastTooLarge = p2p.ErrBroadcastTooLarge

// BroadcastService spreads msg to the service attached as name on every
// other member, piggy-backed on memberlist's gossip (a few retransmissions
// per member, no delivery guarantee: use push/pull state for what must
// arrive). A newer broadcast with the same name and key replaces one that
// is still queued. msg with the name is at most MaxServiceBroadcast bytes.
func (n *Node) BroadcastService(name, key string, msg []byte) error {
	if err := validateServiceName(name); err != nil {
		return fmt.Errorf("%w: bad service name %q", ErrBadOption, name)
	}
	d, err := n.distributed()
	if err != nil {
		return err
	}
	if !d.waitHost() {
		return ErrStopped
	}
	if len(name)+1+len(msg) > MaxServiceBroadcast {
		return fmt.Errorf("nodal: broadcast of %q: %w: %d bytes, limit %d", name, ErrBroadcastTooLarge, len(name)+1+len(msg), MaxServiceBroadcast)
	}
	b := appendString(make([]byte, 0, 1+len(name)+len(msg)), name)
	if err := d.host.Broadcast(name+"/"+key, append(b, msg...)); err != nil {
		return fmt.Errorf("nodal: broadcast of %q: %w", name, err)
	}
	return nil
}

// LocalState implements p2p.GossipHandler: the states of this node's
// GossipServices, each framed with its service name.
func (d *dist) LocalState(join bool) []byte {
	t := d.n.svc.table.Load()
	var b []byte
	for _, name := range t.order {
		g, ok := t.byName[name].(GossipService)
		if !ok {
			continue
		}
		st := g.LocalState(join)
		if len(b)+len(name)+len(st)+2*binary.MaxVarintLen64 > MaxGossipState {
			log.Warnw("gossip state over its limit; service state left out of this push/pull",
				"service", name, "bytes", len(st), "limit", MaxGossipState)
			continue
		}
		b = appendString(b, name)
		b = wire.AppendBytes(b, st)
	}
	return b
}

// MergeRemoteState implements p2p.GossipHandler.
func (d *dist) MergeRemoteState(from string, incarnation uint64, state []byte, join bool) {
	ref := NodeRef{Name: from, Incarnation: incarnation}
	err := decodeGossipState(state, func(name string, st []byte) {
		if g, ok := d.n.svc.get(name).(GossipService); ok {
			g.MergeRemoteState(ref, st, join)
			return
		}
		d.n.svc.countUnknown(ref, name)
	})
	if err != nil {
		d.decodeErrors.Add(1)
		log.Warnw("dropped undecodable gossip state", "from", from, "bytes", len(state), "error", err)
	}
}

// NotifyMsg implements p2p.GossipHandler: a BroadcastService message.
func (d *dist) NotifyMsg(from string, incarnation uint64, msg []byte) {
	ref := NodeRef{Name: from, Incarnation: incarnation}
	dec := newDecoder(msg, true)
	name := dec.Str()
	if dec.Err() != nil {
		d.decodeErrors.Add(1)
		log.Warnw("dropped undecodable broadcast", "from", from, "bytes", len(msg), "error", dec.err())
		return
	}
	if g, ok := d.n.svc.get(name).(GossipService); ok {
		g.HandleBroadcast(ref, msg[dec.Offset():len(msg):len(msg)])
		return
	}
	d.n.svc.countUnknown(ref, name)
}

// decodeGossipState calls f for each (service name, state) of a LocalState.
// It never panics and allocates nothing beyond the names.
func decodeGossipState(b []byte, f func(name string, state []byte)) error {
	dec := newDecoder(b, true)
	for dec.Err() == nil && dec.Len() > 0 {
		name := dec.Str()
		st := dec.Take(dec.Length())
		if dec.Err() == nil {
			f(name, st) // Take clips its capacity
		}
	}
	return dec.err()
}

var _ p2p.GossipHandler = (*dist)(nil)
