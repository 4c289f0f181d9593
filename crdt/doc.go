// Package crdt holds the pure delta-state CRDTs that nodal's global registry
// and process groups are made of (Almeida, Shoker, Baquero, "Delta State
// Replicated Data Types"). It sits at the bottom of nodal's layering and, like
// etcd's raft core, is values and functions only: no I/O, no goroutines, no
// clocks, no randomness. Everything ambient is passed in: the replica
// identity at construction, and the dot counter is derived from the state.
// purity_test.go enforces the import allow-list.
//
// # Model
//
// A [Dot] is one event (replica, counter). A [ReplicaID] is a name plus an
// epoch chosen at every start, so a restarted replica never reuses a dot.
// Every mutation, removals included, consumes exactly one dot. A state keeps
// a [Context] of every dot it has seen (version vector plus ranges seen out of
// order), a second context of the events it has applied, and a dot store:
// which dots are live, each with its key and value.
//
// [ORMap] is the kernel, DotMap[K, DotFun[V]]: under each key a causal value
// made of dots. Depending on the mutator, a key behaves as a multi-value
// register (Put: concurrent writes stay as siblings for a later resolve), an
// add-wins set of values (Insert, Delete), or a multiset with multiplicity
// (Add, RemoveDots). [AWORSet] and [MVRegister] are views of the same kernel.
//
// The registry's shape is ORMap[Name, Registration]: each owner adds its own
// sibling (Add), updates it (Replace: one event, never a gap) and removes its
// own dots (RemoveDots); resolve runs over Get. The groups' shape is
// ORMap[Group, Membership]: Add/RemoveDots for pg's multiplicity, or
// Insert/Delete for an add-wins set of members per group. A key with many
// siblings keeps them in a set, so one member joining or leaving a group of
// 100,000 costs the same as in a group of one. ByReplica lists one replica's
// entries (to hide those of a down node); Purge drops a gone replica and
// reports what went.
//
// Keys and values are of the caller's own types. A [Codec] gives this package
// a total order (canonical iteration, String, encoding) and a self-delimiting
// encoding; StringCodec, Uint64Codec and UnitCodec are provided. A key needs
// to be comparable (it indexes a Go map) and its codec must order it
// consistently with its encoding.
//
// # Usage
//
//	s := crdt.NewAWORSet(crdt.ReplicaID{Name: "a@host", Epoch: epoch}, crdt.StringCodec{})
//	d := s.Add("x")             // applied to s; ship d (d.MarshalBinary) to peers
//	ch := peer.Join(d)          // on a peer: ch.Added == ["x"]
//
//	// anti-entropy, cost proportional to the difference:
//	dg := peer.Digest()         // peer -> s: a few bytes per replica
//	peer.Join(s.DeltaFor(dg))   // s -> peer: exactly what peer is missing
//
// The caller's duties:
//
//  1. Give each start a fresh epoch (DESIGN.md: the node's incarnation).
//  2. Ship every delta a mutator returns; losing, duplicating or reordering
//     them is harmless, anti-entropy repairs what went missing.
//  3. Run DeltaFor on peers' digests periodically and on reconnect. Each
//     exchange brings the peer up to date when the event logs cover the gap
//     ([DefaultLogLimit] events per origin, SetLogLimit); an older gap costs
//     that origin's live entries only. Two rounds of exchanges (each way)
//     always make two replicas equal.
//  4. Purge a replica that is gone for good, on every replica, and stop
//     joining deltas that still carry it (drop frames from a purged epoch).
//  5. Optionally TrimLog an origin's events once every live peer's digest
//     shows them applied (causal stability), to free the log early.
//
// # Concurrency
//
// Values are not safe for concurrent use, like raft's RawNode. registry/ and
// groups/ own their state in one goroutine. Join never modifies its argument,
// so a delta may be shipped to many peers and joined many times.
//
// # Guarantees
//
//   - Join is commutative, associative and idempotent; X.Join(mδ(X)) equals
//     m(X) for every mutator; deltas and full states converge to the same
//     state; removed dots never come back. crdttest.CheckLaws checks all of it
//     under dropped, duplicated and reordered delivery.
//   - Join reports what became visible (MapChanges, SetChanges,
//     RegisterChanges) in time proportional to the delta, never by diffing.
//   - Digest is O(replicas); DeltaFor is O(events missed), or O(entries of one
//     origin) for an origin whose gap is older than the log.
//   - PurgeReplica leaves nothing of the replica: no dot, context entry or
//     logged event (Mentions reports false).
//   - Encodings are canonical and versioned (see encoding.go); decoders reject
//     anything else with an error wrapping ErrMalformed, never panic, and
//     allocate in proportion to their input.
//   - Everything emitted (encodings, deltas, iteration, String) is in
//     canonical order, never Go's map order.
package crdt
