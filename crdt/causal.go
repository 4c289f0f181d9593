package crdt

// Causal is the contract every type of this package meets, as a pointer type
// T (for example *AWORSet[string]). Generic code (the law suite in crdttest,
// a service's sync loop) is written against it; registry/ and groups/ make
// their types meet it too, usually by wrapping an ORMap.
//
// Implementations are thread-unsafe values, like raft's RawNode.
type Causal[T any] interface {
	// Merge joins a state or delta into the receiver (receiver := receiver ⊔ d).
	Merge(d T)
	// Clone returns a deep copy.
	Clone() T
	// Equal reports lattice-state equality (context and live dots).
	Equal(o T) bool
	// Digest returns the anti-entropy digest, O(replicas) in size.
	Digest() Digest
	// DeltaFor returns what a peer with that digest is missing.
	DeltaFor(peer Digest) T
	// PurgeReplica forgets a replica that is gone for good.
	PurgeReplica(r ReplicaID)
	// Mentions reports whether anything of r remains.
	Mentions(r ReplicaID) bool
	// Context returns a copy of the causal context.
	Context() *Context
	// LiveDots returns the live dots in canonical order.
	LiveDots() []Dot
	// MarshalBinary returns the canonical encoding.
	MarshalBinary() ([]byte, error)
	// String prints the state in canonical order.
	String() string
}

var (
	_ Causal[*ORMap[string, uint64]] = (*ORMap[string, uint64])(nil)
	_ Causal[*AWORSet[string]]       = (*AWORSet[string])(nil)
	_ Causal[*MVRegister[string]]    = (*MVRegister[string])(nil)
)
