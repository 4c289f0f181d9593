package wire_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal/internal/wire"
)

// Every writer's output reads back with its reader, in order, and the
// decoder ends exactly at the end of the input.
func TestRoundTrip(t *testing.T) {
	var b []byte
	b = wire.AppendUvarint(b, math.MaxUint64)
	b = wire.AppendVarint(b, math.MinInt64)
	b = wire.AppendString(b, "héllo")
	b = wire.AppendBytes(b, []byte{0, 1, 2})
	b = wire.AppendBool(b, true)
	b = wire.AppendBool(b, false)
	b = wire.AppendIdent(b, "a@host", 42, math.MaxUint64)
	b = append(b, 7)

	d := wire.NewDecoder(b)
	require.Equal(t, uint64(math.MaxUint64), d.Uvarint())
	require.Equal(t, int64(math.MinInt64), d.Varint())
	require.Equal(t, "héllo", d.Str())
	require.Equal(t, []byte{0, 1, 2}, d.Bytes())
	require.True(t, d.Bool())
	require.False(t, d.Bool())
	node, id, inc := d.Ident()
	require.Equal(t, "a@host", node)
	require.Equal(t, uint64(42), id)
	require.Equal(t, uint64(math.MaxUint64), inc)
	require.Equal(t, 1, d.Len())
	require.Equal(t, byte(7), d.Byte())
	require.NoError(t, d.Done())
	require.Equal(t, len(b), d.Offset())
}

// Malformed input is an error wrapping ErrMalformed, naming what and where.
func TestMalformed(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		read func(d *wire.Decoder)
	}{
		{"empty byte", nil, func(d *wire.Decoder) { d.Byte() }},
		{"truncated uvarint", []byte{0x80}, func(d *wire.Decoder) { d.Uvarint() }},
		{"overlong uvarint", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, func(d *wire.Decoder) { d.Uvarint() }},
		{"truncated varint", []byte{0xff}, func(d *wire.Decoder) { d.Varint() }},
		{"length beyond input", []byte{5, 'a'}, func(d *wire.Decoder) { d.Str() }},
		{"huge length", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, func(d *wire.Decoder) { d.Bytes() }},
		{"negative take", []byte{1}, func(d *wire.Decoder) { d.Take(-1) }},
		{"bad bool", []byte{2}, func(d *wire.Decoder) { d.Bool() }},
		{"count beyond input", []byte{3, 0, 0}, func(d *wire.Decoder) { d.Count(2) }},
		{"truncated ident", wire.AppendString(nil, "a@h"), func(d *wire.Decoder) { d.Ident() }},
		{"trailing bytes", []byte{1, 2}, func(d *wire.Decoder) { d.Byte() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := wire.NewDecoder(tc.in)
			tc.read(&d)
			require.ErrorIs(t, d.Done(), wire.ErrMalformed)
		})
	}
}

// The first error sticks: later reads return zero values and do not move.
func TestStickyError(t *testing.T) {
	d := wire.NewDecoder([]byte{9, 'x', 1, 2, 3})
	require.Equal(t, "", d.Str())
	err := d.Err()
	require.ErrorIs(t, err, wire.ErrMalformed)
	require.Contains(t, err.Error(), "length exceeds input at byte 1")
	off := d.Offset()
	require.Zero(t, d.Byte())
	require.Zero(t, d.Uvarint())
	require.Nil(t, d.Take(1))
	require.False(t, d.Bool())
	d.Fail("another")
	require.Equal(t, err, d.Err())
	require.Equal(t, off, d.Offset())
}

// Take and Bytes alias the input with their capacity clipped: appending to
// what they return never overwrites the rest of the input.
func TestTakeClipsCapacity(t *testing.T) {
	in := wire.AppendBytes(wire.AppendBytes(nil, []byte("ab")), []byte("cd"))
	d := wire.NewDecoder(in)
	first := d.Bytes()
	require.Equal(t, len(first), cap(first))
	_ = append(first, "XXXX"...)
	require.Equal(t, "cd", string(d.Bytes()))
	require.Same(t, &in[1], &first[0], "no copy")
}

func TestNewDecoderAt(t *testing.T) {
	d := wire.NewDecoderAt([]byte{1, 2, 3}, 2)
	require.Equal(t, byte(3), d.Byte())
	require.NoError(t, d.Done())
	for _, off := range []int{-1, 4} {
		d := wire.NewDecoderAt([]byte{1, 2, 3}, off)
		require.ErrorIs(t, d.Err(), wire.ErrMalformed)
		require.Zero(t, d.Byte())
	}
}

// FuzzDecoder drives a Decoder through a script of reads chosen by the
// input itself: it never panics, never returns a slice longer than what
// was left, and never moves past the input's end.
func FuzzDecoder(f *testing.F) {
	f.Add([]byte{})
	f.Add(wire.AppendIdent(wire.AppendString([]byte{3, 4}, "x"), "a@h", 1, 2))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		d := wire.NewDecoder(data)
		for i := 0; i < 64 && d.Err() == nil && d.Len() > 0; i++ {
			left := d.Len()
			switch d.Byte() % 9 {
			case 0:
				d.Uvarint()
			case 1:
				d.Varint()
			case 2:
				if s := d.Str(); len(s) > left {
					t.Fatalf("string of %d from %d bytes", len(s), left)
				}
			case 3:
				if b := d.Bytes(); len(b) > left || cap(b) != len(b) {
					t.Fatalf("bytes len %d cap %d from %d bytes", len(b), cap(b), left)
				}
			case 4:
				d.Bool()
			case 5:
				if n := d.Count(3); n*3 > left {
					t.Fatalf("count %d of 3 bytes from %d bytes", n, left)
				}
			case 6:
				d.Ident()
			case 7:
				d.Take(int(int8(d.Byte())))
			case 8:
				d.Length()
			}
			if d.Offset() > len(data) || d.Offset() < 0 {
				t.Fatalf("offset %d outside %d bytes", d.Offset(), len(data))
			}
		}
		_ = d.Done()
		if d.Err() != nil && d.Offset() > len(data) {
			t.Fatal("offset past the end after an error")
		}
	})
}
