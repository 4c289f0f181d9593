package p2p

import (
	"bytes"
	"io"
	"testing"
)

// recordReader returns at most 16 KiB per Read, as a TLS connection
// returns one record at a time.
type recordReader struct{ r *bytes.Reader }

func (r recordReader) Read(p []byte) (int, error) { return r.r.Read(p[:min(len(p), 16<<10)]) }

// benchFrameReader reads frames of a size-byte payload as readLoop does
// before it hands them over in batches: one op is one frame.
func benchFrameReader(b *testing.B, size int) {
	var in []byte
	for range 4096 {
		in = appendFrame(in, frameData, make([]byte, size))
	}
	src := bytes.NewReader(in)
	fr := frameReader{r: recordReader{src}, max: DefaultMaxFrameSize}
	b.SetBytes(int64(len(in) / 4096))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if n == 4096 {
			src.Reset(in)
			fr = frameReader{r: recordReader{src}, max: DefaultMaxFrameSize}
			n = 0
		}
		if _, _, err := fr.next(); err != nil && err != io.EOF {
			b.Fatal(err)
		}
		fr.ready()
		n++
	}
}

// BenchmarkFrameReader32 reads 51-byte frames (a 32-byte message as the
// root package encodes it).
func BenchmarkFrameReader32(b *testing.B) { benchFrameReader(b, 49) }

// BenchmarkFrameReader1K reads frames of a 1 KiB message.
func BenchmarkFrameReader1K(b *testing.B) { benchFrameReader(b, 1043) }

// countHandler counts the frames it is given.
type countHandler struct{ n int }

func (h *countHandler) Frames(_ Peer, frames [][]byte) { h.n += len(frames) }

// BenchmarkInPipeStream hands batches of 16 frames of 1 KiB (what one TLS
// record brings) from the reader to the deliverer, as a stream does:
// one op is one frame.
func BenchmarkInPipeStream(b *testing.B) {
	h := &countHandler{}
	q := newInPipe(&conn{closing: make(chan struct{})}, h)
	payload := make([]byte, 1024)
	batch := make([][]byte, 0, maxBatchFrames)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		batch = append(batch, payload)
		if n++; len(batch) == 16 {
			batch = q.hand(batch, 16*(1024+handedFrameCost), true)
		}
	}
	if len(batch) > 0 {
		q.hand(batch, len(batch)*(1024+handedFrameCost), true)
	}
	q.finish()
	if h.n != n {
		b.Fatalf("%d frames delivered of %d", h.n, n)
	}
}
