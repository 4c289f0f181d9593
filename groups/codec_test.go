package groups

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/crdt"
)

func TestMembershipCodecRoundTrip(t *testing.T) {
	c := membershipCodec{}
	for _, m := range []Membership{
		{Pid: nodal.Pid{Node: "a@h", ID: 1, Incarnation: 2}},
		{Pid: nodal.Pid{Node: "a@h", ID: 1 << 40, Incarnation: 1 << 62}, Meta: []byte("role=x")},
		{Pid: nodal.Pid{Node: "b@10.0.0.1", ID: 7, Incarnation: 9}, Meta: bytes.Repeat([]byte{0}, MaxMeta)},
	} {
		b := c.Append(nil, m)
		got, n, err := c.Decode(append(b, 0xff))
		require.NoError(t, err)
		require.Equal(t, len(b), n)
		require.Zero(t, c.Compare(m, got))
		require.Equal(t, b, c.Append(nil, got), "canonical")
	}
}

func TestCodecsRefuseBadInput(t *testing.T) {
	mc, gc := membershipCodec{}, groupCodec{}
	good := mc.Append(nil, Membership{Pid: nodal.Pid{Node: "a@h", ID: 1, Incarnation: 2}, Meta: []byte("m")})
	for name, b := range map[string][]byte{
		"empty":             nil,
		"truncated":         good[:len(good)-1],
		"empty node":        {0, 1, 2, 0},
		"non-minimal id":    append(append([]byte{3}, "a@h"...), 0x81, 0x00, 2, 0),
		"meta too large":    append(append([]byte{3}, "a@h"...), 1, 2, 0x81, 0x08),
		"node name too big": append([]byte{0x80, 0x02}, bytes.Repeat([]byte{'a'}, 256)...),
	} {
		_, _, err := mc.Decode(b)
		require.ErrorIs(t, err, ErrMalformed, name)
	}
	for name, b := range map[string][]byte{
		"empty name":   {0},
		"too long":     append([]byte{0x80, 0x02}, bytes.Repeat([]byte{'a'}, 256)...),
		"bad utf8":     {2, 0xff, 0xfe},
		"non-minimal":  {0x81, 0x00, 'a'},
		"past the end": {5, 'a'},
	} {
		_, _, err := gc.Decode(b)
		require.ErrorIs(t, err, ErrMalformed, name)
	}
	// A delta with a bad group name is refused as a whole by the crdt
	// decoder.
	s := newState(crdt.ReplicaID{Name: "a@h", Epoch: 2})
	d := s.Add("g", Membership{Pid: nodal.Pid{Node: "a@h", ID: 1, Incarnation: 2}})
	b, err := d.MarshalBinary()
	require.NoError(t, err)
	_, err = decodeState(b)
	require.NoError(t, err)
	i := bytes.Index(b, []byte{1, 'g'})
	require.Positive(t, i)
	bad := bytes.Clone(b)
	bad[i] = 0 // the name's length: now empty
	_, err = decodeState(bad)
	require.Error(t, err)
	require.True(t, errors.Is(err, crdt.ErrMalformed) || errors.Is(err, ErrMalformed), "%v", err)
}
