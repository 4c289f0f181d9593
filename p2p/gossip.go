package p2p

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/hashicorp/memberlist"
)

// GossipHandler is an optional interface of a Handler: a Handler that
// implements it takes part in memberlist's gossip, for services above p2p
// that spread small state (a registry digest, say) to every member without
// connections.
//
// LocalState is asked for this node's state whenever memberlist does a
// push/pull with another member (join is true on a join): periodically
// (every 30 s with ProfileLAN) with one random member, so every member
// merges every other member's state eventually, even after lost packets.
// Its result is at most MaxGossipStateSize bytes (more is logged and not
// sent). MergeRemoteState receives another member's LocalState, with the
// sender's node name and incarnation (p2p frames both, since memberlist
// does not say who sent a state). NotifyMsg receives a Broadcast of
// another member, with its sender's name and incarnation.
//
// Concurrency contract: the methods are called on memberlist's goroutines
// (its packet and stream handlers and its push/pull timer), possibly
// concurrently with each other and with the other Handler methods, while
// memberlist holds internal locks: they must be thread-safe and must not
// block (hand work to a goroutine of your own through a bounded channel),
// and must not call back into the Host. The handler owns the byte slices
// it is given. A hidden node does not gossip and calls none of them.
type GossipHandler interface {
	// LocalState returns this node's state for a push/pull.
	LocalState(join bool) []byte
	// MergeRemoteState merges another member's state.
	MergeRemoteState(from string, incarnation uint64, state []byte, join bool)
	// NotifyMsg delivers another member's Broadcast.
	NotifyMsg(from string, incarnation uint64, msg []byte)
}

const (
	// MaxBroadcastSize bounds one Broadcast message, in bytes. A broadcast
	// rides in memberlist's gossip packets (UDPBufferSize, 1400 bytes by
	// default), which also hold its encryption and framing and p2p's
	// sender framing (up to 266 bytes for the longest node name).
	MaxBroadcastSize = 1024
	// MaxGossipStateSize bounds a LocalState, in bytes: push/pull states go
	// over memberlist's TCP stream with every member's node list.
	MaxGossipStateSize = 1 << 20
	// maxQueuedBroadcasts bounds the broadcasts waiting in the queue.
	maxQueuedBroadcasts = 4096
)

// Gossip frame: version, kind, sender name length and name, sender
// incarnation (8, big endian), payload.
const (
	gossipVersion   = 1
	gossipState     = 1
	gossipBroadcast = 2
	// memberlist's packet overheads around one user broadcast: compound
	// header (2), the worst encryption overhead (45), per-message
	// compound overhead (2) and the user-message type byte (1).
	broadcastOverhead = 2 + 45 + 2 + 1
)

func gossipHeaderLen(name string) int { return 2 + 1 + len(name) + 8 }

func appendGossip(b []byte, kind byte, name string, inc uint64, payload []byte) []byte {
	b = append(b, gossipVersion, kind, byte(len(name)))
	b = append(b, name...)
	b = binary.BigEndian.AppendUint64(b, inc)
	return append(b, payload...)
}

// decodeGossip reads a gossip frame of kind. The payload aliases b. It
// never panics and allocates only the name.
func decodeGossip(b []byte, kind byte) (from string, inc uint64, payload []byte, err error) {
	bad := func(what string) (string, uint64, []byte, error) {
		return "", 0, nil, fmt.Errorf("%w: gossip: %s", ErrProtocol, what)
	}
	if len(b) < 3 || b[0] != gossipVersion {
		return bad("bad header")
	}
	if b[1] != kind {
		return bad("unexpected kind")
	}
	n := int(b[2])
	b = b[3:]
	if len(b) < n+8 {
		return bad("short sender")
	}
	from = string(b[:n])
	if _, err := ParseName(from); err != nil {
		return bad("sender name")
	}
	inc = binary.BigEndian.Uint64(b[n : n+8])
	return from, inc, b[n+8:], nil
}

// broadcast is one Broadcast in memberlist's queue; a newer one with the
// same key replaces it.
type broadcast struct {
	key string
	msg []byte
}

var _ memberlist.NamedBroadcast = (*broadcast)(nil)

