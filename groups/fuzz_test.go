package groups

import (
	"testing"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/crdt"
)

// Network input: a scope's delta (what replication decodes with the
// groups' codecs) and the codecs themselves never panic, and what decodes
// re-encodes canonically.
func FuzzDecodeState(f *testing.F) {
	s := newState(crdt.ReplicaID{Name: "a@h", Epoch: 3})
	p := nodal.Pid{Node: "a@h", ID: 1, Incarnation: 3}
	d := s.Add("g", Membership{Pid: p, Meta: []byte("m")})
	d.Merge(s.Add("g", Membership{Pid: p}))
	s.RemoveDots(d.LiveDots()[0])
	for _, v := range []*state{d, s, s.DeltaFor(crdt.Digest{})} {
		b, _ := v.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeState(b)
		if err != nil {
			return
		}
		out, err := st.MarshalBinary()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, err := decodeState(out)
		if err != nil || !again.Equal(st) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzMembershipCodec(f *testing.F) {
	c := membershipCodec{}
	f.Add(c.Append(nil, Membership{Pid: nodal.Pid{Node: "a@h", ID: 1, Incarnation: 2}, Meta: []byte("x")}))
	f.Add([]byte{3, 'a', '@', 'h', 0x80, 0x01, 2, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, n, err := c.Decode(b)
		if err != nil {
			return
		}
		if n > len(b) || len(m.Meta) > MaxMeta {
			t.Fatalf("decoded %d of %d bytes, meta %d", n, len(b), len(m.Meta))
		}
		if enc := c.Append(nil, m); string(enc) != string(b[:n]) {
			t.Fatalf("not canonical: %x vs %x", enc, b[:n])
		}
	})
}

func FuzzGroupCodec(f *testing.F) {
	c := groupCodec{}
	f.Add(c.Append(nil, "room"))
	f.Add([]byte{2, 0xff, 0xfe})
	f.Fuzz(func(t *testing.T, b []byte) {
		g, n, err := c.Decode(b)
		if err != nil {
			return
		}
		if ValidateGroup(g) != nil {
			t.Fatalf("decoded an invalid name %q", g)
		}
		if enc := c.Append(nil, g); string(enc) != string(b[:n]) {
			t.Fatalf("not canonical: %x vs %x", enc, b[:n])
		}
	})
}
