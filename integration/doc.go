// Package integration tests systems built on nodal under network splits,
// kills and freezes, and is the project's own end-to-end suite. It sits
// above the services (rpc/, registry/, groups/, heal/)
// and below cmd/node in the layering.
//
// A Cluster is a set of named nodes (n1@IP, n2@IP, ...) and the faults
// between them, with one set of methods over two modes, so a test body is
// written once:
//
//   - In-process (NewCluster): every node in the test process on a
//     p2p/p2ptest network, with Options.Services attached to each (by
//     default what `node start` runs: rpc/, registry/, groups/, heal/). No privileges; inside a testing/synctest bubble it runs on
//     a fake clock, so failure detection costs no real time.
//   - Real (NewRealCluster, root on Linux): the `node` binary built, one
//     network namespace per node on a bridge (10.202.X.0/24), one `node
//     start` per namespace, driven with `node ctl --json`; cuts with
//     iptables inside the namespaces, SIGKILL, SIGSTOP/SIGCONT, restarts,
//     and latency, loss and bandwidth limits through a user-space proxy
//     (internal/faultproxy) on each link named in Options.Links. It skips, saying why, when not
//     root or when ip or iptables are missing.
//
// RunBoth runs a body in both modes.
//
// # Usage
//
//	func TestSplit(t *testing.T) {
//		integration.RunBoth(t, 5, integration.Options{}, func(t *testing.T, c *integration.Cluster) {
//			n := c.Names()
//			echo, _ := c.SpawnEcho(ctx, n[4], "")
//			w, _ := c.Monitor(ctx, n[0], echo)
//			c.Partition(n[:2], n[2:])
//			reason, took := w.WaitDown(time.Now()) // noconnection
//			c.WaitMesh(n[:2]...)                   // each side sees only itself
//			_, err := c.RPC(ctx, n[0], n[4], "rpc.echo", "x") // errors.Is(err, nodal.ErrNoConnection)
//			c.Heal()
//			c.WaitMesh()
//		})
//	}
//
// Faults: Partition(groups...), Isolate(node), Cut(a, b, BothWays or
// OneWay), Heal(), SetLinkFaults; nodes: Kill (a crash), Stop (graceful),
// Restart (a new incarnation), Freeze and Thaw. Questions to nodes, each
// failing with an *OpError: Peers, Incarnation, SpawnEcho, Send, Call,
// Monitor (a Watch), RPC, Ping; the global registry (Register, Whereis,
// Registered, SyncNames) and process groups (JoinGroup, Members); what
// heal/ reported (Heals: its Healed events, with the bytes, entries and
// conflicts its reconcilers exchanged). Waits: Eventually, WaitMesh,
// WaitPartitioned, HealExchange, Watch.WaitDown, each bounded by
// Options.Timeout and returning how long it took, for the test to log.
//
// The caller's duties:
//
//  1. After a heal nothing reconnects by itself but what a service does:
//     heal/ does (attached by default); with Services that have none that
//     reconnects (Service.Reconnects), Heal and Thaw join the running
//     nodes to each other, as heal/ would.
//  2. Run in-process clusters inside synctest.Test (RunBoth does), or
//     accept real-time waits.
//  3. In real mode, call Cluster.Close before a leak check (leaktest): the
//     cluster is otherwise closed when the test ends, after deferred
//     checks.
//
// # Concurrency
//
// A Cluster is safe for concurrent use; its fault and lifecycle methods
// are applied one at a time. In real mode each node process has one
// reader goroutine, ended when the process exits; a signal watcher runs
// while a real cluster is open and removes the namespaces if the test
// process is interrupted.
//
// # Guarantees
//
//   - Everything made in real mode (namespaces nodalh-PID-..., links
//     nhPID..., rules, processes) is removed when the test ends, fails,
//     or gets SIGINT or SIGTERM; what a crashed run left is removed by the
//     next one first.
//   - Control traffic (node ctl from the test's namespace) is never cut.
//   - Errors keep their identity across modes: in real mode the text node
//     ctl prints is matched back to the nodal and rpc sentinels it names.
//   - Differences between the modes, by design: in-process a freeze
//     silences a node's gossip while its connections stay open and its
//     processes run (p2ptest's model of a frozen host); a kill closes its
//     connections at once, as a crashed process's kernel resets them; link
//     latency applies to the nodes' connections, loss to gossip only,
//     bandwidth to both (p2ptest.SetBandwidth); a one-way cut also drops
//     the pair's connection (a TCP connection cannot live when one
//     direction is lost). In real mode a one-way cut of a link with a
//     proxy blackholes that way of the proxy: the bytes of connections
//     either node opened stop going that way, and the other way still
//     flows.
//
// The package's own tests are the suite: they build the node binary once
// (TestMain), run each scenario in both modes, and log what they measured
// on lines starting "measured:"; `go test -race -v ./integration/` shows
// them.
package integration
