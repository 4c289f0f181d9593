package p2p

import (
	"bufio"
	"bytes"
	"testing"
)

// BenchmarkFrameReader32 reads 51-byte frames (a 32-byte message as the
// root package encodes it) from a connection's read buffer, as readLoop
// does before it hands them over in batches: one op is one frame.
func BenchmarkFrameReader32(b *testing.B) {
	var in []byte
	for range 4096 {
		in = appendFrame(in, frameData, make([]byte, 49))
	}
	src := bytes.NewReader(in)
	br := bufio.NewReaderSize(src, directReadBufSize)
	fr := frameReader{r: br, max: DefaultMaxFrameSize}
	b.SetBytes(int64(len(in) / 4096))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if n == 4096 {
			src.Reset(in)
			br.Reset(src)
			fr.win, fr.used = nil, 0 // what it peeked is gone with the reset
			n = 0
		}
		if _, _, err := fr.next(); err != nil {
			b.Fatal(err)
		}
		fr.ready()
		n++
	}
}
