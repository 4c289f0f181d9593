package nodal

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
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
	for _, v := range []any{nil, "s", []byte("b"), 7, Pid{Node: "a@h", ID: 1}, Down{Reason: ReasonNoProc},
		Exit{Reason: &ShutdownError{Reason: errors.New("x")}}, codecPoint{X: 1},
		supTerminate{id: "w", pid: Pid{Node: "a@h", ID: 2}, byPid: true}, supStartDynamic{args: []byte("x")}, supWhich{},
		supReply{err: &ChildError{ID: "w", Err: ErrChildRunning}, children: []ChildInfo{{ID: "w", Restarting: true}}, count: ChildCount{Specs: 1}}} {
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
	d := decoder{b: frame, owned: true}
	first := c.decodeValue(&d).([]byte)
	require.Equal(t, len(first), cap(first))
	_ = append(first, "XXXXXXXX"...)
	second := c.decodeValue(&d).([]byte)
	require.NoError(t, d.err)
	require.Equal(t, "first", string(first))
	require.Equal(t, "second", string(second))
	require.Same(t, &frame[2], &first[0], "no copy")
	// Without ownership (Codec.DecodeValue) the value is a copy.
	v, _, err := c.DecodeValue(frame)
	require.NoError(t, err)
	require.NotSame(t, &frame[2], &v.([]byte)[0])
}
