package nodal

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal/internal/wire"
)

// binPair encodes itself and allocates nothing of its own when decoded.
type binPair struct{ A, B uint64 }

func (p binPair) AppendBinary(b []byte) ([]byte, error) {
	return wire.AppendUvarint(wire.AppendUvarint(b, p.A), p.B), nil
}

func (p *binPair) UnmarshalBinary(data []byte) error {
	d := wire.NewDecoder(data)
	a, b := d.Uvarint(), d.Uvarint()
	if err := d.Done(); err != nil {
		return err
	}
	*p = binPair{A: a, B: b}
	return nil
}

type cborPair struct{ X, Y int }

// A decoded registered value is boxed where the decoder made it: one
// allocation for a binPair (its value), not a second to copy it into an
// interface; likewise for a CBOR struct.
func TestCodecDecodedValueBoxedInPlace(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	c := NewCodec()
	require.NoError(t, c.Register("test.binpair", binPair{}))
	require.NoError(t, c.Register("test.cborpair", cborPair{}))
	for _, tc := range []struct {
		v      any
		allocs float64
	}{
		{binPair{A: 1, B: 300}, 1},
		{cborPair{X: 1, Y: -2}, 1},
	} {
		b, err := c.Marshal(tc.v)
		require.NoError(t, err)
		got := testing.AllocsPerRun(100, func() {
			v, err := c.Unmarshal(b)
			if err != nil || v != tc.v {
				t.Fatalf("decoded %#v, %v; want %#v", v, err, tc.v)
			}
		})
		require.Equal(t, tc.allocs, got, "allocations to decode a %T", tc.v)
	}
}

type onePtr struct{ P *int }

// Types an interface holds in its data word itself (pointers, maps, a
// struct of one pointer) decode as well as those it holds by pointer.
func TestCodecPointerShapedTypesRoundTrip(t *testing.T) {
	c := NewCodec()
	one := 1
	vals := []any{
		map[string]int{"a": 1, "b": 2},
		&codecPoint{X: 1, Tag: "p"},
		onePtr{P: &one},
		[1]*int{&one},
		codecPoint{X: 3, Y: 4, Tag: "t", Who: Pid{Node: "a@h", ID: 2, Incarnation: 1}},
		struct{}{},
		[0]int{},
	}
	for i, v := range vals {
		require.NoError(t, c.Register("test.shape."+string(rune('a'+i)), v))
		b, err := c.Marshal(v)
		require.NoError(t, err)
		got, err := c.Unmarshal(b)
		require.NoError(t, err)
		require.Equal(t, v, got, "%T", v)
	}
}
