// Package registry is nodal's cluster-wide name registry: Erlang's global
// and syn's registry, available and eventually consistent (AP) instead of
// global's cluster lock.
//
// A name maps to a process. Register succeeds at once on the process's own
// node (it fails only when the name is visibly taken here, or the process
// already has a name) and spreads to every node of the scope within a
// network round trip; Whereis and Send are local reads. The state is a
// delta-state CRDT (crdt.ORMap[name, Registration]) replicated by
// internal/replica: deltas pushed promptly, digests exchanged on memberlist
// push/pull, on node up and by Sync, so a lost delta is repaired at a cost
// that follows the difference.
//
// # Ownership, visibility, purging
//
// A registration is owned by its process's node: only that node adds or
// removes it, and it removes it when the process exits (it monitors its own
// processes, never remote ones). Registrations of a node that is down here
// are hidden, not deleted, and show again when it comes back with the same
// incarnation; those of an incarnation known to be gone (a graceful leave,
// a restart under a new incarnation, or down for longer than
// Config.PermdownPeriod) are purged. A node that returns after a long
// absence re-sends its names in full: they are intact.
//
// # Conflicts
//
// During a partition, each side may register the same name. When the claims
// meet, every node runs the claims' resolver (a pure ResolveFunc, Erlang's
// register_name/3) over the same canonical order, so every node shows the
// same winner at once, before the loser has stepped down. Only the loser's
// own node acts: it removes its claim and exits the loser with a
// *ConflictError (trappable, so the loser can hand its state to the winner)
// or sends it a NameConflict message, as the resolution says. A resolver
// that panics or returns a bad verdict is replaced by the default and
// counted. Built-ins: LowerNodeExit (the default, global:random_exit_name),
// LowerNodeNotify (random_notify_name), NotifyAll (notify_all_name),
// KeepOldest and KeepNewest.
//
// # What a user may observe
//
// During a split each side sees its own claims (and those of the nodes it
// still reaches); a name may have a holder on each side. After the heal
// and one digest exchange (Sync forces one), every node shows one holder
// per name, the losers are told, and every live registration that met no
// conflict is present everywhere. Monitor reports each change of a name's
// holder with its reason.
package registry
