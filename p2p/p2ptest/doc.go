// Package p2ptest is an in-process network for tests of p2p and every layer
// above it: many named nodes in one process, with partitions, message loss
// and counters, fast and deterministic enough for CI.
//
// A Network implements p2p.Network (set it as p2p.Config.Advanced.Network). It hands
// out two kinds of endpoints, both governed by one partition table keyed by
// node name:
//
//   - NewHost: a libp2p host on a mocknet (go-libp2p/p2p/net/mock), linked
//     to every other host it is not cut from.
//   - NewTransport: a memberlist NodeAwareTransport whose packets go onto
//     the receiver's buffered channel and whose streams are in-memory pipes.
//     It never blocks a sender: a packet to a stopped or cut peer, or to a
//     full channel, is dropped and counted. (memberlist's own MockTransport
//     sends on unbuffered channels and blocks forever once a peer stops.)
//
// The partition API follows etcd raft's test network: Partition(a, b) and
// Split(groupA, groupB) cut both directions, Isolate(n) cuts n from all,
// Drop(from, to, rate) loses memberlist packets one way with a seeded RNG,
// Heal() restores everything. SetBandwidth(from, to, bytesPerSecond) is a
// link's byte rate one way (a token bucket, on the caller's clock, so on
// synctest's fake one in a bubble); Heal leaves it. Stats and PairStats
// count deliveries and losses.
//
// p2ptest sits beside p2p in the layering. It imports libp2p, memberlist
// and go-log but not p2p, so p2p's own in-package tests may import it.
//
// # Usage
//
// Run cluster tests inside a testing/synctest bubble, so memberlist's and
// libp2p's timers follow a fake clock, and wait for conditions with
// Eventually, never with a fixed sleep:
//
//	func TestSplit(t *testing.T) {
//		synctest.Test(t, func(t *testing.T) {
//			net := p2ptest.New(p2ptest.WithSeed(1))
//			defer net.Close()
//			cfg := p2p.Config{Name: "a@10.0.0.1", Cookie: "c", Advanced: p2p.Advanced{Network: net}}
//			a, err := p2p.Start(ctx, cfg, handlerA)
//			// ...
//			cfg.Name, cfg.Seeds = "b@10.0.0.2", []string{a.GossipAddr()}
//			b, err := p2p.Start(ctx, cfg, handlerB)
//			// ...
//			p2ptest.Eventually(t, 60*time.Second, func() bool { return len(a.Peers()) == 1 }, "a sees b")
//			net.Partition("a@10.0.0.1", "b@10.0.0.2")
//			p2ptest.Eventually(t, 60*time.Second, func() bool { return len(a.Peers()) == 0 }, "a loses b")
//			net.Heal()
//			require.NoError(t, b.Join(ctx, []string{a.GossipAddr()})) // healing is the caller's job
//			// ... b.Stop, a.Stop, then time.Sleep(10 * time.Second) (see duty 2)
//		})
//	}
//
// Addresses are synthetic "host:port" strings. A host that is an IP literal
// is used as is; a host name gets an IP from 198.18.0.0/15 on first use (so
// memberlist, which needs IPs, can advertise it); an empty or unspecified
// host means the IP of the node name's host part ("a@10.0.0.1" ->
// 10.0.0.1). Port 0 picks a free port from 20000 up. There is no DNS: join
// memberlist seeds by the "ip:port" that GossipAddr returns. PeerID,
// NodeName and HostAt map between node names, peer IDs and listen
// addresses.
//
// The caller's duties:
//
//  1. Close what you start (memberlist Shutdown, host Close), or Close the
//     Network, which shuts down every transport and closes every host.
//  2. In a bubble, after memberlist's Shutdown, sleep a few fake seconds
//     (more than two probe intervals) before the test function returns:
//     memberlist does not wait for its probe goroutines, and the bubble's
//     clock stops when the test function returns, so they would never end
//     and synctest would report "blocked goroutines remain".
//  3. After Heal, reconnect: a healed network links the hosts again but
//     restores no connection and no membership, as after a real partition.
//
// # Concurrency
//
// All methods of Network, Transport and Host are safe for concurrent use.
// The package starts no goroutine of its own: transports only move values
// onto channels, so nothing of p2ptest is left running after Shutdown or
// Close, except the timer of a packet a bandwidth limit holds back, which
// fires within PacketQueue. The mocknet hosts run libp2p's goroutines, which end when the host
// closes. Everything works inside a synctest bubble (no real sockets, no
// wall clock) and outside one; create a Network inside the bubble that
// uses it, since bubbled channels may not be used from outside.
//
// # Guarantees
//
//   - A cut (Partition, Split, Isolate) drops every memberlist packet
//     between the two nodes, fails stream dials at once with
//     ErrUnreachable, closes open streams between them, and unlinks and
//     disconnects their libp2p hosts. It applies to nodes that start later
//     under those names, until Heal.
//   - Drop acts on memberlist only. A rate below 1 loses each packet with
//     that probability, stream dials fail with the probability that either
//     direction loses one, and open streams stay reliable (as TCP over a
//     lossy link). A rate of 1 either way is a memberlist cut: it also
//     closes open streams and fails every dial. libp2p hosts stay linked
//     and connected whatever the rate, which is how a frozen (SIGSTOPped)
//     node looks: its connections stay open while its gossip goes
//     unanswered, and only failure detection can tell.
//   - Sends never block. Packets arrive in the order they were sent, or
//     not at all. Stream writes block like net.Pipe until the peer reads,
//     the deadline passes, or either end closes.
//   - With the same seed and the same sequence of calls, the losses and the
//     generated keys are the same. memberlist and libp2p have randomness of
//     their own, so tests wait for outcomes with Eventually.
//   - A bandwidth limit (SetBandwidth) delays libp2p and memberlist stream
//     writes from one node to another until a token bucket has their bytes,
//     and delays or (past PacketQueue) drops memberlist packets: what is
//     sent that way by time t after the limit is set is at most the bucket
//     (1/16 s of the rate, at least 1,500 bytes) plus rate*t.
//   - libp2p streams are mocknet's: they carry bytes reliably and in order,
//     but their SetDeadline, SetReadDeadline and SetWriteDeadline do
//     nothing (go-libp2p v0.51.0), so code that relies on a deadline to end
//     a stuck read must also Close or Reset the stream.
//   - Routing is by address, as on a real network: a memberlist.Address's
//     Name is not checked, and two live nodes may share a name (so a layer
//     above can test that it refuses the second).
package p2ptest
