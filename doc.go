// Package nodal brings Erlang/OTP-style processes and distribution to Go.
//
// This root package is what a user imports first. A *Node owns processes:
// each has a Pid and an unbounded mailbox; processes send each other any Go
// value, link and monitor each other, register local names, and answer
// gen_server-style calls. Services (registry, groups, rpc, heal) and remote
// nodes build on it; see DESIGN.md for the layering.
//
// # Usage
//
// Start a node (the zero Config is a local-only node, "nonode@nohost"),
// spawn processes, and stop the node when done:
//
//	n, err := nodal.Start(ctx, nodal.Config{})
//	if err != nil { ... }
//	defer n.Stop(ctx)
//	pid, err := n.Spawn(func(p *nodal.Process) error {
//		msg, err := p.Receive(p.Context())
//		if err != nil {
//			return err
//		}
//		fmt.Println("got", msg)
//		return nil
//	})
//	n.Send(pid, "hello")
//
// Processes come in two styles:
//   - A Func runs on its own goroutine and blocks in Receive or ReceiveMatch
//     (selective receive, Erlang's receive ... after: ctx is the "after").
//   - An Actor (Init, HandleMessage; optionally CallHandler and Terminator)
//     keeps no goroutine while idle; the runtime runs it on a short-lived
//     goroutine while it has messages. Idle actors are cheap (a few hundred
//     bytes), so millions of them fit.
//
// A process ends when its Func returns (nil: reason normal), when it calls
// Exit, when it panics (the reason is a *PanicError; the node survives), or
// when an exit signal kills it. Exit reasons are errors: ReasonNormal,
// ReasonKilled, ReasonShutdown, ... or any error the code returns.
//
// Your responsibilities:
//  1. Call Process methods only from the process's own goroutine (the Func,
//     or the Actor's handler while it runs). From elsewhere use the Node's
//     methods and pids.
//  2. In a Func, return when Receive reports ErrExited or the process's
//     Context is done: a killed process is dead for everyone at once, but Go
//     cannot stop its goroutine, and Node.Stop waits for it.
//  3. Do not recover the panic Process.Exit uses to unwind a Func.
//     (runtime.Goexit in a Func ends the process with a *PanicError.)
//  4. Call Node.Stop, from outside any process: it ends every process and
//     waits for every goroutine, including the caller's if it were one.
//
// # Concurrency
//
// Node methods are safe for concurrent use. Sending never blocks on the
// receiver: the mailbox is unbounded. Every goroutine the node starts has an
// owner that Stop closes and awaits: process goroutines belong to sharded
// WaitGroup owners (a lighter Stopper, safe to start from a process while
// Stop runs), the node's other goroutines to a syncutil.Stopper. No user code runs under a
// runtime lock; an Actor's methods never run concurrently with each other.
//
// # Guarantees
//
// These follow Erlang:
//   - Signals (messages, exit signals, Downs) from one process to another
//     arrive in the order they were sent; nothing else is ordered.
//   - Sending to a dead pid is not an error; the message is dropped. Sending
//     to an unregistered local name is an error (ErrNotRegistered).
//   - Links are bidirectional and idempotent. An exit signal with reason
//     normal does not kill a non-trapping linked process; any other reason
//     does. ReasonKill cannot be trapped and the victim's reason is
//     ReasonKilled. A process that traps exits gets Exit messages instead.
//   - Each Monitor call makes a new Ref and delivers exactly one Down, unless
//     Demonitor comes first; monitoring a dead pid gives Down{noproc} at once.
//   - A pid of another incarnation of this node is dead (noproc). On a
//     local-only node a pid of another node is unreachable (noconnection).
//   - A name is freed when its process exits; a process holds one name.
package nodal
