package p2p

import (
	"context"
	"crypto/rand"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/lni/goutils/syncutil"
	ma "github.com/multiformats/go-multiaddr"
)

// This file holds the Host type and its small accessors. The rest of the
// Host is split by concern: lifecycle.go (Start, Stop), send.go (Send,
// TrySend, Connect, Reach, Disconnect, Ping, Peers, Stats), member.go (the
// member view, Join, Members, member events), delegate.go (memberlist's
// callbacks), mesh.go (the full-mesh dialers), dial.go (dial, accept and
// the handshake's driving), gossip.go (push/pull state and broadcasts) and
// tags.go (node tags in the meta).

const (
	// defaultLeaveTimeout bounds memberlist's Leave, and the goodbye flush,
	// when Stop's ctx has no deadline.
	defaultLeaveTimeout = 5 * time.Second
	// maxKnown bounds the remembered addresses of nodes met outside the membership.
	maxKnown = 1024
	// addrTTL is how long dial addresses stay in the peerstore.
	addrTTL = time.Hour
)

// ListenResolver is an optional interface of a Network: it returns the
// peer ID listening on a "host:port", so ConnectAddr needs no probe dial.
type ListenResolver interface {
	HostAt(listen string) (peer.ID, bool)
}

// Host is a running node of the p2p layer: a libp2p host carrying framed
// streams and (unless hidden) a memberlist member.
type Host struct {
	cfg     Config
	name    Name
	self    Peer
	handler Handler
	memberH MemberHandler // handler's optional member events, or nil
	gossipH GossipHandler // handler's optional gossip hooks, or nil
	lh      host.Host
	ml      *memberlist.Memberlist
	// mlShutdown is set (before Stop, by tests simulating a crash) when
	// memberlist was shut down without leaving.
	mlShutdown bool
	macKey     []byte
	// direct accepts direct connections (direct.go); nil when the frames
	// stay on libp2p streams.
	direct *directListener

	// guard bounds inbound connections that have not passed the cookie
	// handshake (nil on networks other than TCP); sguard bounds gossip
	// stream connections; gctr and rl count and log their refusals.
	guard  *connGuard
	sguard *streamGuard
	gctr   *guardCounters
	rl     *rateLog
	// floodMu serialises closing the connection of a stream flood.
	floodMu sync.Mutex

	ctx    context.Context // cancelled by Stop; bounds dials
	cancel context.CancelFunc

	stopper     *syncutil.Stopper // membership worker, joins, tag announcements
	connStopper *syncutil.Stopper // readers, writers, dialers
	stopOnce    sync.Once
	stopErr     error
	stopped     chan struct{}

	// table is a copy-on-write snapshot of conns for lock-free Send.
	table atomic.Pointer[map[string]*conn]

	mu       sync.Mutex
	stopping bool
	conns    map[string]*conn         // current connection per name
	last     map[string]*conn         // last connection per name (for NodeDown ordering)
	dialing  map[peer.ID]*dialCall    // outbound handshakes in progress
	known    map[string]peer.AddrInfo // nodes met outside the membership
	meshDial map[string]bool          // mesh dialers running
	stats    map[string]*peerCounters
	accepts  map[peer.ID]int // dist handshakes being accepted, per libp2p peer
	changed  chan struct{}   // closed and replaced on every conns change
	mergeErr error           // last refusal by our merge delegate

	gossipAddr  string      // advertised (memberlist's own address)
	gossipBound string      // bound, or gossipAddr when the transport does not say
	adv         *advertiser // what is announced instead of the bound addresses

	// members is the one member view (member.go).
	members membership

	// meta is this node's encoded memberlist meta; metaMu serialises its
	// rebuilds (SetTags, leaving) and guards tags and leaving.
	meta    atomic.Pointer[[]byte]
	metaMu  sync.Mutex
	tags    map[string]string
	leaving bool

	// broadcasts queues Broadcast's messages for memberlist's gossip.
	broadcasts   *memberlist.TransmitLimitedQueue
	maxBroadcast int // largest msg Broadcast accepts with this memberlist config
}

type dialCall struct {
	done chan struct{}
	c    *conn
	err  error
}

func newIncarnation() uint64 {
	var b [2]byte
	_, _ = rand.Read(b[:])
	// Microseconds since the epoch, with 16 random low bits: grows with
	// start time and differs between two starts in the same microsecond.
	return uint64(time.Now().UnixMicro())<<16 | uint64(b[0])<<8 | uint64(b[1])
}

func addrStrings(as []ma.Multiaddr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	slices.Sort(out)
	return out
}

// Self returns this node as others see it.
func (h *Host) Self() Peer {
	p := h.self
	p.Addrs = slices.Clone(p.Addrs)
	return p
}

// GossipAddr returns the memberlist "host:port" others can use as a seed,
// or "" for a hidden node.
func (h *Host) GossipAddr() string {
	return h.gossipAddr
}

// MaxFrameSize returns the largest frame Send accepts (Config.Advanced.MaxFrameSize).
func (h *Host) MaxFrameSize() int { return h.cfg.Advanced.MaxFrameSize }

// GossipBindAddr returns the memberlist "host:port" this node bound (a
// wildcard host when it bound one), or "" for a hidden node. GossipAddr is
// the address it advertises.
func (h *Host) GossipBindAddr() string {
	return h.gossipBound
}

// ListenAddrs returns the libp2p addresses this node bound as "host:port"
// (a wildcard host when it bound one; for ConnectAddr from the same
// machine). Self().Addrs are the addresses it advertises.
func (h *Host) ListenAddrs() []string {
	var out []string
	addrs := h.lh.Network().ListenAddresses()
	if len(addrs) == 0 {
		addrs = h.lh.Addrs()
	}
	for _, a := range addrs {
		ip, err := a.ValueForProtocol(ma.P_IP4)
		if err != nil {
			if ip, err = a.ValueForProtocol(ma.P_IP6); err == nil {
				ip = "[" + ip + "]"
			}
		}
		port, perr := a.ValueForProtocol(ma.P_TCP)
		if err == nil && perr == nil {
			out = append(out, ip+":"+port)
		}
	}
	slices.Sort(out)
	return out
}

func (h *Host) isStopping() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stopping
}

// publish refreshes the lock-free snapshot and wakes waiters; h.mu held
// (or during construction).
func (h *Host) publish() {
	m := maps.Clone(h.conns)
	h.table.Store(&m)
	close(h.changed)
	h.changed = make(chan struct{})
}

func (h *Host) lookup(node string) *conn {
	return (*h.table.Load())[node]
}

func (h *Host) counters(name string) *peerCounters {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.stats[name]
	if c == nil {
		c = &peerCounters{}
		h.stats[name] = c
	}
	return c
}

func (h *Host) unregister(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conns[c.peer.Name] == c {
		delete(h.conns, c.peer.Name)
		h.publish()
	}
}
