package crdt_test

import (
	"fmt"

	"github.com/nodal-go/nodal/crdt"
)

func ExampleAWORSet() {
	a := crdt.NewAWORSet(crdt.ReplicaID{Name: "a@host", Epoch: 1}, crdt.StringCodec{})
	b := crdt.NewAWORSet(crdt.ReplicaID{Name: "b@host", Epoch: 7}, crdt.StringCodec{})

	d := a.Add("x") // a mutator applies itself and returns the delta
	fmt.Println(b.Join(d).Added)

	rm := b.Remove("x") // concurrent with a's re-add: the add wins
	add := a.Add("x")
	a.Join(rm)
	b.Join(add)
	fmt.Println(a.Elements(), b.Elements(), a.Equal(b))
	// Output:
	// [x]
	// [x] [x] true
}

func ExampleMVRegister() {
	a := crdt.NewMVRegister(crdt.ReplicaID{Name: "a", Epoch: 1}, crdt.StringCodec{})
	b := crdt.NewMVRegister(crdt.ReplicaID{Name: "b", Epoch: 1}, crdt.StringCodec{})
	da, db := a.Write("pid-on-a"), b.Write("pid-on-b") // concurrent
	a.Join(db)
	b.Join(da)
	fmt.Println(a) // both siblings survive for a resolve step
	fmt.Println(b)
	// Output:
	// [pid-on-a@a/1:1 pid-on-b@b/1:1] ctx{a/1:1 b/1:1}
	// [pid-on-a@a/1:1 pid-on-b@b/1:1] ctx{a/1:1 b/1:1}
}

func ExampleORMap_DeltaFor() {
	a := crdt.NewORMap(crdt.ReplicaID{Name: "a", Epoch: 1}, crdt.StringCodec{}, crdt.Uint64Codec{})
	b := crdt.NewORMap(crdt.ReplicaID{Name: "b", Epoch: 1}, crdt.StringCodec{}, crdt.Uint64Codec{})
	for i := range 1000 {
		a.Put(fmt.Sprint("k", i), uint64(i))
	}
	b.Merge(a.Clone()) // b is in sync
	a.Put("k1", 42)    // then a changes one entry and removes another
	a.Remove("k2")

	dg := b.Digest() // b -> a
	delta := a.DeltaFor(dg)
	dgBytes, _ := dg.MarshalBinary()
	deltaBytes, _ := delta.MarshalBinary()
	full, _ := a.MarshalBinary()
	ch := b.Join(delta) // a -> b
	fmt.Println("digest", len(dgBytes), "delta", len(deltaBytes), "full", len(full))
	fmt.Println(ch.Keys, len(ch.Values), a.Equal(b))
	// Output:
	// digest 22 delta 39 full 12655
	// [{removed k2}] 3 true
}
