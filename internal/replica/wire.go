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

// Frame kinds. Every frame starts with its kind.
const (
	kindDelta    byte = 1 // delta
	kindPull     byte = 2 // flags, digest: send me DeltaFor(digest)
	kindSyncReq  byte = 3 // id, digest
	kindSyncResp byte = 4 // id, digest (length-prefixed), delta
	kindSyncPush byte = 5 // id, delta
	kindSyncAck  byte = 6 // id
	kindGossip   byte = 7 // not on the wire: a digest from memberlist's push/pull
	kindNotice   byte = 8 // a user payload for OnNotice
)

// MaxNotice bounds a notice's payload (State.Notify).
const MaxNotice = 64 << 10

// pullAnswer in a pull's flags asks the receiver to pull back in turn when
// the sender's digest shows something the receiver lacks.
const pullAnswer byte = 1

// gossipVersion starts the push/pull state.
const gossipVersion byte = 1

// frame is a decoded frame.
type frame[K comparable, V any] struct {
	kind   byte
	flags  byte
	id     uint64
	digest crdt.Digest
	delta  *crdt.ORMap[K, V]
	notice []byte
}

func appendDelta[K comparable, V any](b []byte, d *crdt.ORMap[K, V]) []byte {
	b, _ = d.AppendBinary(b) // an ORMap's encoding never fails
	return b
}

func appendDigest(b []byte, g crdt.Digest) []byte {
	b, _ = g.AppendBinary(b) // a digest's encoding never fails
	return b
}

func encodeDelta[K comparable, V any](d *crdt.ORMap[K, V]) []byte {
	return appendDelta(append(make([]byte, 0, 64), kindDelta), d)
}

func encodePull(flags byte, g crdt.Digest) []byte {
	return appendDigest([]byte{kindPull, flags}, g)
}

func encodeSyncReq(id uint64, g crdt.Digest) []byte {
	return appendDigest(wire.AppendUvarint([]byte{kindSyncReq}, id), g)
}

func encodeSyncResp[K comparable, V any](id uint64, g crdt.Digest, d *crdt.ORMap[K, V]) []byte {
	b := wire.AppendUvarint([]byte{kindSyncResp}, id)
	b = wire.AppendBytes(b, appendDigest(nil, g))
	return appendDelta(b, d)
}

func encodeSyncPush[K comparable, V any](id uint64, d *crdt.ORMap[K, V]) []byte {
	return appendDelta(wire.AppendUvarint([]byte{kindSyncPush}, id), d)
}

func encodeSyncAck(id uint64) []byte { return wire.AppendUvarint([]byte{kindSyncAck}, id) }

func encodeNotice(payload []byte) []byte { return append([]byte{kindNotice}, payload...) }

func encodeGossip(g crdt.Digest) []byte { return appendDigest([]byte{gossipVersion}, g) }

// decodeFrame decodes a frame. It never panics and allocates in proportion
// to its input (the crdt decoders' guarantee).
func decodeFrame[K comparable, V any](b []byte, kc crdt.Codec[K], vc crdt.Codec[V]) (frame[K, V], error) {
	var f frame[K, V]
	if len(b) == 0 {
		return f, fmt.Errorf("%w: empty", ErrBadFrame)
	}
	dec := wire.NewDecoder(b)
	f.kind = dec.Byte()
	var err error
	switch f.kind {
	case kindDelta:
		f.delta, err = crdt.DecodeORMap(dec.Rest(), kc, vc)
	case kindPull:
		f.flags = dec.Byte()
		if dec.Err() == nil && f.flags&^pullAnswer != 0 {
			dec.Fail("unknown pull flags")
		}
		if dec.Err() == nil {
			f.digest, err = crdt.DecodeDigest(dec.Rest())
		}
	case kindSyncReq:
		f.id = uvarint(&dec)
		if dec.Err() == nil {
			f.digest, err = crdt.DecodeDigest(dec.Rest())
		}
	case kindSyncResp:
		f.id = uvarint(&dec)
		g := dec.Bytes()
		if dec.Err() == nil {
			f.digest, err = crdt.DecodeDigest(g)
		}
		if dec.Err() == nil && err == nil {
			f.delta, err = crdt.DecodeORMap(dec.Rest(), kc, vc)
		}
	case kindSyncPush:
		f.id = uvarint(&dec)
		if dec.Err() == nil {
			f.delta, err = crdt.DecodeORMap(dec.Rest(), kc, vc)
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
