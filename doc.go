// Package nodal brings Erlang/OTP-style processes and distribution to Go.
//
// This root package is what a user imports first. A *Node owns processes:
// each has a Pid and an unbounded mailbox; processes send each other any Go
// value, link and monitor each other, register local names, and answer
// gen_server-style calls. Services (registry, groups, rpc, heal) and remote
// nodes build on it; ARCHITECTURE.md in the repository has the layering.
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
// # Distribution
//
// A node started with a Name and a Cookie is distributed: it joins the
// cluster of its Seeds (memberlist gossip), connects to every member over
// libp2p (package p2p), and its processes reach processes of other nodes by
// pid exactly as they reach local ones. Start one with DefaultLANConfig,
// DefaultWANConfig or DefaultLocalConfig:
//
//	cfg := nodal.DefaultLANConfig("a@10.0.0.1", cookie)
//	cfg.Seeds = []string{"10.0.0.2:7946"}
//	n, err := nodal.Start(ctx, cfg)
//
// What works across nodes, with Erlang's semantics: Send to a remote pid
// (FIFO per sender/receiver pair) and SendNode to {Name, Node}; links and
// monitors to remote pids; MonitorNode and MonitorNodes (NodeUp before any
// message of the new connection, NodeDown after its last one); remote spawn
// of a Behaviour registered by name (SpawnOn, SpawnMonitorOn; WithLink links),
// where the new process keeps its spawner's group leader so what it prints
// (Printf) shows on the spawner's node; Call and CallName; hidden nodes
// (Config.Hidden) for tools, which connect with ConnectAddr and never show
// in Nodes().
//
// Nodes connect on demand, like Erlang's auto-connect: a signal for a live
// member of the cluster that is not connected yet (right after Start, or
// while a broken connection is re-established) waits, in order and in a
// bounded queue, for the connection, and is sent first when it comes up;
// remote spawn and whereis connect before asking. If the attempt fails or
// takes longer than AutoConnectTimeout (7 s, Erlang's net_setuptime), the
// waiting signals are undeliverable as below. A node that is not a live
// member is unreachable at once.
//
// When a node becomes unreachable (its connection closes, memberlist
// declares it dead, or Disconnect), every link and monitor towards it fires
// with ReasonNoConnection, node monitors get NodeDown, and calls waiting on
// it fail with an error wrapping ErrNoConnection. A Call that times out says
// whether the target's node was up (*CallTimeoutError).
//
// Values cross the network through a Codec: built-in kinds need nothing,
// other types must be registered under the same name on every node
// (RegisterType). Sending a value that cannot be encoded fails at the
// sender; a frame the receiver cannot decode is dropped, counted
// (DistStats) and logged, and the connection survives. A mailbox fed by
// other nodes is bounded by Config.RemoteBacklog: above it the node stops
// reading that connection until the mailbox drains, which pushes back on
// the senders through their bounded outbound queues.
//
// A node's garbage is mostly its messages in transit (read buffers,
// mailbox entries), so Go's collector costs about in proportion to the
// traffic over GOGC: a program that streams small messages between nodes
// gains from a higher GOGC (the nodal binary runs at 200).
//
// A registered type whose value implements encoding.BinaryAppender and
// whose pointer implements encoding.BinaryUnmarshaler encodes itself
// instead of going through CBOR (Codec.Register): that is how packages
// built on a node give their messages a wire format of their own.
//
// Behaviours built on processes live in their own packages: OTP's
// supervisor is package supervisor (github.com/nodal-go/nodal/supervisor).
//
// # Writing a service
//
// Cluster services (registry, groups, rpc, heal) are packages built on a
// *Node through a small hook; anyone can write one the same way (see
// Example_service). A service implements Service and attaches under a name
// with AttachService; the same name on every node makes the service's peers.
//
//   - Frames: SendService(ctx, node, name, data) reaches the service on node
//     (this node included) on the path actor signals take, auto-connect queue
//     included, so a service frame never overtakes a signal or frame sent to
//     the same node before it; TrySendService never blocks and is the send to
//     use inside callbacks. HandleFrame gets each frame with the sender's
//     NodeRef {Name, Incarnation, Hidden}.
//   - Connections: NodeUp comes before a connection's first frame, NodeDown
//     after its last, and the NodeDown of an old connection before the NodeUp
//     of a new one (net_kernel's order). A service attached late gets a NodeUp
//     for every connected node first. A newer Incarnation of a node means the
//     older start is gone: drop what it owned.
//   - Membership: a MemberWatcher also gets MemberEvent (joined, updated,
//     failed, left, replaced) whether or not a connection is open; reasons
//     are errors.Is-able: ErrNodeLeft, ErrNodeFailed, ErrNodeReplaced.
//     Members lists the members with their addresses and services.
//   - Gossip: a GossipService contributes LocalState to memberlist's periodic
//     push/pull and gets every other member's state (MergeRemoteState, with
//     its sender), and may spread small notices with BroadcastService; for
//     digests and notices only (MaxGossipState, MaxServiceBroadcast): bulk
//     data goes with SendService.
//   - Local exits: a service learns that a local process exited the way
//     Erlang's global does, from an owner process of its own that monitors
//     the pids it cares about (BenchmarkServiceWatchExit measures the cost).
//   - Lifecycle: a ServiceStopper's Stop runs first in Node.Stop, in the
//     reverse order of attachment, while processes and the network still run;
//     it must return once the service's goroutines have ended. Join reaches
//     lost members again through their gossip addresses.
//
// Callbacks must not block and must not call AttachService, DetachService or
// Stop. Nodes advertise the services they run in their metadata
// (Member.Services); a frame for a service that is not attached is dropped,
// counted (DistStats.UnknownService) and logged once per node and service.
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
