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
