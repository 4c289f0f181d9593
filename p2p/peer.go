package p2p

import "github.com/libp2p/go-libp2p/core/peer"

// Peer describes a connected node, as seen in events and Peers.
type Peer struct {
	Name        string   // node name "a@host"
	Incarnation uint64   // new per node start; tells a restarted node from its earlier self
	Hidden      bool     // hidden nodes do not join the membership
	ID          peer.ID  // libp2p identity the connection was authenticated with
	Addrs       []string // its libp2p multiaddrs
}

// Handler receives connection events and frames; the layer above
// implements it. A Handler may also implement MemberHandler (membership
// changes) and GossipHandler (push/pull state and broadcasts); Start finds
// them by type assertion.
//
// Concurrency contract: for one peer connection, NodeUp happens-before every
// Frame of that connection, which all happen-before its NodeDown; a NodeDown
// of an old connection to a node happens-before the NodeUp of a new one.
// Frame is called on the peer's reader goroutine in arrival order (FIFO per
// peer) and must not block for long (it stalls that peer's inbound stream;
// in particular a Send from Frame can deadlock two nodes whose queues are
// both full, so reply with TrySend or from another goroutine); it owns
// data after the call. Different peers may call concurrently. No
// method may call Host.Stop.
type Handler interface {
	// NodeUp reports a new authenticated connection.
	NodeUp(p Peer)
	// Frame delivers one frame from p.
	Frame(p Peer, data []byte)
	// NodeDown reports that p's connection is gone; reason is errors.Is-able
	// (ErrConnClosed, ErrFailureDetected, ErrLeft, ErrDisconnected, ...).
	NodeDown(p Peer, reason error)
}

// BatchHandler is an optional interface of a Handler (Start finds it by
// type assertion): its Frames is called instead of Frame with the data
// frames the peer's reader has at hand, that is, every frame that arrived
// whole with the last read from the network (at most maxBatchFrames of
// them), so the layer above can decode and deliver a burst with one lock
// and one wake-up per receiver rather than one per frame. Frames has
// Frame's contract (the reader goroutine, FIFO per peer, must not block
// for long); frames are in arrival order, the handler owns each frame's
// bytes but not the frames slice, which the reader reuses after the call.
type BatchHandler interface {
	Frames(p Peer, frames [][]byte)
}

// PeerStats are counters for one peer name (cumulative over its connections).
type PeerStats struct {
	Name         string
	FramesIn     uint64 // data frames delivered to the Handler
	BytesIn      uint64 // their payload bytes
	FramesOut    uint64 // data and control frames written to the stream
	BytesOut     uint64 // bytes written to the stream, frame headers included
	Dropped      uint64 // frames refused (queue full) or lost with a closing connection
	DecodeErrors uint64 // malformed or oversized inbound frames
}

// Stats holds per-peer counters sorted by name, and their total, and what
// the host refused from peers that are not (or not yet) authenticated.
type Stats struct {
	// Total sums Peers.
	Total PeerStats
	// Peers has one entry per peer name ever connected, sorted by name.
	Peers []PeerStats
	// Guard counts what was refused before (or outside) authentication.
	Guard GuardStats
}

// GuardStats count the bounds of doc.go's "Hostile peers" at work. The
// Pending figures are current; the others are cumulative.
type GuardStats struct {
	// PendingConns is the number of inbound libp2p connections accepted
	// that have not passed the cookie handshake (TCP network only).
	PendingConns int
	// RefusedPerSource counts inbound connections refused because their
	// source IP had Advanced.MaxPendingPerSource connections pending.
	RefusedPerSource uint64
	// RefusedTotal counts inbound connections refused because
	// Advanced.MaxPendingConns connections were pending.
	RefusedTotal uint64
	// HandshakeTimeouts counts inbound connections closed because they had
	// not passed the cookie handshake within Advanced.HandshakeTimeout.
	HandshakeTimeouts uint64
	// HandshakeFailures counts inbound dist handshakes that failed: cookie
	// mismatch (an impostor included), malformed hello, refused name.
	HandshakeFailures uint64
	// StreamFloods counts connections closed because their peer opened
	// more dist streams at once than an honest peer does.
	StreamFloods uint64
	// GossipStreams is the number of open memberlist stream (TCP) connections.
	GossipStreams int
	// GossipRefusedPerSource and GossipRefusedTotal count memberlist stream
	// connections refused by the same two caps.
	GossipRefusedPerSource, GossipRefusedTotal uint64
}
