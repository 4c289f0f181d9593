package replica

import (
	"context"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/crdt"
)

// service is the Replica's adapter to the node's service hook, so the
// hook's methods stay off Replica's API.
type service[K comparable, V any] struct{ r *Replica[K, V] }

var (
	_ nodal.GossipService  = (*service[string, string])(nil)
	_ nodal.MemberWatcher  = (*service[string, string])(nil)
	_ nodal.ServiceStopper = (*service[string, string])(nil)
)

// enqueue hands an event to the engine. Frames beyond MaxQueueBytes are
// dropped (the next digest exchange repairs them); node and member events
// are always queued.
func (r *Replica[K, V]) enqueue(ev event[K, V]) {
	if r.stopped.Load() {
		return
	}
	r.qmu.Lock()
	if ev.kind == evFrame && r.queueBytes+ev.size > r.cfg.MaxQueueBytes {
		r.qmu.Unlock()
		r.st.queueDrops.Add(1)
		return
	}
	r.queue = append(r.queue, ev)
	r.queueBytes += ev.size
	r.queued.Store(true)
	r.qmu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// HandleFrame decodes a frame on the caller's goroutine and queues it.
func (s *service[K, V]) HandleFrame(from nodal.NodeRef, data []byte) {
	r := s.r
	r.st.bytesRecv.Add(uint64(len(data)))
	r.traffic.of(from.Name).bytes.Add(uint64(len(data)))
	var into *crdt.ORMap[K, V] // a push decodes into a recycled delta
	if len(data) > 0 && data[0] == kindDelta {
		into = r.deltas.Get().(*crdt.ORMap[K, V])
	}
	f, err := decodeFrame(data, r.cfg.Keys, r.cfg.Values, into)
	if err != nil {
		if into != nil {
			r.deltas.Put(into) // emptied by the failed decode
		}
		r.st.badFrames.Add(1)
		log.Warnw("dropped a malformed replica frame", "service", r.cfg.Service, "from", from.String(), "bytes", len(data), "err", err)
		return
	}
	if f.delta != nil && r.cfg.Check != nil {
		if err := r.check(f.delta); err != nil {
			r.recycleIn(f.delta)
			r.st.refused.Add(1)
			log.Warnw("dropped a replica delta with a refused entry", "service", r.cfg.Service, "from", from.String(), "err", err)
			return
		}
	}
	switch f.kind {
	case kindDigest, kindAsk:
		r.st.digestsRecv.Add(1)
	case kindSyncReq, kindSyncDigest:
		if f.flags == withDigest {
			r.st.digestsRecv.Add(1)
		}
	}
	r.enqueue(event[K, V]{kind: evFrame, from: from, frame: f, size: len(data)})
}

// recycleIn keeps d, a decoded push no longer used, emptied for the next
// push to decode into (unless it is larger than a batch).
func (r *Replica[K, V]) recycleIn(d *crdt.ORMap[K, V]) {
	if d.LiveLen() <= 2*maxBatch {
		d.Reset()
		r.deltas.Put(d)
	}
}

// check returns the first error Config.Check gives for an entry of d.
func (r *Replica[K, V]) check(d *crdt.ORMap[K, V]) error {
	for k, sib := range d.Live() {
		if err := r.cfg.Check(k, sib); err != nil {
			return err
		}
	}
	return nil
}

// NodeUp implements nodal.Service.
func (s *service[K, V]) NodeUp(node nodal.NodeRef) {
	if !node.Hidden {
		s.r.traffic.reset(node.Name)
		s.r.enqueue(event[K, V]{kind: evUp, from: node})
	}
}

// NodeDown implements nodal.Service.
func (s *service[K, V]) NodeDown(node nodal.NodeRef, _ error) {
	if !node.Hidden {
		s.r.enqueue(event[K, V]{kind: evDown, from: node})
	}
}

// MemberEvent implements nodal.MemberWatcher.
func (s *service[K, V]) MemberEvent(ev nodal.MemberEvent) {
	s.r.enqueue(event[K, V]{kind: evMember, member: ev})
}

// LocalState implements nodal.GossipService: this replica's digest.
func (s *service[K, V]) LocalState(bool) []byte { return *s.r.gossip.Load() }

// MergeRemoteState implements nodal.GossipService: a peer's digest.
func (s *service[K, V]) MergeRemoteState(from nodal.NodeRef, state []byte, _ bool) {
	r := s.r
	r.st.bytesRecv.Add(uint64(len(state)))
	r.traffic.of(from.Name).bytes.Add(uint64(len(state)))
	g, err := decodeGossip(state)
	if err != nil {
		r.st.badFrames.Add(1)
		log.Warnw("dropped a malformed replica gossip state", "service", r.cfg.Service, "from", from.String(), "err", err)
		return
	}
	r.st.digestsRecv.Add(1)
	r.enqueue(event[K, V]{kind: evFrame, from: from, frame: frame[K, V]{kind: kindGossip, digest: g}, size: len(state)})
}

// HandleBroadcast implements nodal.GossipService; the engine sends no
// broadcasts, so one is counted as a bad frame.
func (s *service[K, V]) HandleBroadcast(nodal.NodeRef, []byte) { s.r.st.badFrames.Add(1) }

// Stop implements nodal.ServiceStopper.
func (s *service[K, V]) Stop(ctx context.Context) error { return s.r.Stop(ctx) }
