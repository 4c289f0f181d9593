package crdt

import (
	"cmp"
	"encoding/binary"
	"errors"
	"strings"
)

// Codec gives this package what it needs of a key or value type chosen by the
// caller: a total order (for canonical iteration, String and encoding) and a
// self-delimiting binary encoding.
//
// Compare must be a total order consistent with equality of the encodings:
// Compare(a, b) == 0 exactly when Append(nil, a) and Append(nil, b) are equal.
// Decode reads one value from the front of src and returns how many bytes it
// used; on untrusted input it must return an error instead of panicking and
// must not allocate more than len(src) justifies. Implementations must be
// pure and safe for concurrent use.
type Codec[T any] interface {
	Compare(a, b T) int
	Append(dst []byte, v T) []byte
	Decode(src []byte) (v T, n int, err error)
}

var errCodec = errors.New("crdt: bad value encoding")

// StringCodec encodes a string as a uvarint length and its bytes, ordered
// bytewise.
type StringCodec struct{}

// Compare orders strings bytewise.
func (StringCodec) Compare(a, b string) int { return strings.Compare(a, b) }

// Append appends the length-prefixed string.
func (StringCodec) Append(dst []byte, v string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(v)))
	return append(dst, v...)
}

// Decode reads a length-prefixed string.
func (StringCodec) Decode(src []byte) (string, int, error) {
	l, n := binary.Uvarint(src)
	if n <= 0 || l > uint64(len(src)-n) {
		return "", 0, errCodec
	}
	return string(src[n : n+int(l)]), n + int(l), nil
}

// Uint64Codec encodes a uint64 as a uvarint, ordered numerically.
type Uint64Codec struct{}

// Compare orders numerically.
func (Uint64Codec) Compare(a, b uint64) int { return cmp.Compare(a, b) }

// Append appends the uvarint.
func (Uint64Codec) Append(dst []byte, v uint64) []byte { return binary.AppendUvarint(dst, v) }

// Decode reads a uvarint; it refuses non-minimal encodings so that equal
// values always have equal encodings.
func (Uint64Codec) Decode(src []byte) (uint64, int, error) {
	v, n := binary.Uvarint(src)
	if n <= 0 || n != uvarintLen(v) {
		return 0, 0, errCodec
	}
	return v, n, nil
}

// Unit is the value of a type that carries no information, used as the value
// of set elements and as the only key of a register.
type Unit struct{}

// UnitCodec encodes Unit as zero bytes.
type UnitCodec struct{}

// Compare reports that all units are equal.
func (UnitCodec) Compare(Unit, Unit) int { return 0 }

// Append appends nothing.
func (UnitCodec) Append(dst []byte, _ Unit) []byte { return dst }

// Decode reads nothing.
func (UnitCodec) Decode([]byte) (Unit, int, error) { return Unit{}, 0, nil }

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
