package crdt

import (
	"cmp"
	"strconv"
)

// ReplicaID names one incarnation of a replica: a stable name (for nodal, the
// node's peer identity or node name) and an epoch chosen anew at every start.
// A restarted replica has a new epoch, so it never reuses a dot of an earlier
// incarnation, and its counters need no durable storage.
//
// ReplicaIDs are totally ordered by (Name, Epoch); that order is the canonical
// order of every output of this package.
type ReplicaID struct {
	// Name is the stable part of the identity.
	Name string
	// Epoch is the incarnation, unique per start of Name.
	Epoch uint64
}

// Compare orders replica identities by Name, then Epoch. It returns -1, 0 or +1.
func (r ReplicaID) Compare(o ReplicaID) int {
	if c := cmp.Compare(r.Name, o.Name); c != 0 {
		return c
	}
	return cmp.Compare(r.Epoch, o.Epoch)
}

// String prints the identity as name/epoch.
func (r ReplicaID) String() string {
	return r.Name + "/" + strconv.FormatUint(r.Epoch, 10)
}

// Dot is one event of one replica: the Counter-th mutation made by Replica.
// Every mutation of every type in this package consumes exactly one dot, and
// removals are events too, so "what a peer misses of r" is exactly the dots of r
// above the peer's version vector entry for r.
type Dot struct {
	// Replica made the event.
	Replica ReplicaID
	// Counter is 1 for the first event of Replica, then 2, 3, ...
	Counter uint64
}

// Compare orders dots by replica, then counter. It returns -1, 0 or +1.
func (d Dot) Compare(o Dot) int {
	if c := d.Replica.Compare(o.Replica); c != 0 {
		return c
	}
	return cmp.Compare(d.Counter, o.Counter)
}

// String prints the dot as name/epoch:counter.
func (d Dot) String() string {
	return d.Replica.String() + ":" + strconv.FormatUint(d.Counter, 10)
}

// hashing: a fixed, seedless 64-bit mix so that every replica computes the same
// per-origin live-set hash (Go's map hash is seeded per process and unusable).

func mix64(x uint64) uint64 { // splitmix64 finaliser
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func replicaSeed(r ReplicaID) uint64 {
	h := uint64(14695981039346656037) // FNV-1a offset basis
	for i := 0; i < len(r.Name); i++ {
		h ^= uint64(r.Name[i])
		h *= 1099511628211
	}
	return mix64(h ^ mix64(r.Epoch+0x9e3779b97f4a7c15))
}

func dotHash(seed, counter uint64) uint64 {
	return mix64(seed ^ (counter * 0x9e3779b97f4a7c15))
}