func (b *broadcast) Name() string    { return b.key }
func (b *broadcast) Message() []byte { return b.msg }
func (b *broadcast) Finished()       {}
func (b *broadcast) Invalidates(o memberlist.Broadcast) bool {
	nb, ok := o.(memberlist.NamedBroadcast)
	return ok && b.key != "" && nb.Name() == b.key
}

// initBroadcasts sets up Broadcast's queue for memberlist config mc.
func (h *Host) initBroadcasts(mc *memberlist.Config) {
	h.broadcasts = &memberlist.TransmitLimitedQueue{
		// Our view, not h.ml: memberlist may gossip before Create returns.
		NumNodes:       func() int { return len(*h.members.view.Load()) + 1 },
		RetransmitMult: mc.RetransmitMult,
	}
	label := 0
	if mc.Label != "" {
		label = 2 + len(mc.Label)
	}
	h.maxBroadcast = min(MaxBroadcastSize, mc.UDPBufferSize-label-broadcastOverhead-gossipHeaderLen(h.cfg.Name))
}

// Broadcast gossips msg to the other members, piggy-backed on memberlist's
// gossip and probe packets; their GossipHandler.NotifyMsg gets it with
// this node's name and incarnation. A newer broadcast with the same key
// replaces an older one still queued (memberlist's NamedBroadcast); an
// empty key replaces nothing. It returns at once: memberlist sends each
// broadcast about RetransmitMult*log(N+1) times to random members, so it
// reaches most members within a few gossip intervals, may reach one more
// than once, and is not guaranteed to reach all (state that must converge
// goes in LocalState, which push/pull carries to everyone). msg is at most
// MaxBroadcastSize bytes (ErrBroadcastTooLarge); at most 4096 broadcasts
// wait in the queue (ErrQueueFull). A hidden node cannot broadcast
// (ErrInvalidConfig). msg is copied.
func (h *Host) Broadcast(key string, msg []byte) error {
	if h.ml == nil {
		return fmt.Errorf("%w: a hidden node does not gossip", ErrInvalidConfig)
	}
	if h.isStopping() {
		return ErrStopped
	}
	if len(msg) > h.maxBroadcast {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrBroadcastTooLarge, len(msg), h.maxBroadcast)
	}
	if h.broadcasts.NumQueued() >= maxQueuedBroadcasts {
		return fmt.Errorf("%w: %d broadcasts queued", ErrQueueFull, maxQueuedBroadcasts)
	}
	frame := appendGossip(make([]byte, 0, gossipHeaderLen(h.cfg.Name)+len(msg)), gossipBroadcast, h.cfg.Name, h.self.Incarnation, msg)
	h.broadcasts.QueueBroadcast(&broadcast{key: key, msg: frame})
	return nil
}

// localState frames the GossipHandler's state for a push/pull.
func (h *Host) localState(join bool) []byte {
	if h.gossipH == nil {
		return nil
	}
	s := h.gossipH.LocalState(join)
	if len(s) > MaxGossipStateSize {
		log.Warnw("gossip state too large, not sent", "bytes", len(s), "limit", MaxGossipStateSize)
		return nil
	}
	return appendGossip(make([]byte, 0, gossipHeaderLen(h.cfg.Name)+len(s)), gossipState, h.cfg.Name, h.self.Incarnation, s)
}

func (h *Host) mergeRemoteState(buf []byte, join bool) {
	if h.gossipH == nil || len(buf) == 0 {
		return
	}
	from, inc, state, err := decodeGossip(buf, gossipState)
	if err != nil {
		log.Warnw("bad gossip state", "err", err.Error())
		return
	}
	if from == h.cfg.Name {
		return
	}
	h.gossipH.MergeRemoteState(from, inc, slices.Clone(state), join)
}

func (h *Host) notifyMsg(buf []byte) {
	if h.gossipH == nil {
		return
	}
	from, inc, msg, err := decodeGossip(buf, gossipBroadcast)
	if err != nil {
		log.Warnw("bad gossip broadcast", "err", err.Error())
		return
	}
	if from == h.cfg.Name {
		return
	}
	h.gossipH.NotifyMsg(from, inc, slices.Clone(msg))
}
