// Package p2p moves bytes between named, authenticated nodes and tells who
// is in the cluster. It knows nothing of processes: the root package nodal
// builds pids, links and monitors on top of it (see ARCHITECTURE.md's layering).
//
// A node is a libp2p host (TCP, Noise, yamux) carrying one framed stream
// per pair of nodes (protocol DistProtocol; on the TCP network the frames
// then move to a direct TLS 1.3 connection of the pair, direct.go), plus a hashicorp/memberlist
// member for membership, SWIM failure detection and gossip. Each node's
// memberlist metadata carries its libp2p peer ID, addresses and
// incarnation, so joining one seed is enough to reach everyone: every node
// connects to every member (Erlang's full mesh).
//
// # Usage
//
//	h, err := p2p.Start(ctx, p2p.Config{
//		Name:   "a@10.0.0.1",
//		Cookie: secret,
//		Seeds:  []string{"10.0.0.2:7946"},
//	}, handler)
//	...
//	err = h.Send(ctx, "b@10.0.0.2", frame)
//	...
//	err = h.Stop(ctx)
//
// The caller's duties:
//
//  1. Provide a Handler (optionally also a MemberHandler and a
//     GossipHandler, below). Its NodeUp/Frame/NodeDown are called on the
//     connection's reader goroutine: keep them short (a slow Frame stalls
//     that peer's inbound stream, which is the back-pressure).
//  2. Keep the cookie secret and the same on every node. A node with
//     another cookie is refused on both paths: its gossip cannot be
//     decrypted (Join fails with ErrCookieMismatch) and its libp2p
//     handshake fails (ErrCookieMismatch; both sides log "cookie mismatch
//     from <node>"). The cookie is never logged.
//  3. Use one name mode (short "a@host" or long "a@host.domain"/"a@10.0.0.1")
//     per cluster and unique names; mixing modes fails with ErrNameMode and a
//     second live node with a used name fails with ErrNameInUse. A node
//     restarted on the same gossip address replaces its earlier start at
//     once (that start cannot hold the port any more); restarted on another
//     address before the cluster declared its earlier self dead (SWIM takes
//     ~5 s with ProfileLAN, even after a kill) it is refused the same way
//     until then: retry Start or Join.
//  4. Call Stop. It says goodbye on every connection (peers see ErrLeft),
//     leaves the membership, and waits for every goroutine it started.
//  5. After a partition, rejoin: memberlist does not reconnect by itself
//     (Join with a seed from the other side; the heal package does this).
//     Seeds may be DNS names ("seeds.ns.svc:7946"): each Join looks them
//     up again (Config.Advanced.Resolver), so a seed that moved is found.
//  6. Behind NAT, in a container or on a wildcard bind (0.0.0.0, ::), set
//     Config.AdvertiseAddr (and AdvertiseGossipAddr when the gossip port
//     is forwarded to another one): members then dial what is advertised,
//     never what is bound. ListenAddrs and GossipBindAddr report what is
//     bound; Self().Addrs and GossipAddr what is advertised.
//  7. Frames between two nodes on the TCP network go on a connection of
//     their own, to a second port beside ListenAddr (Advanced.DirectPort:
//     a free one by default). Behind a firewall that drops it, fix the
//     port and open it, or set DirectOff: frames then stay on the libp2p
//     connection (each connection setup otherwise waits up to 2 s for the
//     direct dial before it falls back).
//
// Optional Handler interfaces, found by type assertion:
//
//   - MemberHandler gets membership changes (MemberEvent: joined, updated,
//     failed, left, replaced), independent of connections: a member that
//     fails while nobody is connected to it is reported too. memberlist
//     v0.7 does not expose suspicion (its delegates are never told, and
//     the Node.State it hands out is never filled in), so there is no
//     suspect event or state: a member is alive until it is declared
//     failed (about 5 s after it stops answering, with ProfileLAN) or
//     leaves. A node that stops marks its meta "leaving" before its leave,
//     so members tell Left from Failed without a connection.
//   - GossipHandler takes part in memberlist's gossip: LocalState and
//     MergeRemoteState ride on push/pull (every member's state reaches
//     every member eventually), NotifyMsg gets other members' Broadcast
//     (piggy-backed, best effort, a newer broadcast with the same key
//     replaces a queued older one, at most MaxBroadcastSize bytes). p2p
//     frames both with the sender's name and incarnation.
//
// Nodes advertise small key/value tags in their memberlist meta
// (Config.Tags, Host.SetTags; at most MaxTagsSize bytes, since the meta's
// 512 bytes also carry the libp2p addresses); others read them in
// Member.Tags.
//
// Members connect to each other by themselves (a full mesh, redialed with
// backoff after a broken connection). Connect dials a node by name and
// waits; Reach(ctx, node, done) starts a dial to a live member in the
// background, bounded by ctx, and reports its outcome to done exactly once
// (it returns false, and never calls done, for a node that is not a live
// member or when the host is stopping), for a layer that queues traffic
// meanwhile (the node layer's auto-connect).
//
// Hidden nodes (Config.Hidden) do not join the membership: they connect to
// the nodes they are given (ConnectAddr with a "host:port" listener, or
// Connect by name for nodes met before) and never appear in Members.
//
// Tests use p2ptest, an in-process Network with partitions, inside a
// testing/synctest bubble.
//
// # Concurrency
//
// All Host methods are safe for concurrent use. Each connection has one
// reader and one writer goroutine; senders append encoded frames to the
// connection's bounded queue and the writer sends everything queued with
// one write. memberlist's callbacks never block: they update the one
// member view (a copy-on-write snapshot that every reader loads without a
// lock) and queue the change for one membership goroutine, which reports
// member events in order and keeps the mesh. GossipHandler methods run on
// memberlist's goroutines and must not block. Every goroutine is owned by a
// syncutil.Stopper (connection goroutines by a child one) and Stop waits
// for all of them.
//
// # Guarantees
//
//   - Nothing from a peer is delivered before the mutual cookie handshake
//     (HMAC-SHA256 over both nonces, peer IDs and names) succeeds.
//   - Per connection: NodeUp happens before every Frame, which all happen
//     before NodeDown. A NodeDown of an old connection to a node happens
//     before the NodeUp of a new one. Frames from one node arrive in the
//     order they were sent. NodeDown reasons are errors.Is-able:
//     ErrConnClosed, ErrFailureDetected, ErrLeft, ErrDisconnected,
//     ErrFrameTooLarge, ErrProtocol, ErrShutdown.
//   - Member events for one member come in the order this node saw them,
//     from one goroutine, never concurrently. Hidden nodes produce none.
//     A crash is never reported as MemberLeft.
//   - Each node start has a new incarnation, carried in the handshake and
//     the membership, so a restarted node is told from its earlier self.
//   - Outbound memory per peer is bounded by Config.Advanced.SendQueueBytes: Send
//     blocks (bounded by its ctx) and TrySend fails with ErrQueueFull when
//     it is full. Frames still queued when a connection breaks are counted
//     as dropped in Stats; nothing is lost silently.
//   - Frames are bounded by Config.Advanced.MaxFrameSize on both sides; malformed
//     input closes the connection with a reason, never panics, and never
//     allocates more than the limit.
//   - If two nodes dial each other at once, exactly one connection
//     survives (the one dialed by the lower peer ID).
//
// # Hostile peers
//
// The listen and gossip ports face whatever can reach them. What a peer
// that does not know the cookie, or misbehaves after the handshake, can
// hold is bounded as follows (defaults in parentheses, all in
// Config.Advanced; refusals are counted in Stats().Guard and logged at
// Warn, at most one line per kind and second, with the number suppressed).
//
// Bounded:
//
//   - Impostors. Each side checks the other's HMAC over both nonces, both
//     peer IDs and both names: a dialer or listener that claims success
//     with a MAC it could not compute is refused ("cookie mismatch from
//     <node>: its handshake MAC does not prove our cookie" on the refusing
//     side, ErrCookieMismatch to the caller), nothing it sent reaches the
//     Handler, and its libp2p connection is closed.
//   - Time to authenticate: HandshakeTimeout (7 s, Erlang's net_setuptime).
//     An outbound dial fails after it. On the TCP network every inbound
//     connection is closed when it has not passed the cookie handshake by
//     then, whatever it is stuck in: TCP only, Noise, yamux, no dist
//     stream, a dist stream that never finishes (libp2p alone would keep
//     the first stages for 15 s and an idle secured connection forever).
//   - Pending inbound connections (TCP network): at most
//     MaxPendingPerSource (64) per source IP and MaxPendingConns (1024) in
//     total, enforced by a libp2p connection gater at accept, before any
//     cryptography; more are closed at once (Stats().Guard.RefusedPerSource,
//     RefusedTotal). A connection stops being pending when it passes the
//     cookie handshake, fails its security handshake (every `node ctl`
//     makes one such dial to learn the node's peer ID) or closes.
//     Measured with BenchmarkHalfOpenFlood: 15,000
//     half-open connections cost the node at most about 1,000 file
//     descriptors and 15 MB of RSS, and calls and new ctl connections keep
//     working.
//   - Dist handshakes per libp2p peer: at most 8 at once. A peer that opens
//     more dist streams loses its libp2p connection, an authenticated one
//     included (NodeDown reason ErrProtocol; Stats().Guard.StreamFloods).
//   - The direct port (TCP network, direct.go): at most 64 connections
//     being secured at once (more are closed at accept), each closed after
//     HandshakeTimeout or as soon as its token matches no cookie handshake
//     in progress with the same peer ID; nothing reaches the Handler
//     through it before the cookie handshake on the libp2p stream passed.
//   - Gossip stream (memberlist TCP) connections: the same two caps on
//     connections open at once, checked as memberlist's transport hands
//     them over (memberlist v0.7.0 accepts them itself; a refused one is
//     closed at once), and each lasts at most memberlist's TCPTimeout,
//     which Start lowers to HandshakeTimeout.
//   - After the handshake, malformed frames, a length prefix beyond
//     MaxFrameSize (8 MiB) or not minimally encoded, unknown frame types:
//     the connection is closed with ErrProtocol or ErrFrameTooLarge and
//     counted in that peer's DecodeErrors; other peers are not affected
//     (each connection has its own reader, writer and queue).
//
// Not bounded, or only partly:
//
//   - A source IP shared by honest nodes (a NAT, several nodes on one
//     machine) shares MaxPendingPerSource: while one of them floods, the
//     others cannot open new connections; established ones are unaffected.
//   - With a Network other than the default TCP one (p2ptest, or your
//     own), there is no connection gater: pending libp2p connections are
//     neither capped nor timed out by nodal (dist handshakes still are).
//     Libp2pOptions must not set a ConnectionGater of their own (libp2p
//     refuses two).
//   - The accept itself: the kernel completes TCP handshakes (SYN floods
//     are the kernel's business) and every refused connection still costs
//     an accept and a close; memberlist's listener has no cap before its
//     own accept.
//   - memberlist's UDP port: packets are authenticated and decrypted with
//     the cookie-derived key and dropped when they fail, but their rate is
//     not limited.
//   - A peer that knows the cookie is trusted: it may send any number of
//     valid frames (the Handler's pace is its back-pressure) and gossip.
package p2p
