package p2p

import (
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
	return appendFrameParts(b, typ, nil, payload)
}

// appendFrameParts appends one encoded frame to b, its payload head then
// body.
func appendFrameParts(b []byte, typ byte, head, body []byte) []byte {
	b = append(b, typ)
	b = binary.AppendUvarint(b, uint64(len(head)+len(body)))
	return append(append(b, head...), body...)
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

// errBadVarint is a frame length that is not a minimal 32-bit uvarint.
var errBadVarint = errors.New("bad frame length")

// parseHeader parses a frame header at the front of b and checks the
// declared length against max (data frames) or the fixed sizes of control
// frames, so that the caller reads a payload knowing it is bounded. hl is
// the header's length, 0 when b holds only part of a header (err is nil
// then, unless what is there is already wrong).
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

// smallData returns the payload length of the frame at the front of b
// when it is a data frame with a 1-byte length (under 128 bytes, the
// common header of a stream of small messages), with ok; inlined, it
// spares such frames parseHeader's loop. Anything else gives !ok.
func smallData(b []byte, max int) (n int, ok bool) {
	if len(b) > 1 && b[0] == frameData && b[1] < 0x80 && int(b[1]) <= max {
		return int(b[1]), true
	}
	return 0, false
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

// Frames are read straight into chunks of memory that the frames then
// alias: a data payload is a slice of the chunk its bytes were read into
// (its capacity clipped, so the receiver owns it), not a copy. Receiving
// many small frames costs one allocation per chunk and no copy after the
// read. A frame larger than ownFrame that the last read did not bring
// whole gets an allocation of its own, read into directly; a chunk is
// never larger than readChunk unless one frame of up to ownFrame bytes
// needs it, so what one connection holds is bounded by readChunk plus
// one frame.
const (
	readChunk = 64 << 10
	ownFrame  = 4 << 10
	// minRead is the least free space a read is given: with less, what is
	// left of a frame moves to a new chunk first.
	minRead = 4 << 10
	// maxEmptyReads bounds the reads in a row that return nothing and no
	// error (bufio's io.ErrNoProgress rule).
	maxEmptyReads = 100
)

// frameReader decodes frames from a stream.
type frameReader struct {
	r   io.Reader
	max int
	// buf is the chunk being filled; buf[off:end] is read and not yet
	// returned. Everything before off is handed out (or was a header).
	buf      []byte
	off, end int
	err      error // the read error met; returned once buf[off:end] is used up
	// full is set when the last read filled the space it was given or
	// brought streamRead bytes or more: the sender had more to say than
	// that read took, a stream rather than a lone batch.
	full bool
}

// streamRead is the size of a read that marks a stream (frameReader.full):
// a TLS record's largest plaintext, what one Read of a direct connection
// returns at most.
const streamRead = 16 << 10

// next returns the next frame. Payloads are slices owned by the caller
// (never written again by the reader).
func (fr *frameReader) next() (typ byte, payload []byte, err error) {
	for {
		b := fr.buf[fr.off:fr.end]
		if n, ok := smallData(b, fr.max); ok && len(b) >= 2+n {
			fr.off += 2 + n
			return frameData, b[2 : 2+n : 2+n], nil
		}
		need := maxHeader // bytes the frame at off needs, as far as known
		if len(b) > 0 {
			typ, n, hl, err := parseHeader(b[:min(len(b), maxHeader)], fr.max)
			if err != nil {
				return 0, nil, err
			}
			if hl > 0 {
				if len(b) >= hl+n {
					fr.off += hl + n
					return typ, b[hl : hl+n : hl+n], nil
				}
				if n > ownFrame {
					return fr.own(typ, b[hl:], n)
				}
				need = hl + n
			}
		}
		if fr.err != nil {
			err := fr.err
			if len(b) > 0 {
				err = unexpectedEOF(err)
			}
			return 0, nil, err
		}
		fr.fill(need)
	}
}

// own reads a frame of n payload bytes, of which have are buffered, into
// an allocation of its own.
func (fr *frameReader) own(typ byte, have []byte, n int) (byte, []byte, error) {
	p := make([]byte, n)
	k := copy(p, have)
	fr.off = fr.end
	if fr.err == nil {
		_, fr.err = io.ReadFull(fr.r, p[k:])
		fr.full = true
	}
	if fr.err != nil {
		return 0, nil, unexpectedEOF(fr.err)
	}
	return typ, p, nil
}

// fill reads once more (fr.err is nil), so that buf[off:end] grows; need
// is how many bytes the frame at off takes, as far as its header tells.
// What is unread moves to a new chunk when the current one has less than
// minRead free or cannot hold the frame.
func (fr *frameReader) fill(need int) {
	if free := len(fr.buf) - fr.end; free < minRead || len(fr.buf)-fr.off < need {
		nb := make([]byte, max(readChunk, need))
		fr.end = copy(nb, fr.buf[fr.off:fr.end])
		fr.buf, fr.off = nb, 0
	}
	for range maxEmptyReads {
		space := len(fr.buf) - fr.end
		n, err := fr.r.Read(fr.buf[fr.end:])
		fr.end += n
		fr.full = n == space || n >= streamRead
		if err != nil {
			fr.err = err
			return
		}
		if n > 0 {
			return
		}
	}
	fr.err = io.ErrNoProgress
}

// ready reports whether the next frame is wholly buffered, so that next
// returns it without waiting for the network. A malformed header counts
// as ready: next reports it.
func (fr *frameReader) ready() bool {
	b := fr.buf[fr.off:fr.end]
	if n, ok := smallData(b, fr.max); ok {
		return len(b) >= 2+n
	}
	if len(b) == 0 {
		return false
	}
	_, n, hl, err := parseHeader(b[:min(len(b), maxHeader)], fr.max)
	return err != nil || hl > 0 && len(b) >= hl+n
}
