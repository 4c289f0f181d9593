package registry

import (
	"testing"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/crdt"
)

func seedState() (*crdt.ORMap[string, heldClaim], *crdt.ORMap[string, heldClaim]) {
	m := crdt.NewORMap(crdt.ReplicaID{Name: "a@h", Epoch: 1}, nameCodec{}, regCodec{})
	d := m.Add("x", toClaim(Registration{Pid: nodal.Pid{Node: "a@h", ID: 3, Incarnation: 1}, Meta: "m", At: 5, Resolver: LowerNodeExit}))
	return m, d
}

// The registry's state and deltas as they come from the network: decoded
// with the registry's codecs (names and metadata bounded), they re-encode
// to the same bytes.
func FuzzDecodeRegistryState(f *testing.F) {
	m, d := seedState()
	b, _ := m.MarshalBinary()
	f.Add(b)
	b, _ = d.MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := crdt.DecodeORMap(b, nameCodec{}, regCodec{})
		if err != nil {
			return
		}
		again, _ := s.MarshalBinary()
		if string(again) != string(b) {
			t.Fatalf("%x re-encodes as %x", b, again)
		}
		for k, sibs := range s.All() {
			if len(k) == 0 || len(k) > MaxNameLen {
				t.Fatalf("name of %d bytes decoded", len(k))
			}
			for _, sib := range sibs {
				if len(sib.Value.meta()) > MaxMetaLen {
					t.Fatalf("metadata of %d bytes decoded", len(sib.Value.meta()))
				}
			}
		}
	})
}

func FuzzDecodeRegistration(f *testing.F) {
	f.Add(regCodec{}.Append(nil, toClaim(Registration{Pid: nodal.Pid{Node: "a@h", ID: 3, Incarnation: 1}, Meta: "m", At: -5, Resolver: KeepOldest})))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, n, err := regCodec{}.Decode(b)
		if err != nil {
			return
		}
		if again := (regCodec{}).Append(nil, g); string(again) != string(b[:n]) {
			t.Fatalf("%x re-encodes as %x", b[:n], again)
		}
	})
}

func FuzzDecodeNotice(f *testing.F) {
	_, d := seedState()
	dot := d.LiveDots()[0]
	_, g, _ := d.Lookup(dot)
	f.Add(conflictNotice{name: "x", from: dot, fromClaim: g, to: crdt.Dot{Replica: crdt.ReplicaID{Name: "b@h", Epoch: 2}, Counter: 9}}.encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := decodeNotice(b)
		if err != nil {
			return
		}
		if again := n.encode(); string(again) != string(b) {
			t.Fatalf("%x re-encodes as %x", b, again)
		}
	})
}
