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
	if err := checkHeader(typ, x, max); err != nil {
		return 0, 0, err
	}
	return typ, int(x), nil
}

// parseHeader parses a frame header at the front of b by readHeader's
// rules. hl is the header's length, 0 when b holds only part of a header
// (err is nil then, unless what is there is already wrong).
func parseHeader(b []byte, max int) (typ byte, n, hl int, err error) {
	typ = b[0]
	var x uint64
	var s uint
	for i := 0; ; i++ {
		if i == binary.MaxVarintLen32 {
			return 0, 0, 0, fmt.Errorf("%w: %w", ErrProtocol, errBadVarint)
		}
		if 1+i >= len(b) {
			return 0, 0, 0, nil // the rest of the header is not here yet
		}
		c := b[1+i]
		if c < 0x80 {
			if (i == binary.MaxVarintLen32-1 && c > 0x0f) || (i > 0 && c == 0) {
				return 0, 0, 0, fmt.Errorf("%w: %w", ErrProtocol, errBadVarint)
			}
			x |= uint64(c) << s
			hl = 2 + i
			break
		}
		x |= uint64(c&0x7f) << s
		s += 7
	}
	if err := checkHeader(typ, x, max); err != nil {
		return 0, 0, 0, err
	}
	return typ, int(x), hl, nil
}

// checkHeader checks a frame's declared length x against max (data
// frames) or the fixed size of its control frame type.
func checkHeader(typ byte, x uint64, max int) error {
	switch typ {
	case frameData:
		if x > uint64(max) {
			return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, x, max)
		}
	case framePing, framePong:
		if x != 8 {
			return fmt.Errorf("%w: ping frame of %d bytes", ErrProtocol, x)
		}
	case frameBye:
		if x != 1 {
			return fmt.Errorf("%w: bye frame of %d bytes", ErrProtocol, x)
		}
	default:
		return fmt.Errorf("%w: unknown frame type %d", ErrProtocol, typ)
	}
	return nil
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// slab hands out small frame buffers carved from larger chunks, so that
// receiving many small frames costs one allocation per chunk, not per frame.
// Each returned slice has its capacity clipped, so the receiver owns it. It
// moves an offset rather than reslicing buf, so handing out a frame writes
// no pointer (no GC write barrier per frame).
type slab struct {
	buf []byte
	off int
}

const (
	slabChunk    = 64 << 10
	slabMaxFrame = 4 << 10
)

func (s *slab) get(n int) []byte {
	if n > slabMaxFrame {
		return make([]byte, n)
	}
	if len(s.buf)-s.off < n {
		s.buf, s.off = make([]byte, slabChunk), 0
	}
	b := s.buf[s.off : s.off+n : s.off+n]
	s.off += n
	return b
}

// frameReader decodes frames from a stream.
type frameReader struct {
	r    *bufio.Reader
	max  int
	slab slab
	ctl  [8]byte
	// win is what r had buffered when next last looked (a Peek, valid
	// until r is read again) and used how much of it next has returned.
	// Frames wholly in it are parsed there, and r is told (Discard) only
	// when win is spent, not once per frame.
	win  []byte
	used int
}

// next returns the next frame. Data payloads are fresh slices owned by the
// caller; control payloads alias an internal buffer valid until the next call.
func (fr *frameReader) next() (typ byte, payload []byte, err error) {
	if fr.win == nil {
		fr.peek()
	}
	if typ, payload, ok, err := fr.fromWindow(); ok || err != nil {
		return typ, payload, err
	}
	// What is left of win is the start of a frame: read it from r.
	fr.release()
	typ, n, err := readHeader(fr.r, fr.max)
	if err != nil {
		return 0, nil, err
	}
	payload = fr.payload(typ, n)
	if _, err := io.ReadFull(fr.r, payload); err != nil {
		return 0, nil, unexpectedEOF(err)
	}
	return typ, payload, nil
}

// peek makes win what r has buffered (nil when nothing).
func (fr *frameReader) peek() {
	if nb := fr.r.Buffered(); nb > 0 {
		fr.win, _ = fr.r.Peek(nb)
	}
	fr.used = 0
}

// fromWindow returns the frame at the front of what is left of win, with
// ok, when it is all there.
func (fr *frameReader) fromWindow() (typ byte, payload []byte, ok bool, err error) {
	b := fr.win[fr.used:]
	if len(b) == 0 {
		return 0, nil, false, nil
	}
	typ, n, hl, err := parseHeader(b[:min(len(b), maxHeader)], fr.max)
	if err != nil {
		fr.release() // r is then where the bad header starts
		return 0, nil, false, err
	}
	if hl == 0 || len(b) < hl+n {
		return 0, nil, false, nil
	}
	payload = fr.payload(typ, n)
	copy(payload, b[hl:hl+n])
	fr.used += hl + n
	return typ, payload, true, nil
}

// release tells r what next took from win and forgets win.
func (fr *frameReader) release() {
	if fr.used > 0 {
		_, _ = fr.r.Discard(fr.used)
	}
	fr.win, fr.used = nil, 0
}

// payload returns the buffer for an n-byte payload of a frame of typ.
func (fr *frameReader) payload(typ byte, n int) []byte {
	if typ == frameData {
		return fr.slab.get(n)
	}
	return fr.ctl[:n]
}

// ready reports whether the next frame is wholly in the read buffer, so
// that next returns it without waiting for the network. A malformed header
// counts as ready: next reports it.
func (fr *frameReader) ready() bool {
	if fr.win == nil {
		fr.peek()
	}
	b := fr.win[fr.used:]
	if len(b) == 0 {
		return false // win holds all r had; the rest is to be read
	}
	_, n, hl, err := parseHeader(b[:min(len(b), maxHeader)], fr.max)
	return err != nil || hl > 0 && len(b) >= hl+n
}
