package replica

import (
	"errors"
	"fmt"

	"github.com/nodal-go/nodal/crdt"
	"github.com/nodal-go/nodal/internal/wire"
)

// ErrBadFrame is wrapped by the error for a frame or gossip state that
// cannot be decoded; such input is dropped and counted (Stats.BadFrames).
var ErrBadFrame = errors.New("replica: malformed frame")

// Frame kinds. Every frame starts with its kind. Kinds 2 to 5 (a pull
// answered with the whole difference, and the sync request, answer and
// push that carried full digests and deltas) are retired: a number is
// never reused for another layout.
const (
	kindDelta      byte = 1  // delta: a push of local mutations
	kindSyncAck    byte = 6  // id: the receiver holds what the Sync's asker had
	kindGossip     byte = 7  // not on the wire: a digest from memberlist's push/pull
	kindNotice     byte = 8  // a user payload for OnNotice
	kindDigest     byte = 9  // flags, digest: pull from me what you lack
	kindAsk        byte = 10 // id, origins, digest: send me DeltaForOrigins(digest, origins)
	kindAnswer     byte = 11 // id, delta: the answer to kindAsk id
	kindSyncDigest byte = 12 // id, flags, [digest]: the answer to kindSyncReq id
	kindSyncReq    byte = 13 // id, flags, [digest]: Sync asks; answered by kindSyncDigest, and kindSyncAck if it had a digest
)

// withDigest in a sync frame's flags: a digest follows. A sync request
// without one means the asker knows the receiver holds all it has; an
// answer without one, that the receiver knows the asker holds all it has.
const withDigest byte = 1

// MaxNotice bounds a notice's payload (State.Notify).
const MaxNotice = 64 << 10

// digestAnswer in a digest's flags asks the receiver to send its own digest
// back when it has something the sender lacks, so that the sender can
// pull it.
const digestAnswer byte = 1

// gossipVersion starts the push/pull state.
const gossipVersion byte = 1

// frame is a decoded frame.
type frame[K comparable, V any] struct {
	kind    byte
	flags   byte
	id      uint64
	origins []crdt.ReplicaID // kindAsk: sorted, distinct
	digest  crdt.Digest
	delta   *crdt.ORMap[K, V]
	notice  []byte
}

func appendDelta[K comparable, V any](b []byte, d *crdt.ORMap[K, V]) []byte {
	b, _ = d.AppendBinary(b) // an ORMap's encoding never fails
	return b
}

func appendDigest(b []byte, g crdt.Digest) []byte {
	b, _ = g.AppendBinary(b) // a digest's encoding never fails
	return b
}

// encodeDelta encodes a push of d into a buffer of size bytes, or more if
// d needs them (a good guess saves append's growth: 1.25x steps from a
// large buffer, about five times the frame allocated and copied).
func encodeDelta[K comparable, V any](d *crdt.ORMap[K, V], size int) []byte {
	return appendDelta(append(make([]byte, 0, max(size, 64)), kindDelta), d)
}

func encodeDigest(flags byte, g crdt.Digest) []byte {
	return appendDigest([]byte{kindDigest, flags}, g)
}

func encodeAsk(id uint64, origins []crdt.ReplicaID, g crdt.Digest) []byte {
	b := wire.AppendUvarint([]byte{kindAsk}, id)
	b = wire.AppendUvarint(b, uint64(len(origins)))
	for _, o := range origins {
		b = wire.AppendUvarint(wire.AppendString(b, o.Name), o.Epoch)
	}
	return appendDigest(b, g)
}

func encodeAnswer[K comparable, V any](id uint64, d *crdt.ORMap[K, V]) []byte {
	return appendDelta(wire.AppendUvarint([]byte{kindAnswer}, id), d)
}

// encodeSync encodes a kindSyncReq or kindSyncDigest; g nil: no digest.
func encodeSync(kind byte, id uint64, g *crdt.Digest) []byte {
	b := wire.AppendUvarint([]byte{kind}, id)
	if g == nil {
		return append(b, 0)
	}
	return appendDigest(append(b, withDigest), *g)
}

func encodeSyncAck(id uint64) []byte { return wire.AppendUvarint([]byte{kindSyncAck}, id) }

func encodeNotice(payload []byte) []byte { return append([]byte{kindNotice}, payload...) }

func encodeGossip(g crdt.Digest) []byte { return appendDigest([]byte{gossipVersion}, g) }

