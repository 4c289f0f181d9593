package heal

import (
	"fmt"
	"time"

	"github.com/nodal-go/nodal/internal/wire"
)

// Frame kinds of the heal service, the first byte of every frame.
const (
	kindHello    byte = 1 // the sender's Settings and start time
	kindReach    byte = 2 // the nodes the sender is connected to now
	kindVoteReq  byte = 3 // a proposal to vote on
	kindVoteResp byte = 4 // a vote
)

// Bounds on what a frame may carry.
const (
	maxNodes    = 4096      // nodes in a reach report or an expected set
	maxTopic    = 256       // bytes of a vote topic
	maxValue    = 64 << 10  // bytes of a proposed value
	maxDuration = 1 << 40   // milliseconds in a duration (about 35 years)
	maxName     = 255 + 256 // bytes of a node name (name@host)
)

// wireVersion is the heal protocol's version, in every hello.
const wireVersion = 1

// frame is one decoded heal frame; kind says which fields are set.
type frame struct {
	kind byte

	// kindHello
	settings Settings
	started  int64 // the sender's heal start, Unix nanoseconds

	// kindReach
	seq   uint64
	nodes []string

	// kindVoteReq, kindVoteResp
	id      uint64
	topic   string
	value   []byte
	timeout time.Duration
	yes     bool
}

func appendDuration(b []byte, d time.Duration) []byte {
	return wire.AppendUvarint(b, uint64(max(d, 0)/time.Millisecond))
}

func readDuration(d *wire.Decoder) time.Duration {
	v := d.Uvarint()
	if v > maxDuration {
		d.Fail("duration out of range")
		return 0
	}
	return time.Duration(v) * time.Millisecond
}

func encodeHello(s Settings, started int64) []byte {
	b := []byte{kindHello}
	b = wire.AppendUvarint(b, wireVersion)
	b = appendDuration(b, s.ReconnectHorizon)
	b = appendDuration(b, s.PurgePeriod)
	b = append(b, byte(s.Strategy))
	b = wire.AppendUvarint(b, uint64(s.QuorumSize))
	b = wire.AppendString(b, s.Referee)
	b = wire.AppendBool(b, s.DownIfAlone)
	return wire.AppendVarint(b, started)
}

func encodeReach(seq uint64, nodes []string) []byte {
	b := []byte{kindReach}
	b = wire.AppendUvarint(b, seq)
	b = wire.AppendUvarint(b, uint64(len(nodes)))
	for _, n := range nodes {
		b = wire.AppendString(b, n)
	}
	return b
}

func encodeVoteReq(id uint64, topic string, value []byte, timeout time.Duration) []byte {
	b := []byte{kindVoteReq}
	b = wire.AppendUvarint(b, id)
	b = wire.AppendString(b, topic)
	b = wire.AppendBytes(b, value)
	return appendDuration(b, timeout)
}

func encodeVoteResp(id uint64, yes bool) []byte {
	b := []byte{kindVoteResp}
	b = wire.AppendUvarint(b, id)
	return wire.AppendBool(b, yes)
}

// decodeFrame decodes one heal frame. It never panics and allocates at most
// in proportion to b; the value of a vote request is copied.
func decodeFrame(b []byte) (frame, error) {
	d := wire.NewDecoder(b)
	f := frame{kind: d.Byte()}
	switch f.kind {
	case kindHello:
		if v := d.Uvarint(); d.Err() == nil && v != wireVersion {
			return frame{}, fmt.Errorf("%w: hello of protocol version %d, this node speaks %d", ErrBadFrame, v, wireVersion)
		}
		f.settings.ReconnectHorizon = readDuration(&d)
		f.settings.PurgePeriod = readDuration(&d)
		f.settings.Strategy = Strategy(d.Byte())
		q := d.Uvarint()
		if q > maxNodes {
			d.Fail("quorum size out of range")
		}
		f.settings.QuorumSize = int(q)
		f.settings.Referee = readName(&d)
		f.settings.DownIfAlone = d.Bool()
		f.started = d.Varint()
	case kindReach:
		f.seq = d.Uvarint()
		n := d.Count(1)
		if n > maxNodes {
			d.Fail("too many nodes")
		}
		if d.Err() == nil {
			f.nodes = make([]string, 0, n)
		}
		for i := 0; i < n && d.Err() == nil; i++ {
			if s := readName(&d); d.Err() == nil {
				f.nodes = append(f.nodes, s)
			}
		}
	case kindVoteReq:
		f.id = d.Uvarint()
		if n := d.Length(); n > maxTopic {
			d.Fail("topic too long")
		} else {
			f.topic = string(d.Take(n))
		}
		if n := d.Length(); n > maxValue {
			d.Fail("value too large")
		} else if v := d.Take(n); d.Err() == nil {
			f.value = append([]byte(nil), v...)
		}
		f.timeout = readDuration(&d)
	case kindVoteResp:
		f.id = d.Uvarint()
		f.yes = d.Bool()
	default:
		if d.Err() == nil {
			return frame{}, fmt.Errorf("%w: unknown kind %d", ErrBadFrame, f.kind)
		}
	}
	if err := d.Done(); err != nil {
		return frame{}, fmt.Errorf("%w: %w", ErrBadFrame, err)
	}
	return f, nil
}

func readName(d *wire.Decoder) string {
	n := d.Length()
	if n > maxName {
		d.Fail("node name too long")
		return ""
	}
	return string(d.Take(n))
}
