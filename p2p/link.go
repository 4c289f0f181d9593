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

// SendHead is Send for the frame head followed by body, where a stream of
// frames shares its head (a message frame's kind and pids): when the last
// data frame queued on the connection was SendHead's with the same head,
// the frame sent is short followed by body instead. The receiver, which
// gets the frames in the order they were queued, knows the head short
// stands for. head and body are copied; the size limit is the long
// frame's.
func (l Link) SendHead(ctx context.Context, head, short, body []byte) error {
	if max := l.c.h.cfg.Advanced.MaxFrameSize; len(head)+len(body) > max {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, len(head)+len(body), max)
	}
	return l.c.enqueueHead(ctx, frameData, head, short, body, true)
}
