// Package supervisor is OTP's supervisor behaviour on nodal processes.
//
// A supervisor is a process that traps exits, starts its children in
// order, links to them, restarts them when they exit according to its
// Strategy and each child's RestartType, and stops them in reverse order.
// A supervisor can be the child of another supervisor (Nested builds the
// Child), so supervisors nest into trees. When its children exit more
// often than Intensity times in Period, a supervisor stops all of them and
// exits with reason nodal.ReasonShutdown, leaving the decision to the
// level above. A child may run on another node (Remote), and may move to
// another node when its own is lost (Failover).
//
// The package stands on the root package's public API only, as Erlang's
// supervisor module stands on processes: layering is nodal (processes,
// distribution, codec) below, this package above, next to registry,
// groups and rpc.
//
// # Usage
//
// Start a supervisor from a node (or from a process, as a child) with its
// children, and manage it by calls to its pid, from any node:
//
//	sup, err := supervisor.Start(ctx, n, supervisor.Spec{
//		Strategy: supervisor.OneForOne,
//		Children: []supervisor.Child{
//			{ID: "cache", Start: func(p *nodal.Process) (nodal.Pid, error) {
//				return p.Spawn(cache, nodal.WithLink(), nodal.WithName("cache"))
//			}},
//			supervisor.Remote("indexer", "b@10.0.0.2", "indexer", cfg,
//				supervisor.Failover("c@10.0.0.3")),
//		},
//	})
//	kids, err := supervisor.WhichChildren(ctx, n, sup)
//	err = supervisor.Stop(ctx, n, sup)
//
// StartChild, StartDynamicChild, TerminateChild, TerminateChildPid,
// RestartChild, DeleteChild, WhichChildren, CountChildren and Stop are the
// management calls (OTP's supervisor:start_child/2 and friends). They work
// on a supervisor of another node too, except StartChild, whose Child holds
// Go functions; their requests and replies are wire types registered with
// the nodes' codecs (nodal.Codec.Register, self-encoding), and their
// sentinel errors keep their identity across nodes for errors.Is.
//
// Your responsibilities:
//  1. A Child's Start runs on the supervisor's process: it must start a
//     process linked to it and return its pid, and must not block for
//     long, since the supervisor serves nothing meanwhile (Remote's start
//     is bounded by RemoteStartTimeout).
//  2. A remote child's behaviour must be registered
//     (nodal.Node.RegisterBehaviour) on every node it may run on, and its
//     args must be encodable by the codec.
//  3. StartDynamicChild's args to a supervisor on another node must be
//     encodable by the caller node's codec and decodable by the
//     supervisor node's (register their types on both).
//
// # Concurrency
//
// The management calls are safe for concurrent use from any goroutine
// through a *nodal.Node, or from a process's own goroutine through its
// *nodal.Process. A supervisor's state is owned by its process alone: calls
// are served one at a time, between exit signals, in mailbox order. A
// Child's Start runs on the supervisor's goroutine.
//
// # Guarantees
//
// These follow OTP:
//   - Children start in Spec.Children order and stop in the reverse order;
//     Start returns once all have started, or stops those started and
//     fails if one fails. ctx bounds the start only.
//   - A child that exits is restarted per its RestartType and the
//     Strategy; more than Intensity restarts in Period stop the
//     supervisor. A failed restart is retried, and counts.
//   - A stopped child got the exit signal shutdown and was killed only
//     after its Shutdown passed.
//   - A child on another node whose node is lost exits, as far as the
//     supervisor can tell, with nodal.ReasonNoConnection, an abnormal
//     reason: it is restarted like any crashed child. Its link breaks on
//     its own node too, so a child that does not trap exits dies there: no
//     process is doubled by the restart. A child that traps exits may live
//     on, cut off, until its node connects again; then the supervisor
//     kills it, so that once the cluster is whole again each child runs
//     once. A supervisor that exits before that reconnection leaves such
//     an orphan alone.
package supervisor
