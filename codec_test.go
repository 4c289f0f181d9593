package nodal

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal/internal/wire"
)

type codecPoint struct {
	X, Y int
	Tag  string
	Who  Pid
}

type codecUnregistered struct{ A int }

func TestCodecRoundTripBuiltins(t *testing.T) {
	c := NewCodec()
	pid := Pid{Node: "a@127.0.0.1", ID: 42, Incarnation: 3}
	ref := Ref{Node: "b@127.0.0.1", ID: 7, Incarnation: 9}
	cases := []struct {
		name string
		v    any
	}{
		{"nil", nil},
		{"bytes", []byte("hello")},
		{"empty bytes", []byte{}},
		{"string", "héllo"},
		{"int", -12345},
		{"int64", int64(-1 << 60)},
		{"int32", int32(-7)},
		{"uint64", uint64(1 << 63)},
		{"uint32", uint32(7)},
		{"uint", uint(99)},
		{"float64", 3.25},
		{"true", true},
		{"false", false},
		{"pid", pid},
		{"ref", ref},
		{"down", Down{Ref: ref, Pid: pid, Reason: ReasonNoConnection}},
		{"exit", Exit{From: pid, Reason: ReasonKilled}},
		{"exit shutdown with", Exit{From: pid, Reason: &ShutdownError{Reason: ReasonNormal}}},
		{"nodedown", NodeDown{Node: "b@127.0.0.1", Reason: ReasonNoConnection}},
		{"reason", ReasonNormal},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := c.Marshal(tc.v)
			require.NoError(t, err)
			got, err := c.Unmarshal(b)
			require.NoError(t, err)
			require.Equal(t, tc.v, got)
		})
	}
}

func TestCodecReasonsKeepIdentity(t *testing.T) {
	c := NewCodec()
	for _, r := range []error{ReasonNormal, ReasonKill, ReasonKilled, ReasonShutdown, ReasonNoProc, ReasonNoConnection} {
		b, err := c.Marshal(Exit{Reason: r})
		require.NoError(t, err)
		got, err := c.Unmarshal(b)
		require.NoError(t, err)
		require.ErrorIs(t, got.(Exit).Reason, r, "sentinel reasons survive the wire as themselves")
	}
	// Other errors travel as their text.
	b, err := c.Marshal(Exit{Reason: errors.New("disk full")})
	require.NoError(t, err)
	got, err := c.Unmarshal(b)
	require.NoError(t, err)
	var re *RemoteError
	require.ErrorAs(t, got.(Exit).Reason, &re)
	require.Equal(t, "disk full", re.Text)
	// A panic keeps its value's text and its stack.
	b, err = c.Marshal(Exit{Reason: &PanicError{Value: "boom", Stack: []byte("stack")}})
	require.NoError(t, err)
	got, err = c.Unmarshal(b)
	require.NoError(t, err)
	var pe *PanicError
	require.ErrorAs(t, got.(Exit).Reason, &pe)
	require.Equal(t, "boom", pe.Value)
	require.Equal(t, []byte("stack"), pe.Stack)
}

func TestCodecRegisteredType(t *testing.T) {
	c := NewCodec()
	require.NoError(t, c.Register("test.point", codecPoint{}))
	require.NoError(t, c.Register("test.point", codecPoint{}), "same name, same type: no-op")
	require.ErrorIs(t, c.Register("test.point", codecUnregistered{}), ErrCodec)
	require.ErrorIs(t, c.Register("other", codecPoint{}), ErrCodec)
	require.ErrorIs(t, c.Register("fn", func() {}), ErrCodec)
	require.ErrorIs(t, c.Register("str", "x"), ErrCodec)
	require.Equal(t, []string{"test.point"}, c.Types())

	v := codecPoint{X: 1, Y: -2, Tag: "t", Who: Pid{Node: "a@h", ID: 1, Incarnation: 2}}
	b, err := c.Marshal(v)
	require.NoError(t, err)
	got, err := c.Unmarshal(b)
	require.NoError(t, err)
	require.Equal(t, v, got)

	// Deterministic: the same value always encodes to the same bytes.
	b2, err := c.Marshal(v)
	require.NoError(t, err)
	require.Equal(t, b, b2)
}

