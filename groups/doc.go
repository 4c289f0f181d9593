// Package groups is nodal's process groups, Erlang's pg (OTP 25) on a
// delta-state CRDT: named groups of processes spread over the cluster,
// available on both sides of a partition and converging after it.
//
// It sits above the root package, next to registry/ and rpc/, and stands
// on internal/replica (dissemination, anti-entropy, hiding and purging),
// which it shares with the registry.
//
// # Usage
//
//	s, err := groups.New(node, groups.Config{Scope: "chat"})
//	err = s.Join(ctx, "room", pid)        // pid is a process of node
//	members := s.Members("room")          // on any node of the scope
//	n, err := s.Send("room", msg)         // to every member
//	replies, failed, err := s.Call(ctx, "room", req)
//	snapshot, mon, err := s.Monitor("room")
//	for ev := range mon.Events() { ... }  // join/leave events after snapshot
//
// As with pg:
//
//   - Scopes are independent: only nodes running the same scope share its
//     groups; each scope is its own service (ServicePrefix + scope).
//   - Only a process's own node joins it to or removes it from a group
//     (Join and Leave refuse other nodes' pids with ErrNotLocal).
//   - A process may join a group several times and must leave it as many
//     times; Members lists it once per membership. Leave of a pid that is
//     not a member fails with ErrNotJoined.
//   - Groups are implicit: a group exists while it has a member; an empty
//     group is simply absent.
//   - A member that exits leaves every group (its node watches it).
//
// Beyond pg: memberships carry optional metadata (JoinMeta,
// Memberships), Send and Call reach every member in one call (syn's
// publish and multi_call), and monitors say why a member came or went
// (Cause).
//
// # Guarantees
//
//   - Join and Leave are visible on the calling node when they return,
//     and on the other nodes one delta later (pushed at once to every
//     connected node of the scope); a lost delta is repaired by the digest
//     exchanges of internal/replica, at a cost that follows the
//     difference.
//   - A join or leave costs O(1) whatever the group's size (pg's cost
//     grows with the group: it rewrites the member list on every join).
//   - Members of an unreachable node are hidden, not forgotten: monitors
//     get Left with CauseNodeDown, and Joined with CauseNodeUp when the
//     same start of the node is back. A node that left, restarted, or
//     stayed down longer than Config.PermdownPeriod is purged.
//   - Like pg, the view is eventually consistent and not transitive: a
//     node sees the members of the nodes it is connected to.
//   - A Monitor's events follow its snapshot exactly: nothing is missed
//     or repeated, in the order this node saw the changes.
//   - Group names (MaxGroupName) and metadata (MaxMeta) are bounded;
//     input from the network beyond the bounds, or for a pid its sender
//     does not own, is dropped and counted.
//
// # Concurrency
//
// A Scope's methods are safe for concurrent use. Reads (Members,
// LocalMembers, WhichGroups, Count) take a read lock on the scope's index
// and never touch the network. Mutations run on the replication engine's
// goroutine. The exit watcher is a process of the node; Stop (or
// Node.Stop) ends it and every goroutine of the scope.
package groups
