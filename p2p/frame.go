package p2p

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// readBufSize is the inbound buffer of one connection.
const readBufSize = 32 << 10

// maxFrameLimit is the largest MaxFrameSize a config may ask for (1 GiB).
const maxFrameLimit = 1 << 30

// Frame types on the wire. A frame is [type:1][length:uvarint][payload].
const (
	frameData byte = 0 // payload for Handler.Frame
	framePing byte = 1 // 8-byte sequence number
	framePong byte = 2 // echoes a ping's sequence number
	frameBye  byte = 3 // 1-byte reason code; the sender closes after it
)

// Bye reason codes.
const (
	byeLeft         byte = 1 // the sender is stopping (leaves the cluster)
	byeDisconnected byte = 2 // Disconnect was called on the sender
)

// maxHeader is the largest frame header: type byte + 5-byte uvarint (< 2^35).
const maxHeader = 1 + binary.MaxVarintLen32

// appendFrame appends one encoded frame to b.
func appendFrame(b []byte, typ byte, payload []byte) []byte {
	b = append(b, typ)
	b = binary.AppendUvarint(b, uint64(len(payload)))
	return append(b, payload...)
}

// frameSize is the encoded size of a frame with an n-byte payload.
func frameSize(n int) int {
	return 1 + uvarintLen(uint64(n)) + n
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// errOversized is wrapped with ErrFrameTooLarge by the decoder.
var errBadVarint = errors.New("bad frame length")

// readHeader reads a frame header and checks the declared length against
// max (data frames) or the fixed sizes of control frames. It never
// allocates: the caller reads the payload knowing it is bounded.
func readHeader(r *bufio.Reader, max int) (typ byte, n int, err error) {
	typ, err = r.ReadByte()
	if err != nil {
		return 0, 0, err
	}
	var x uint64
	var s uint
	for i := 0; ; i++ {
		if i == binary.MaxVarintLen32 {
			return 0, 0, fmt.Errorf("%w: %w", ErrProtocol, errBadVarint)
		}
		c, err := r.ReadByte()
		if err != nil {
			return 0, 0, unexpectedEOF(err)
		}
		if c < 0x80 {
			if (i == binary.MaxVarintLen32-1 && c > 0x0f) || (i > 0 && c == 0) {
				// Too big for 32 bits, or not minimally encoded.
				return 0, 0, fmt.Errorf("%w: %w", ErrProtocol, errBadVarint)
			}
			x |= uint64(c) << s
			break
		}
		x |= uint64(c&0x7f) << s
		s += 7
	}
	switch typ {
	case frameData:
		if x > uint64(max) {
			return 0, 0, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, x, max)
		}
	case framePing, framePong:
		if x != 8 {
			return 0, 0, fmt.Errorf("%w: ping frame of %d bytes", ErrProtocol, x)
		}
	case frameBye:
		if x != 1 {
			return 0, 0, fmt.Errorf("%w: bye frame of %d bytes", ErrProtocol, x)
		}
	default:
		return 0, 0, fmt.Errorf("%w: unknown frame type %d", ErrProtocol, typ)
	}
	return typ, int(x), nil
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// slab hands out small frame buffers carved from larger chunks, so that
// receiving many small frames costs one allocation per chunk, not per frame.
// Each returned slice has its capacity clipped, so the receiver owns it.
type slab struct {
	buf []byte
}

const (
	slabChunk    = 64 << 10
	slabMaxFrame = 4 << 10
)

func (s *slab) get(n int) []byte {
	if n > slabMaxFrame {
		return make([]byte, n)
	}
	if len(s.buf) < n {
		s.buf = make([]byte, slabChunk)
	}
	b := s.buf[:n:n]
	s.buf = s.buf[n:]
	return b
}

// frameReader decodes frames from a stream.
type frameReader struct {
	r    *bufio.Reader
	max  int
	slab slab
	ctl  [8]byte
}

// next returns the next frame. Data payloads are fresh slices owned by the
// caller; control payloads alias an internal buffer valid until the next call.
func (fr *frameReader) next() (typ byte, payload []byte, err error) {
	typ, n, err := readHeader(fr.r, fr.max)
	if err != nil {
		return 0, nil, err
	}
	if typ == frameData {
		payload = fr.slab.get(n)
	} else {
		payload = fr.ctl[:n]
	}
	if _, err := io.ReadFull(fr.r, payload); err != nil {
		return 0, nil, unexpectedEOF(err)
	}
	return typ, payload, nil
}
