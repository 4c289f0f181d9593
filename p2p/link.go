package p2p

import (
	"context"
	"fmt"
)

// Link is a handle on the connection to one node, for a caller that sends
// it many frames: Send skips the lookup by node name that Host.Send makes
// for each frame. A Link outlives its connection harmlessly: once the
// connection is closed, Send fails with the connection's error, and the
// caller looks the node up again (Host.Link or Host.Send), as after any
// failed send.
type Link struct {
	c *conn
}

// Link returns a handle on the connection to node, and false when node is
// not connected (Link never connects).
func (h *Host) Link(node string) (Link, bool) {
	c := h.lookup(node)
	return Link{c: c}, c != nil
}

// Peer is the node at the other end of the link's connection, as its
// handshake told: a frame sent on the link reaches that incarnation or none.
func (l Link) Peer() Peer { return l.c.peer }

// Send queues frame on the link's connection, as Host.Send does for its
// node: it blocks only while the connection's bounded queue is full,
// bounded by ctx, and copies frame. It fails when the connection is
// closed, even if the node is connected again by another connection.
func (l Link) Send(ctx context.Context, frame []byte) error {
	if max := l.c.h.cfg.Advanced.MaxFrameSize; len(frame) > max {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, len(frame), max)
	}
	return l.c.enqueue(ctx, frameData, frame, true)
}
