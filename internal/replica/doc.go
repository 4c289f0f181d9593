// Package replica is the replication engine that the global registry
// (registry/) and the process groups (groups/) stand on: one delta-state
// CRDT (a crdt.ORMap owned by one goroutine) per service instance, spread
// to the other nodes running the same service and kept in agreement with
// them.
//
// # Dissemination and anti-entropy
//
//   - Local mutations (State.Add, Replace, RemoveDots) are joined at once
//     and their deltas, batched per turn of the engine's loop, go to every
//     up node that runs the service, over Node.SendService (ordered per
//     node, never overtaking an earlier frame).
//   - Digests (crdt.Digest: a few bytes per replica, never the entries)
//     are exchanged on memberlist's push/pull (the service is a
//     nodal.GossipService), when a node comes up or starts running the
//     service, every Config.SyncInterval with one random peer, and by
//     Sync. A node that finds itself behind a peer's digest asks for the
//     origins it lacks (crdt.Digest.Ahead) and is answered with
//     crdt.ORMap.DeltaForOrigins of its digest, so the cost follows the
//     difference; a full state is never pushed.
//   - Each origin's gap is taken from one peer at a time (pull.go): a
//     node that hears at once from every node of the other side of a
//     healed split pulls the difference about once, not once per peer. An
//     origin asked of a peer that goes down, or that does not answer
//     within pullTimeout, is asked of another that offers it.
//   - Sync sends its digest only to peers that may lack something (what
//     they are known to hold: their own digests, and this node's digests
//     they acknowledged), and waits until this node took in what each
//     peer's answer showed and each peer acknowledged taking in what this
//     node's digest showed.
//   - Frames that cannot be queued (a full inbound queue, a full outbound
//     queue) are dropped and counted; the next digest exchange repairs
//     what they carried.
//
// # Visibility and purging
//
// Every entry is owned by the node whose replica (node name, incarnation)
// wrote it. Entries of a node that is down in this node's view are hidden
// (reported as Removed with reason NodeDown) and shown again (Added,
// NodeUp) when the same incarnation comes back; they stay in the CRDT
// meanwhile. A service with Config.OnVisibility is told once per origin
// instead, and gets the hidden origins' changes too (Change.Hidden), so a
// node's return costs it what changed, not the node's entries. Entries of an incarnation known to be gone are purged: on a
// graceful leave, when a newer incarnation of the node appears, and when
// the node stayed down for Config.PermdownPeriod (the same on every node).
// After a leave or a replacement, frames from the purged incarnation, and
// entries of it relayed by others, are dropped and counted (Stats.Dropped):
// nothing of it comes back. An incarnation purged for being down too long
// that comes back is a fresh replica: its node re-sends it in full. A
// service can refuse entries a node could not have written
// (Config.Check): a delta carrying one is dropped whole and counted
// (Stats.Refused).
//
// # Concurrency
//
// All state belongs to the engine: it is touched only in the engine's
// turns, one at a time, under the engine's lock. The engine's goroutine
// runs a turn for what arrives from the network, for timers and for the
// operations handed to it; an Update that finds the engine idle runs its
// operation as a turn of its own, on its caller's goroutine (no hand-off,
// no thread wake). "On the engine's goroutine" in these packages means in
// such a turn. A turn that runs operations first handles the events
// queued before them (frames, node and member events), so an operation
// sees what was delivered to the service before its Update was called.
// Config.OnChange runs at the end of every turn, with the visible changes
// in order; it may mutate the state through the State it is given (its
// own changes come in a later call). The engine's goroutine is owned by
// the Replica and ends in Stop, which Node.Stop calls; Stop waits for a
// running turn.
package replica
