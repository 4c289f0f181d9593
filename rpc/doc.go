// Package rpc calls functions on other nodes by name: Erlang's erpc and
// rpc (call, cast, multicall, async requests with request collections, and
// a parallel map) on a *nodal.Node.
//
// It sits above the root package in ARCHITECTURE.md's layering and uses
// only the root's exported API: it is a service (nodal.AttachService) named
// "rpc", whose frames take the ordered path to each node, and every call
// runs on a process of its own on the callee, as erpc spawns one per call.
//
// # Usage
//
// Attach the service once per node and register the functions the node
// exposes; closures do not travel, so only registered functions can be
// called (safer than Erlang, where any module:function can be):
//
//	r, err := rpc.New(n, rpc.Config{})
//	err = rpc.Register(r, "job.run", func(ctx context.Context, j Job) (Done, error) { ... })
//
// A and R travel through the node's codec: built-in kinds as they are,
// other types registered (Register registers unregistered ones under their
// Go name; nodal.RegisterType chooses the name). Every node that calls a
// function must register the same types under the same names. Then, from
// any node (this one included):
//
//	v, err := r.Call(ctx, "b@host", "job.run", Job{N: 10})     // erpc:call
//	d, err := rpc.CallAs[Done](ctx, r, "b@host", "job.run", j) // typed
//	err = r.Cast(ctx, "b@host", "job.run", j)                  // erpc:cast
//	res, bad, err := r.Multicall(ctx, nodes, "job.run", j)     // erpc:multicall
//	res, bad, err = r.Broadcast(ctx, "job.run", j)             // [node() | nodes()]
//	id, err := r.SendRequest(ctx, "b@host", "job.run", j)      // erpc:send_request
//	v, err = r.ReceiveResponse(ctx, id)                        // abandons on timeout
//	v, ok, err := r.WaitResponse(ctx, id)                      // may be retried
//	reqs := rpc.NewRequests[string](r)                         // OTP 25 reqids
//	out, err := rpc.Pmap[Job, Done](ctx, r, "job.run", jobs)   // rpc:pmap
//
// Functions and FunctionsOn list what a node exposes. Every node also
// exposes built-ins for operations (Builtins): rpc.functions, rpc.echo, rpc.stats,
// node.info, node.nodes, node.processes, os.getpid, os.hostname,
// runtime.info; `node ctl rpc NODE FUNC [ARGS as JSON]` calls any of them,
// through CallJSON. A function gets a ctx that is done when the caller's
// deadline passes or its process is killed; Process(ctx) is that process,
// for Monitor, Receive and the rest.
//
// Your responsibilities:
//  1. Register the same functions and types on every node that serves
//     them, before calls come (a call to a name not registered yet fails
//     with ErrNoFunction).
//  2. Honour ctx in long functions: a killed call is reported when its
//     function returns, and Node.Stop waits for it.
//  3. Receive or Abandon every async request: an id that is never received
//     is kept until its node goes down or the service stops.
//  4. Make functions given to Pmap idempotent: an item whose node was lost
//     may have been applied there before it is redone elsewhere.
//
// Errors follow erpc's classes. Every error of a call is a *CallError
// (node, function), which wraps either the function's own failure:
//   - *FuncError: the function returned an error: its text, and, for a
//     sentinel registered with RegisterError on both nodes, its identity
//     (errors.Is works across the network);
//   - *PanicError: the function panicked: the value's text and the stack
//     trimmed to the frames from the panic down to the function;
//   - *KilledError: the call's process was killed by an exit signal (or
//     the callee's service stopped: reason shutdown), or the function ended
//     it with Process.Exit (SelfExit);
//
// or the reason the call failed:
//   - ErrNoConnection: the node is unreachable or its connection went down
//     while the call was out; the function may or may not have been
//     applied. With ErrNodeDown too when the breaker failed it at once.
//   - ErrTimeout (with context.DeadlineExceeded): the deadline passed; the
//     function may or may not have been applied, and the late reply is
//     dropped (Stats.LateReplies). A function that returns its ctx's
//     deadline error is this case too.
//   - ErrNoFunction, ErrBadArgs (arguments that do not encode here or do
//     not decode into the function's type there), ErrSystemLimit, ErrStopped:
//     nothing was applied.
//
// # Concurrency
//
// An RPC's methods are safe for concurrent use; a Requests collection
// belongs to one goroutine at a time. Each call runs on its own process on
// the callee, so a slow function holds up no other call. Bounds, per pair
// of nodes: the callee runs at most Config.MaxConcurrent (1024) calls from
// one caller node at once and refuses more with ErrSystemLimit (casts are
// dropped and counted); the caller keeps at most MaxConcurrent calls out
// to one node and makes further calls wait, bounded by their ctx, so two
// nodes with the same bound never see ErrSystemLimit. Pmap runs at most 32
// items at once per node. The service starts no goroutine of its own: its
// frames are handled on the node's connection readers (which only decode
// and hand over), calls run on processes, and Pmap's workers end before it
// returns. A call process whose function never asked for it (Process) and
// that is as fresh as a new one (not linked, monitored, named or trapping
// exits, its mailbox empty) waits for the next call instead of ending, at
// most 64 per node, so a call costs no process start or stack growth; a
// function that asks for its process has it to itself, and it ends with
// the call. Stop (and Node.Stop, which calls it first) kills the running
// calls and the idle processes and waits for them.
//
// # Guarantees
//
//   - No call waits without a deadline: a ctx without one gets
//     Config.DefaultTimeout (5 s), and the callee's function gets the
//     caller's remaining time as its ctx's deadline.
//   - A call gets exactly one outcome; a reply after it gave up, or for an
//     older start (incarnation) of this node, is dropped.
//   - Calls to one node are sent in order on the node's ordered path, so a
//     call never overtakes a message or call sent to that node before it;
//     they run concurrently there, with no order among them.
//   - A call to a node known to be down fails fast: each callee node has a
//     circuit breaker (lni/goutils netutil) that opens on NodeDown, on a
//     failed or left member and on a failed send, lets one trial call
//     through after a backoff of 0.5 to 1 s, and closes on NodeUp, on a
//     member joining and on a successful reply. Function errors and
//     timeouts of a connected node leave it closed.
//   - A call to a node that is not connected connects first (bounded by
//     nodal.AutoConnectTimeout, 7 s, and ctx), so it fails with
//     ErrNoConnection instead of waiting out its deadline for a connection
//     that never comes.
//   - Multicall returns one Result per node in input order, and as bad
//     nodes those whose call got no reply (no connection, timeout, stop).
//   - Pmap returns its results in the order of its items; an item of a
//     node that was lost (or refused it) is redone on another live node.
package rpc