func TestCodecUnregisteredFailsAtSender(t *testing.T) {
	c := NewCodec()
	_, err := c.Marshal(codecUnregistered{A: 1})
	require.ErrorIs(t, err, ErrUnregisteredType)
	require.ErrorIs(t, err, ErrCodec)
	require.Contains(t, err.Error(), "codecUnregistered")
	_, err = c.Marshal(make(chan int))
	require.ErrorIs(t, err, ErrCodec)
}

func TestCodecUnknownTypeAtReceiver(t *testing.T) {
	sender, receiver := NewCodec(), NewCodec()
	require.NoError(t, sender.Register("test.point", codecPoint{}))
	b, err := sender.Marshal(codecPoint{X: 1})
	require.NoError(t, err)
	_, err = receiver.Unmarshal(b)
	require.ErrorIs(t, err, ErrUnregisteredType)
}

func TestCodecMalformedInput(t *testing.T) {
	c := NewCodec()
	require.NoError(t, c.Register("test.point", codecPoint{}))
	good, err := c.Marshal(codecPoint{X: 1, Tag: "abc"})
	require.NoError(t, err)
	// Every truncation of a valid encoding is an error, never a panic.
	for i := 0; i < len(good); i++ {
		_, err := c.Unmarshal(good[:i])
		require.Error(t, err, "truncated at %d", i)
	}
	for _, bad := range [][]byte{
		{},
		{0xff},
		{tagBytes, 0xff, 0xff, 0xff, 0xff, 0x0f}, // huge length, no data
		{tagBool, 7},
		{tagReason, 200},
		{tagInt32, 0xff, 0xff, 0xff, 0xff, 0x7f},
		append([]byte{tagNil}, 1), // trailing byte
	} {
		_, err := c.Unmarshal(bad)
		require.ErrorIs(t, err, ErrCodec, "input %x", bad)
	}
}

func FuzzCodecDecode(f *testing.F) {
	c := NewCodec()
	if err := c.Register("test.point", codecPoint{}); err != nil {
		f.Fatal(err)
	}
	if err := c.Register("test.blob", codecBlob{}); err != nil {
		f.Fatal(err)
	}
	for _, v := range []any{nil, "s", []byte("b"), 7, Pid{Node: "a@h", ID: 1}, Down{Reason: ReasonNoProc},
		Exit{Reason: &ShutdownError{Reason: errors.New("x")}}, codecPoint{X: 1},
		codecBlob{Name: "w", Who: Pid{Node: "a@h", ID: 2}, Data: []byte("x"), Flag: true},
		CallRequest{Req: codecBlob{Name: "nested"}}} {
		b, err := c.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := c.Unmarshal(data)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes.
		if _, err := c.Marshal(v); err != nil {
			t.Fatalf("decoded %#v but cannot re-encode: %v", v, err)
		}
	})
}

