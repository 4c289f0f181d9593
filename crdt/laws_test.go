package crdt_test

import (
	"testing"

	"github.com/nodal-go/nodal/crdt"
	"github.com/nodal-go/nodal/crdt/crdttest"
	"pgregory.net/rapid"
)

var small = []string{"a", "b", "c", "d"}

func TestLawsAWORSet(t *testing.T) {
	crdttest.CheckLaws(t, crdttest.Gen[*crdt.AWORSet[string]]{
		New: func(r crdt.ReplicaID, limit int) *crdt.AWORSet[string] {
			s := crdt.NewAWORSet(r, crdt.StringCodec{})
			s.SetLogLimit(limit)
			return s
		},
		Mutate: func(t *rapid.T, s *crdt.AWORSet[string]) *crdt.AWORSet[string] {
			e := rapid.SampledFrom(small).Draw(t, "elem")
			if rapid.IntRange(0, 2).Draw(t, "op") < 2 {
				return s.Add(e)
			}
			return s.Remove(e)
		},
		Decode: func(b []byte) (*crdt.AWORSet[string], error) { return crdt.DecodeAWORSet(b, crdt.StringCodec{}) },
	})
}

func TestLawsMVRegister(t *testing.T) {
	crdttest.CheckLaws(t, crdttest.Gen[*crdt.MVRegister[string]]{
		New: func(r crdt.ReplicaID, limit int) *crdt.MVRegister[string] {
			x := crdt.NewMVRegister(r, crdt.StringCodec{})
			x.SetLogLimit(limit)
			return x
		},
		Mutate: func(t *rapid.T, x *crdt.MVRegister[string]) *crdt.MVRegister[string] {
			if rapid.IntRange(0, 4).Draw(t, "op") == 0 {
				return x.Clear()
			}
			return x.Write(rapid.SampledFrom(small).Draw(t, "value"))
		},
		Decode: func(b []byte) (*crdt.MVRegister[string], error) {
			return crdt.DecodeMVRegister(b, crdt.StringCodec{})
		},
	})
}

func TestLawsORMap(t *testing.T) {
	crdttest.CheckLaws(t, crdttest.Gen[*crdt.ORMap[string, uint64]]{
		New: func(r crdt.ReplicaID, limit int) *crdt.ORMap[string, uint64] {
			m := crdt.NewORMap(r, crdt.StringCodec{}, crdt.Uint64Codec{})
			m.SetLogLimit(limit)
			return m
		},
		Mutate: mutateORMap,
		Decode: func(b []byte) (*crdt.ORMap[string, uint64], error) {
			return crdt.DecodeORMap(b, crdt.StringCodec{}, crdt.Uint64Codec{})
		},
	})
}

// TestLawsORMapManySiblings runs the ORMap laws with keys switching to their
// set form beyond 2 siblings, the form a large process group lives in.
func TestLawsORMapManySiblings(t *testing.T) {
	defer crdt.SetBigKey(2)()
	TestLawsORMap(t)
}

func mutateORMap(t *rapid.T, m *crdt.ORMap[string, uint64]) *crdt.ORMap[string, uint64] {
	k := rapid.SampledFrom(small).Draw(t, "key")
	v := rapid.Uint64Range(0, 3).Draw(t, "value")
	switch rapid.IntRange(0, 6).Draw(t, "op") {
	case 6:
		var own []crdt.Dot
		for _, s := range m.Get(k) {
			if s.Dot.Replica == m.Self() {
				own = append(own, s.Dot)
			}
		}
		return m.Replace(k, v, own...)
	case 0:
		return m.Put(k, v)
	case 1:
		return m.Add(k, v)
	case 2:
		return m.Insert(k, v)
	case 3:
		return m.Delete(k, v)
	case 4:
		return m.Remove(k)
	default:
		live := m.LiveDots()
		if len(live) == 0 {
			return m.Add(k, v)
		}
		return m.RemoveDots(rapid.SampledFrom(live).Draw(t, "dot"))
	}
}
