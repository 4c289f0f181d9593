package p2p

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// choppyReader returns between 1 and max bytes per Read, at random.
type choppyReader struct {
	r   *bytes.Reader
	rng *rand.Rand
	max int
}

func (c *choppyReader) Read(p []byte) (int, error) {
	return c.r.Read(p[:min(len(p), 1+c.rng.IntN(c.max))])
}

// TestFrameReaderChunks reads frames of every size class (small ones
// that share chunks, ones that move to a new chunk when they straddle the
// end of one, large ones read into their own allocation) through reads
// that cut anywhere, and checks every payload is intact at the end: a
// payload aliases the chunk it was read into, so a later read writing
// over it would show.
func TestFrameReaderChunks(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var in []byte
	var want [][]byte
	for len(in) < 5*readChunk {
		var n int
		switch rng.IntN(10) {
		case 0:
			n = ownFrame + 1 + rng.IntN(3*readChunk)
		case 1:
			n = ownFrame - rng.IntN(64)
		default:
			n = rng.IntN(200)
		}
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		want = append(want, p)
		in = appendFrame(in, frameData, p)
		if rng.IntN(8) == 0 {
			in = appendFrame(in, framePing, []byte("01234567"))
			want = append(want, nil)
		}
	}
	for _, max := range []int{1, 7, 300, 16 << 10, 1 << 20} {
		fr := frameReader{r: &choppyReader{r: bytes.NewReader(in), rng: rng, max: max}, max: 4 * readChunk}
		var got [][]byte
		for {
			typ, p, err := fr.next()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			if typ == framePing {
				require.Equal(t, []byte("01234567"), p)
				p = nil
			}
			require.Equal(t, len(p), cap(p), "capacity clipped")
			got = append(got, p)
		}
		require.Equal(t, len(want), len(got), "reads of up to %d bytes", max)
		for i := range want {
			require.True(t, bytes.Equal(want[i], got[i]), "frame %d (%d bytes), reads of up to %d bytes", i, len(want[i]), max)
		}
		require.LessOrEqual(t, cap(fr.buf), readChunk, "a chunk is never larger than readChunk")
	}
}

// TestFrameReaderTruncated: a stream cut inside a frame is
// io.ErrUnexpectedEOF, at a frame boundary io.EOF.
func TestFrameReaderTruncated(t *testing.T) {
	in := appendFrame(nil, frameData, []byte("hello"))
	in = appendFrame(in, frameData, make([]byte, 2*ownFrame))
	for cut := 0; cut <= len(in); cut++ {
		fr := frameReader{r: bytes.NewReader(in[:cut]), max: DefaultMaxFrameSize}
		var err error
		for err == nil {
			_, _, err = fr.next()
		}
		if cut == 0 || cut == 7 || cut == len(in) {
			require.ErrorIs(t, err, io.EOF, "cut at %d", cut)
		} else {
			require.ErrorIs(t, err, io.ErrUnexpectedEOF, "cut at %d", cut)
		}
	}
}
