package supervisor

import (
	"errors"
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
)

// Every request and the reply survive the codec as registered types that
// encode themselves; errors keep their identity and their words.
func TestWireRoundTrip(t *testing.T) {
	c := nodal.NewCodec()
	registerTypes(c)
	require.Contains(t, c.Types(), requestTypeName)
	require.Contains(t, c.Types(), replyTypeName)
	pid := nodal.Pid{Node: "b@h", ID: 7, Incarnation: 3}
	for _, v := range []any{
		request{op: opStartDynamic, raw: []byte{1, 2, 3}, encoded: true},
		request{op: opTerminate, id: "w", pid: pid, byPid: true},
		request{op: opRestart, id: "w"},
		request{op: opDelete, id: "w"},
		request{op: opWhich}, request{op: opCount}, request{op: opStop},
		reply{pid: pid},
		reply{children: []ChildInfo{{ID: "w", Pid: pid, Restarting: true, Type: ChildSupervisor}, {}},
			count: ChildCount{Specs: 2, Active: 1, Supervisors: 1, Workers: 1}},
	} {
		b, err := c.Marshal(v)
		require.NoError(t, err)
		out, err := c.Unmarshal(b)
		require.NoError(t, err)
		require.Equal(t, v, out)
	}

	inner := errors.New("disk full")
	b, err := c.Marshal(reply{err: &ChildError{ID: "w", Pid: pid, Err: &ChildError{Err: errors.Join(ErrStartChild, inner)}}})
	require.NoError(t, err)
	out, err := c.Unmarshal(b)
	require.NoError(t, err)
	rerr := out.(reply).err
	var ce *ChildError
	require.ErrorAs(t, rerr, &ce)
	require.Equal(t, "w", ce.ID)
	require.Equal(t, pid, ce.Pid)
	require.ErrorIs(t, rerr, ErrStartChild, "a sentinel keeps its identity")
	require.Contains(t, rerr.Error(), "disk full", "and the text its words")
	for _, s := range sentinels {
		b, err := c.Marshal(reply{err: s})
		require.NoError(t, err)
		out, err := c.Unmarshal(b)
		require.NoError(t, err)
		require.ErrorIs(t, out.(reply).err, s)
	}
	b, err = c.Marshal(reply{err: errors.New("other")})
	require.NoError(t, err)
	out, err = c.Unmarshal(b)
	require.NoError(t, err)
	var re *nodal.RemoteError
	require.ErrorAs(t, out.(reply).err, &re)
	require.Equal(t, "other", re.Text)
}

// What cannot leave its node says so at the sender.
func TestWireRefusesLocalOnlyRequests(t *testing.T) {
	c := nodal.NewCodec()
	registerTypes(c)
	_, err := c.Marshal(request{op: opStartChild, spec: Child{ID: "x"}})
	require.ErrorIs(t, err, nodal.ErrCodec)
	require.Contains(t, err.Error(), "StartChild on the supervisor's node")
	_, err = c.Marshal(request{op: opStartDynamic, args: "not encoded"})
	require.ErrorIs(t, err, nodal.ErrCodec)
}

// Malformed requests and replies are errors, never panics, and a child
// count beyond the input allocates nothing.
func TestWireMalformed(t *testing.T) {
	for _, in := range [][]byte{
		nil, {0}, {99}, {opTerminate}, {opTerminate, 1, 'w', 0, 0, 0, 2}, {opWhich, 0},
	} {
		var r request
		require.Error(t, r.UnmarshalBinary(in), "request %x", in)
	}
	pid := appendPid(nil, nodal.Pid{})
	for _, in := range [][]byte{
		nil,
		append(append([]byte{}, pid...), errNil, 0xff, 0xff, 0xff, 0xff, 0x0f), // 4G children
		append(append([]byte{}, pid...), errSentinel),                          // truncated
		append(append([]byte{}, pid...), 9),                                    // bad form
		append(append([]byte{}, pid...), errChild, 0, 0, 0, 0, errChild, 0, 0, 0, 0, // too deep
			errChild, 0, 0, 0, 0, errChild, 0, 0, 0, 0, errChild, 0, 0, 0, 0, errNil, 0, 0, 0, 0, 0),
	} {
		var r reply
		require.Error(t, r.UnmarshalBinary(in), "reply %x", in)
	}
}

// FuzzWire feeds arbitrary bytes to both decoders: they never panic, and
// whatever decodes encodes again and decodes to the same value (varints
// may have been padded, so the bytes may differ).
func FuzzWire(f *testing.F) {
	for _, v := range []interface{ AppendBinary([]byte) ([]byte, error) }{
		request{op: opTerminate, id: "w", pid: nodal.Pid{Node: "a@h", ID: 2}, byPid: true},
		request{op: opStartDynamic, raw: []byte("x"), encoded: true},
		request{op: opWhich},
		reply{err: &ChildError{ID: "w", Err: ErrChildRunning}, children: []ChildInfo{{ID: "w", Restarting: true}}, count: ChildCount{Specs: 1}},
	} {
		b, err := v.AppendBinary(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r request
		if r.UnmarshalBinary(data) == nil {
			b, err := r.AppendBinary(nil)
			var again request
			if err != nil || again.UnmarshalBinary(b) != nil || !reflect.DeepEqual(r, again) {
				t.Fatalf("request %x re-encodes as %x (%v), decoding to %#v", data, b, err, again)
			}
		}
		var p reply
		if p.UnmarshalBinary(data) == nil {
			if _, err := p.AppendBinary(nil); err != nil {
				t.Fatalf("reply %x does not re-encode: %v", data, err)
			}
		}
	})
}
