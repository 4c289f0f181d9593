package crdt_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/nodal-go/nodal/crdt"
)

// seeds returns valid encodings of a few related states, deltas and a digest.
func seeds() (maps, sets, regs, digests [][]byte) {
	a, b := newMap(ra), newMap(rb)
	b.SetLogLimit(2)
	for i := range 6 {
		d := a.Put(fmt.Sprint("k", i%3), uint64(i))
		if i%2 == 0 {
			b.Merge(d)
		}
	}
	b.Add("k0", 9)
	b.RemoveDots(crdt.Dot{Replica: ra, Counter: 1})
	a.Remove("k1")
	for _, v := range []*crdt.ORMap[string, uint64]{a, b, a.DeltaFor(b.Digest()), b.DeltaFor(a.Digest()), a.Put("z", 1)} {
		enc, _ := v.MarshalBinary()
		maps = append(maps, enc)
	}
	s := newSet(ra)
	s.Add("x")
	s.Add("y")
	s.Remove("x")
	t := newSet(ra2)
	t.Merge(s)
	t.Add("x")
	for _, v := range []*crdt.AWORSet[string]{s, t, t.DeltaFor(s.Digest())} {
		enc, _ := v.MarshalBinary()
		sets = append(sets, enc)
	}
	r := crdt.NewMVRegister(rc, crdt.StringCodec{})
	r.Write("p")
	r.Merge(crdt.NewMVRegister(rb, crdt.StringCodec{}).Write("q"))
	enc, _ := r.MarshalBinary()
	regs = append(regs, enc)
	for _, g := range []crdt.Digest{a.Digest(), b.Digest(), s.Digest(), {}} {
		enc, _ := g.MarshalBinary()
		digests = append(digests, enc)
	}
	return
}

// roundTrip checks that whatever decodes re-encodes to the same bytes and
// decodes again to an equal value.
func roundTrip[T interface {
	MarshalBinary() ([]byte, error)
	Equal(T) bool
}](t *testing.T, in []byte, v T, decode func([]byte) (T, error)) {
	out, err := v.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(in, out) {
		t.Fatalf("decoded input is not canonical:\n in  %x\n out %x", in, out)
	}
	v2, err := decode(out)
	if err != nil || !v2.Equal(v) {
		t.Fatalf("re-decode: %v", err)
	}
}

func FuzzDecodeORMap(f *testing.F) {
	ms, _, _, _ := seeds()
	for _, s := range ms {
		f.Add(s)
	}
	dec := func(b []byte) (*crdt.ORMap[string, uint64], error) {
		return crdt.DecodeORMap(b, crdt.StringCodec{}, crdt.Uint64Codec{})
	}
	reused := newMap(rb) // DecodeORMapInto's dst, dirty from the last input
	reused.Add("dirty", 7)
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := dec(in)
		into, errInto := crdt.DecodeORMapInto(reused, in)
		if (err == nil) != (errInto == nil) {
			t.Fatalf("DecodeORMap: %v, DecodeORMapInto: %v", err, errInto)
		}
		if err != nil {
			if reused.Len() != 0 || reused.LiveLen() != 0 {
				t.Fatal("DecodeORMapInto left entries after an error")
			}
			return
		}
		if got, _ := into.MarshalBinary(); !bytes.Equal(got, in) || !into.Equal(m) {
			t.Fatal("DecodeORMapInto decodes differently from DecodeORMap")
		}
		roundTrip(t, in, m, dec)
		// a decoded value is a valid state: joins and sync work on it
		x := newMap(ra)
		x.Add("k0", 1)
		x.Merge(m)
		x.Merge(m.DeltaFor(x.Digest()))
		m.Merge(x.DeltaFor(m.Digest()))
		_ = m.String()
	})
}

func FuzzDecodeAWORSet(f *testing.F) {
	_, ss, _, _ := seeds()
	for _, s := range ss {
		f.Add(s)
	}
	dec := func(b []byte) (*crdt.AWORSet[string], error) { return crdt.DecodeAWORSet(b, crdt.StringCodec{}) }
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := dec(in)
		if err != nil {
			return
		}
		roundTrip(t, in, s, dec)
		x := newSet(rb)
		x.Add("x")
		x.Join(s)
		_ = s.String()
	})
}

