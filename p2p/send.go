package p2p

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Send queues frame for node, connecting first if needed (auto-connect).
// It blocks only while node's bounded queue is full, bounded by ctx. The
// frame is copied; the caller may reuse it. Frames to one node are
// delivered in order.
func (h *Host) Send(ctx context.Context, node string, frame []byte) error {
	if len(frame) > h.cfg.Advanced.MaxFrameSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, len(frame), h.cfg.Advanced.MaxFrameSize)
	}
	c := h.lookup(node)
	if c == nil {
		var err error
		if c, err = h.connect(ctx, node); err != nil {
			return err
		}
	}
	return c.enqueue(ctx, frameData, frame, true)
}

// TrySend queues frame for an already connected node without blocking:
// ErrQueueFull when its queue is full, ErrNoConnection when not connected.
func (h *Host) TrySend(node string, frame []byte) error {
	if len(frame) > h.cfg.Advanced.MaxFrameSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, len(frame), h.cfg.Advanced.MaxFrameSize)
	}
	c := h.lookup(node)
	if c == nil {
		return &PeerError{Node: node, Err: ErrNoConnection}
	}
	return c.enqueue(context.Background(), frameData, frame, false)
}

// Connect makes sure a connection to node exists (member or a node met before).
func (h *Host) Connect(ctx context.Context, node string) error {
	if h.lookup(node) != nil {
		return nil
	}
	_, err := h.connect(ctx, node)
	return err
}

// Disconnect closes the connection to node; both sides see ErrDisconnected.
// The full mesh does not redial it (it redials connections that were lost,
// not closed): a later Connect or Reach connects again, as does a change
// in node's membership (it rejoins, or restarts).
func (h *Host) Disconnect(node string) error {
	c := h.lookup(node)
	if c == nil {
		return &PeerError{Node: node, Err: ErrNoConnection}
	}
	c.shutdown(byeDisconnected, ErrDisconnected)
	return nil
}

// Ping measures a round trip over node's frame stream.
func (h *Host) Ping(ctx context.Context, node string) (time.Duration, error) {
	c := h.lookup(node)
	if c == nil {
		var err error
		if c, err = h.connect(ctx, node); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	if err := c.ping(ctx); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// Peers returns the connected nodes (visible and hidden), sorted by name.
func (h *Host) Peers() []Peer {
	t := *h.table.Load()
	out := make([]Peer, 0, len(t))
	for _, name := range slices.Sorted(maps.Keys(t)) {
		p := t[name].peer
		p.Addrs = slices.Clone(p.Addrs)
		out = append(out, p)
	}
	return out
}

// Reach starts connecting to node in the background, if it is a live
// member of the cluster, and reports the outcome to done: nil once
// connected (the handler's NodeUp for the connection may come just before
// or just after), else why not. ctx bounds the attempt (its deadline or
// cancellation ends it with an error wrapping ctx.Err(), and ErrTimeout
// for a deadline); so does Stop (ErrStopped).
//
// Reach returns false, and never calls done, when node is not a live
// member (a hidden node or a node met only through ConnectAddr is not one)
// or the host is stopping. When it returns true, done is called exactly
// once, on a host goroutine; it must not block.
func (h *Host) Reach(ctx context.Context, node string, done func(error)) bool {
	m := h.member(node)
	if m == nil || node == h.cfg.Name {
		return false
	}
	ai := m.addrInfo()
	// Start the worker under h.mu: Stop sets stopping under it before it
	// stops connStopper, so the worker is never started into a stopping
	// stopper (whose Stop holds the stopper's lock while it waits) and
	// done is always called.
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopping {
		return false
	}
	h.connStopper.RunWorker(func() {
		_, err := h.dial(ctx, ai, node)
		done(err)
	})
	return true
}

// Stats returns counters per peer name (sorted) and their total.
func (h *Host) Stats() Stats {
	h.mu.Lock()
	names := slices.Sorted(maps.Keys(h.stats))
	ctrs := make([]*peerCounters, len(names))
	for i, n := range names {
		ctrs[i] = h.stats[n]
	}
	h.mu.Unlock()
	var s Stats
	for i, c := range ctrs {
		p := PeerStats{
			Name:         names[i],
			FramesIn:     c.framesIn.Load(),
			BytesIn:      c.bytesIn.Load(),
			FramesOut:    c.framesOut.Load(),
			BytesOut:     c.bytesOut.Load(),
			Dropped:      c.dropped.Load(),
			DecodeErrors: c.decodeErrors.Load(),
		}
		s.Peers = append(s.Peers, p)
		s.Total.FramesIn += p.FramesIn
		s.Total.BytesIn += p.BytesIn
		s.Total.FramesOut += p.FramesOut
		s.Total.BytesOut += p.BytesOut
		s.Total.Dropped += p.Dropped
		s.Total.DecodeErrors += p.DecodeErrors
	}
	s.Guard = GuardStats{
		RefusedPerSource:       h.gctr.refusedPerSource.Load(),
		RefusedTotal:           h.gctr.refusedTotal.Load(),
		HandshakeTimeouts:      h.gctr.timeouts.Load(),
		HandshakeFailures:      h.gctr.handshakeFailures.Load(),
		StreamFloods:           h.gctr.streamFloods.Load(),
		GossipStreams:          h.sguard.open(),
		GossipRefusedPerSource: h.gctr.gossipRefusedPerSource.Load(),
		GossipRefusedTotal:     h.gctr.gossipRefusedTotal.Load(),
	}
	if h.guard != nil {
		s.Guard.PendingConns = h.guard.count()
	}
	return s
}
