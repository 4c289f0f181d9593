// Package crdttest is the law suite of package crdt, exported so that any
// type built on it (the registry's and the groups' states) is checked by the
// same properties, in the manner of libp2p's transport test suites.
//
// # Usage
//
// Describe how to make and mutate a value, then run the suite from a test:
//
//	func TestLaws(t *testing.T) {
//		crdttest.CheckLaws(t, crdttest.Gen[*crdt.AWORSet[string]]{
//			New: func(r crdt.ReplicaID, limit int) *crdt.AWORSet[string] {
//				s := crdt.NewAWORSet(r, crdt.StringCodec{})
//				s.SetLogLimit(limit)
//				return s
//			},
//			Mutate: func(t *rapid.T, s *crdt.AWORSet[string]) *crdt.AWORSet[string] {
//				e := rapid.SampledFrom([]string{"a", "b", "c"}).Draw(t, "e")
//				if rapid.Bool().Draw(t, "add") {
//					return s.Add(e)
//				}
//				return s.Remove(e)
//			},
//			Decode: func(b []byte) (*crdt.AWORSet[string], error) {
//				return crdt.DecodeAWORSet(b, crdt.StringCodec{})
//			},
//		})
//	}
//
// Draw mutation arguments from a small domain so that replicas touch the
// same keys and histories collide.
//
// # Concurrency
//
// The suite runs its subtests sequentially; Gen's functions are called from
// the test goroutine only.
//
// # Guarantees
//
// Every property is checked by pgregory.net/rapid, which shrinks a failure
// to a small history and prints the seed that reproduces it. The properties
// are listed on CheckLaws.
package crdttest