func FuzzDecodeMVRegister(f *testing.F) {
	_, _, rs, _ := seeds()
	for _, s := range rs {
		f.Add(s)
	}
	dec := func(b []byte) (*crdt.MVRegister[string], error) {
		return crdt.DecodeMVRegister(b, crdt.StringCodec{})
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := dec(in)
		if err != nil {
			return
		}
		roundTrip(t, in, r, dec)
		x := crdt.NewMVRegister(ra, crdt.StringCodec{})
		x.Write("v")
		x.Join(r)
		_ = r.String()
	})
}

func FuzzDecodeDigest(f *testing.F) {
	_, _, _, ds := seeds()
	for _, s := range ds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		g, err := crdt.DecodeDigest(in)
		if err != nil {
			return
		}
		out, _ := g.MarshalBinary()
		if !bytes.Equal(in, out) {
			t.Fatalf("digest not canonical:\n in  %x\n out %x", in, out)
		}
		// serving an arbitrary digest must not panic
		m := newMap(ra)
		m.Put("a", 1)
		m.Merge(newMap(rb).Put("b", 2))
		_ = m.DeltaFor(g)
		_ = g.String()
	})
}

// FuzzOps reads its input as a history on three replicas with small logs:
// mutations, deliveries (in any order, with duplicates), drops, digest
// exchanges, full-state joins, restarts and a purge. Afterwards a few rounds
// of digest anti-entropy must make all replicas equal to the join of their
// states, and the purged replica must be gone.
func FuzzOps(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	f.Add([]byte{0, 0, 0x10, 0x21, 0x32, 0x43, 0x54, 0x65, 0x76, 0x87, 0x98, 0xa9})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 400 {
			return
		}
		ids := []crdt.ReplicaID{ra, rb, rc}
		reps := make([]*crdt.ORMap[string, uint64], 3)
		for i := range reps {
			reps[i] = newMap(ids[i])
			reps[i].SetLogLimit(2)
		}
		var net []*crdt.ORMap[string, uint64]
		purged := false
		for i := 0; i+1 < len(in); i += 2 {
			op, arg := in[i], in[i+1]
			at := int(arg) % len(reps)
			k := string(rune('a' + arg>>2%4))
			v := uint64(arg >> 4 % 3)
			m := reps[at]
			switch op % 12 {
			case 0:
				net = append(net, m.Put(k, v))
			case 1:
				net = append(net, m.Add(k, v))
			case 2:
				net = append(net, m.Insert(k, v))
			case 3:
				net = append(net, m.Delete(k, v))
			case 4:
				net = append(net, m.Remove(k))
			case 5:
				if live := m.LiveDots(); len(live) > 0 {
					net = append(net, m.RemoveDots(live[int(arg)%len(live)]))
				}
			case 6, 7: // deliver (keep it on odd args: duplicate)
				if len(net) > 0 {
					j := int(arg) % len(net)
					m.Merge(net[j])
					if arg%2 == 0 {
						net = append(net[:j], net[j+1:]...)
					}
				}
			case 8:
				m.Merge(reps[(at+1)%len(reps)].DeltaFor(m.Digest()))
			case 9:
				m.Merge(reps[(at+len(reps)-1)%len(reps)].Clone())
			case 10: // restart replica at with a new epoch
				if !purged && at != 2 {
					ids[at].Epoch++
					reps[at] = newMap(ids[at])
					reps[at].SetLogLimit(2)
				}
			case 11: // replica c is gone for good: purge it everywhere
				if !purged {
					purged = true
					reps = reps[:2]
					for _, r := range reps {
						r.PurgeReplica(rc)
					}
					net = nil
				}
			}
		}
		all := newMap(crdt.ReplicaID{Name: "all", Epoch: 1})
		for _, r := range reps {
			all.Merge(r)
		}
		for round := 0; ; round++ {
			changed := false
			for i := range reps {
				for j := range reps {
					if i != j {
						before := reps[j].Digest()
						reps[j].Merge(reps[i].DeltaFor(before))
						changed = changed || !reps[j].Digest().Equal(before)
					}
				}
			}
			if !changed {
				break
			}
			if round > 4 {
				t.Fatal("anti-entropy does not settle")
			}
		}
		for i, r := range reps {
			if !r.Equal(all) {
				t.Fatalf("replica %d diverged:\n %s\n all %s", i, r, all)
			}
			if purged && r.Mentions(rc) {
				t.Fatalf("replica %d still mentions the purged replica", i)
			}
		}
	})
}