func BenchmarkCodecBytes32(b *testing.B) {
	c := NewCodec()
	payload := make([]byte, 32)
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf, _ = c.AppendValue(buf[:0], payload)
		if _, _, err := c.DecodeValue(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCodecRegistered(b *testing.B) {
	c := NewCodec()
	if err := c.Register("test.point", codecPoint{}); err != nil {
		b.Fatal(err)
	}
	v := codecPoint{X: 1, Y: 2, Tag: "hello", Who: Pid{Node: "a@127.0.0.1", ID: 5, Incarnation: 1}}
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		var err error
		buf, err = c.AppendValue(buf[:0], v)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.DecodeValue(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// A []byte decoded from a frame the decoder owns points into the frame
// (no copy), with its capacity clipped: appending to it never overwrites
// what follows in the frame.
func TestCodecOwnedBytesAliasClipped(t *testing.T) {
	c := NewCodec()
	frame, err := c.AppendValue(nil, []byte("first"))
	require.NoError(t, err)
	frame, err = c.AppendValue(frame, []byte("second"))
	require.NoError(t, err)
	d := newDecoder(frame, true)
	first := c.decodeValue(&d).([]byte)
	require.Equal(t, len(first), cap(first))
	_ = append(first, "XXXXXXXX"...)
	second := c.decodeValue(&d).([]byte)
	require.NoError(t, d.err())
	require.Equal(t, "first", string(first))
	require.Equal(t, "second", string(second))
	require.Same(t, &frame[2], &first[0], "no copy")
	// Without ownership (Codec.DecodeValue) the value is a copy.
	v, _, err := c.DecodeValue(frame)
	require.NoError(t, err)
	require.NotSame(t, &frame[2], &v.([]byte)[0])
}

// codecBlob encodes itself (the codec's extension point) with internal/wire.
type codecBlob struct {
	Name string
	Who  Pid
	Data []byte
	Flag bool
}

func (v codecBlob) AppendBinary(b []byte) ([]byte, error) {
	b = wire.AppendString(b, v.Name)
	b = appendPid(b, v.Who)
	b = wire.AppendBytes(b, v.Data)
	return wire.AppendBool(b, v.Flag), nil
}

func (v *codecBlob) UnmarshalBinary(data []byte) error {
	d := wire.NewDecoder(data)
	v.Name = d.Str()
	node, id, inc := d.Ident()
	v.Who = Pid{Node: node, ID: id, Incarnation: inc}
	v.Data = append([]byte(nil), d.Bytes()...)
	v.Flag = d.Bool()
	return d.Done()
}

// codecSpy records the bytes its UnmarshalBinary was handed.
type codecSpy struct{ N int }

var codecSpyGot [][]byte

func (v codecSpy) AppendBinary(b []byte) ([]byte, error) {
	for range v.N {
		b = append(b, 0xAB)
	}
	return b, nil
}

func (v *codecSpy) UnmarshalBinary(data []byte) error {
	codecSpyGot = append(codecSpyGot, data)
	v.N = len(data)
	return nil
}

// codecFaulty fails or panics in its methods, as its fields say.
type codecFaulty struct{ FailEnc, PanicEnc, FailDec, PanicDec bool }

func (v codecFaulty) AppendBinary(b []byte) ([]byte, error) {
	switch {
	case v.FailEnc:
		return b, errors.New("no encoding today")
	case v.PanicEnc:
		panic("encoder bug")
	}
	return wire.AppendBool(wire.AppendBool(b, v.FailDec), v.PanicDec), nil
}

func (v *codecFaulty) UnmarshalBinary(data []byte) error {
	d := wire.NewDecoder(data)
	v.FailDec, v.PanicDec = d.Bool(), d.Bool()
	switch {
	case v.FailDec:
		return errors.New("no decoding today")
	case v.PanicDec:
		var m map[string]int
		m["x"] = 1 // a nil-map write: a runtime panic
	}
	return d.Done()
}

// codecHalfAppender has AppendBinary but no UnmarshalBinary.
type codecHalfAppender struct{}

func (codecHalfAppender) AppendBinary(b []byte) ([]byte, error) { return b, nil }

// codecHalfUnmarshaler has UnmarshalBinary but no AppendBinary.
type codecHalfUnmarshaler struct{}

func (*codecHalfUnmarshaler) UnmarshalBinary([]byte) error { return nil }

// A registered type that encodes itself travels by its own methods, also
// nested in a built-in container, and round-trips exactly.
func TestCodecBinaryTypeRoundTrip(t *testing.T) {
	c := NewCodec()
	require.NoError(t, c.Register("test.blob", codecBlob{}))
	require.NoError(t, c.Register("test.blob", codecBlob{}), "registering again is a no-op")
	v := codecBlob{Name: "n", Who: Pid{Node: "a@h", ID: 9, Incarnation: 2}, Data: []byte{1, 2, 3}, Flag: true}
	for _, in := range []any{v, CallRequest{From: From{Pid: v.Who}, Req: v}} {
		b, err := c.Marshal(in)
		require.NoError(t, err)
		out, err := c.Unmarshal(b)
		require.NoError(t, err)
		require.Equal(t, in, out)
	}
	b, err := c.Marshal(v)
	require.NoError(t, err)
	require.Equal(t, tagBinary, b[0], "its own tag, not CBOR's")
}

// UnmarshalBinary gets exactly the bytes AppendBinary wrote: not the rest
// of the frame, with its capacity clipped so an append cannot reach it.
func TestCodecBinaryGetsExactlyItsBytes(t *testing.T) {
	c := NewCodec()
	require.NoError(t, c.Register("test.spy", codecSpy{}))
	codecSpyGot = nil
	frame, err := c.AppendValue(nil, codecSpy{N: 3})
	require.NoError(t, err)
	frame, err = c.AppendValue(frame, codecSpy{N: 200}) // a two-byte length
	require.NoError(t, err)
	frame, err = c.AppendValue(frame, "after")
	require.NoError(t, err)
	d := newDecoder(frame, false)
	require.Equal(t, codecSpy{N: 3}, c.decodeValue(&d))
	require.Equal(t, codecSpy{N: 200}, c.decodeValue(&d))
	require.Equal(t, "after", c.decodeValue(&d))
	require.NoError(t, d.done())
	require.Len(t, codecSpyGot, 2)
	for i, n := range []int{3, 200} {
		require.Len(t, codecSpyGot[i], n)
		require.Equal(t, n, cap(codecSpyGot[i]), "capacity clipped")
		for _, x := range codecSpyGot[i] {
			require.Equal(t, byte(0xAB), x)
		}
	}
}

// Errors and panics in either method are codec errors, at the sender or
// at the receiver, never crashes.
func TestCodecBinaryFaults(t *testing.T) {
	c := NewCodec()
	require.NoError(t, c.Register("test.faulty", codecFaulty{}))
	for _, v := range []codecFaulty{{FailEnc: true}, {PanicEnc: true}} {
		b, err := c.AppendValue([]byte("keep"), v)
		var ce *CodecError
		require.ErrorAs(t, err, &ce)
		require.ErrorIs(t, err, ErrCodec)
		require.Equal(t, "keep", string(b), "nothing appended on failure")
	}
	for _, v := range []codecFaulty{{FailDec: true}, {PanicDec: true}} {
		b, err := c.Marshal(v)
		require.NoError(t, err)
		_, err = c.Unmarshal(b)
		require.ErrorIs(t, err, ErrCodec)
		require.Contains(t, err.Error(), "test.faulty")
	}
}

// Register refuses a type that could travel one way only, and tells a
// type that encodes itself from a CBOR type on the wire.
func TestCodecRegisterBinaryChecks(t *testing.T) {
	c := NewCodec()
	err := c.Register("test.half1", codecHalfAppender{})
	require.ErrorIs(t, err, ErrCodec)
	require.Contains(t, err.Error(), "BinaryUnmarshaler")
	err = c.Register("test.half2", codecHalfUnmarshaler{})
	require.ErrorIs(t, err, ErrCodec)
	require.Contains(t, err.Error(), "BinaryAppender")

	// The same name as CBOR on one node and self-encoding on the other is
	// a decode error, not garbage.
	bin, cb := NewCodec(), NewCodec()
	require.NoError(t, bin.Register("test.x", codecBlob{}))
	require.NoError(t, cb.Register("test.x", codecPoint{}))
	b, err := bin.Marshal(codecBlob{Name: "a"})
	require.NoError(t, err)
	_, err = cb.Unmarshal(b)
	require.ErrorIs(t, err, ErrCodec)
	b, err = cb.Marshal(codecPoint{X: 1})
	require.NoError(t, err)
	_, err = bin.Unmarshal(b)
	require.ErrorIs(t, err, ErrCodec)
	// Unknown at the receiver.
	b, err = bin.Marshal(codecBlob{})
	require.NoError(t, err)
	_, err = NewCodec().Unmarshal(b)
	require.ErrorIs(t, err, ErrUnregisteredType)
}

// A self-encoding value's length is bounded by the input: a huge length
// or a truncated body is an error before anything is read or allocated.
func TestCodecBinaryBoundedByInput(t *testing.T) {
	c := NewCodec()
	require.NoError(t, c.Register("test.blob", codecBlob{}))
	good, err := c.Marshal(codecBlob{Name: "abc", Data: []byte("0123456789")})
	require.NoError(t, err)
	for i := range len(good) {
		_, err := c.Unmarshal(good[:i])
		require.ErrorIs(t, err, ErrCodec, "truncated at %d", i)
	}
	huge := wire.AppendUvarint(wire.AppendString([]byte{tagBinary}, "test.blob"), 1<<62)
	_, err = c.Unmarshal(huge)
	require.ErrorIs(t, err, ErrCodec)
}