// decodeFrame decodes a frame. It never panics and allocates in proportion
// to its input (the crdt decoders' guarantee). into, if not nil, is a
// delta no longer used that a push (kindDelta) decodes into, reusing its
// buffers (crdt.DecodeORMapInto).
func decodeFrame[K comparable, V any](b []byte, kc crdt.Codec[K], vc crdt.Codec[V], into *crdt.ORMap[K, V]) (frame[K, V], error) {
	var f frame[K, V]
	if len(b) == 0 {
		return f, fmt.Errorf("%w: empty", ErrBadFrame)
	}
	dec := wire.NewDecoder(b)
	f.kind = dec.Byte()
	var err error
	switch f.kind {
	case kindDelta:
		if into != nil {
			f.delta, err = crdt.DecodeORMapInto(into, dec.Rest())
		} else {
			f.delta, err = crdt.DecodeORMap(dec.Rest(), kc, vc)
		}
	case kindDigest:
		f.flags = dec.Byte()
		if dec.Err() == nil && f.flags&^digestAnswer != 0 {
			dec.Fail("unknown digest flags")
		}
		if dec.Err() == nil {
			f.digest, err = crdt.DecodeDigest(dec.Rest())
		}
	case kindAsk:
		f.id = uvarint(&dec)
		f.origins = decodeOrigins(&dec)
		if dec.Err() == nil {
			f.digest, err = crdt.DecodeDigest(dec.Rest())
		}
	case kindAnswer:
		f.id = uvarint(&dec)
		if dec.Err() == nil {
			f.delta, err = crdt.DecodeORMap(dec.Rest(), kc, vc)
		}
	case kindSyncReq, kindSyncDigest:
		f.id = uvarint(&dec)
		f.flags = dec.Byte()
		switch {
		case dec.Err() != nil:
		case f.flags == withDigest:
			f.digest, err = crdt.DecodeDigest(dec.Rest())
		case f.flags == 0:
			err = dec.Done()
		default:
			dec.Fail("unknown sync flags")
		}
	case kindSyncAck:
		f.id = uvarint(&dec)
		if dec.Err() == nil {
			err = dec.Done()
		}
	case kindNotice:
		f.notice = dec.Rest()
		if len(f.notice) > MaxNotice {
			dec.Fail("notice over MaxNotice")
		}
	default:
		return f, fmt.Errorf("%w: unknown kind %d", ErrBadFrame, f.kind)
	}
	if dec.Err() != nil {
		err = dec.Err()
	}
	if err != nil {
		return f, fmt.Errorf("%w: kind %d: %w", ErrBadFrame, f.kind, err)
	}
	return f, nil
}

// uvarint reads a uvarint and refuses a non-minimal encoding, so that a
// frame has one encoding.
func uvarint(dec *wire.Decoder) uint64 {
	start := dec.Offset()
	v := dec.Uvarint()
	if dec.Err() == nil && dec.Offset()-start != len(wire.AppendUvarint(nil, v)) {
		dec.Fail("non-minimal uvarint")
	}
	return v
}

// decodeOrigins reads a kindAsk's origins: a count, then each name and
// epoch, sorted and distinct (one encoding per list); the count is bounded
// by the input (each origin takes at least two bytes).
func decodeOrigins(dec *wire.Decoder) []crdt.ReplicaID {
	start := dec.Offset()
	n := dec.Count(2)
	if dec.Err() == nil && dec.Offset()-start != len(wire.AppendUvarint(nil, uint64(n))) {
		dec.Fail("non-minimal count")
	}
	if dec.Err() != nil {
		return nil
	}
	out := make([]crdt.ReplicaID, 0, n)
	for range n {
		l := uvarint(dec)
		if dec.Err() == nil && l > uint64(dec.Len()) {
			dec.Fail("origin name exceeds input")
		}
		if dec.Err() != nil {
			return nil
		}
		o := crdt.ReplicaID{Name: string(dec.Take(int(l)))}
		o.Epoch = uvarint(dec)
		if dec.Err() != nil {
			return nil
		}
		if len(out) > 0 && out[len(out)-1].Compare(o) >= 0 {
			dec.Fail("origins not sorted")
			return nil
		}
		out = append(out, o)
	}
	return out
}

// decodeGossip decodes a push/pull state.
func decodeGossip(b []byte) (crdt.Digest, error) {
	if len(b) == 0 || b[0] != gossipVersion {
		return crdt.Digest{}, fmt.Errorf("%w: gossip state of unknown version", ErrBadFrame)
	}
	g, err := crdt.DecodeDigest(b[1:])
	if err != nil {
		return g, fmt.Errorf("%w: gossip state: %w", ErrBadFrame, err)
	}
	return g, nil
}
