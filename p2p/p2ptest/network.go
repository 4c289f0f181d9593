package p2ptest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"golang.org/x/time/rate"
)

var log = logging.Logger("nodal/p2ptest")

const (
	// DefaultSeed seeds the drop RNG and the generated keys when WithSeed is
	// not given, so two runs of one test make the same choices.
	DefaultSeed = 1
	// DefaultPacketBuffer is the capacity of each transport's packet
	// channel. A packet that finds it full is dropped, as a full UDP
	// receive buffer drops a datagram; 1024 is far more than memberlist's
	// single reader ever falls behind by.
	DefaultPacketBuffer = 1024
	// DefaultStreamBacklog is the capacity of each transport's stream
	// channel (its accept backlog). A dial that finds it full is refused.
	DefaultStreamBacklog = 64

	firstPort = 20000 // first port handed out for ":0"
)

// synthBase is the first IP handed to a host name that is not an IP literal
// (198.18.0.0/15 is reserved for benchmarks, RFC 2544, so it does not clash
// with the addresses tests write by hand).
var synthBase = netip.MustParseAddr("198.18.0.1")

// Option configures a Network made by New.
type Option func(*config)

type config struct {
	seed          int64
	packetBuffer  int
	streamBacklog int
}

// WithSeed seeds the network's RNG, which decides Drop losses and makes
// the keys of NewHost calls given a nil key. The default is DefaultSeed.
func WithSeed(seed int64) Option {
	return func(c *config) { c.seed = seed }
}

// WithPacketBuffer sets the capacity of each transport's packet channel;
// values below 1 keep DefaultPacketBuffer.
func WithPacketBuffer(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.packetBuffer = n
		}
	}
}

// WithStreamBacklog sets the capacity of each transport's stream channel;
// values below 1 keep DefaultStreamBacklog.
func WithStreamBacklog(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.streamBacklog = n
		}
	}
}

// Network is an in-process network of named nodes: libp2p hosts on a
// mocknet and memberlist transports over channels, both governed by one
// partition table. Make one with New; it is safe for concurrent use. See the
// package documentation.
type Network struct {
	cfg config
	mn  mocknet.Mocknet

	// opMu serialises changes that touch the mocknet (new host, host close,
	// partition changes), so link changes apply in the order they were
	// decided. It is taken before mu and never while mu is held; mocknet
	// calls run with opMu held and mu released, because they may call
	// back into code that asks the Network questions.
	opMu sync.Mutex

	mu     sync.Mutex
	closed bool
	rng    *rand.Rand

	hostIPs  map[string]netip.Addr // host name -> IP, for names that are not IP literals
	nextIP   netip.Addr
	nextPort map[netip.Addr]uint16
	ports    map[netip.AddrPort]struct{} // held by a live transport or host

	seq        uint64
	transports map[netip.AddrPort]*Transport
	hosts      map[peer.ID]*Host
	linked     map[[2]peer.ID]bool // mocknet link state, key sorted
	streams    map[*stream]struct{}

	cuts     map[[2]string]struct{} // unordered pairs, key sorted
	isolated map[string]struct{}
	drops    map[[2]string]float64       // directed: {from, to}
	limits   map[[2]string]*rate.Limiter // bandwidth, directed: {from, to}
	limited  atomic.Bool                 // limits is not empty: the stream writes' fast path

	stats     Stats
	pairStats map[[2]string]*Stats // directed: {from, to}
}

// New returns an empty network. It starts no goroutine; Close releases
// everything it made.
func New(opts ...Option) *Network {
	cfg := config{seed: DefaultSeed, packetBuffer: DefaultPacketBuffer, streamBacklog: DefaultStreamBacklog}
	for _, o := range opts {
		o(&cfg)
	}
	return &Network{
		cfg:        cfg,
		mn:         mocknet.New(),
		rng:        rand.New(rand.NewPCG(uint64(cfg.seed), 0x6e6f64616c)),
		hostIPs:    map[string]netip.Addr{"localhost": netip.MustParseAddr("127.0.0.1")},
		nextIP:     synthBase,
		nextPort:   map[netip.Addr]uint16{},
		ports:      map[netip.AddrPort]struct{}{},
		transports: map[netip.AddrPort]*Transport{},
		hosts:      map[peer.ID]*Host{},
		linked:     map[[2]peer.ID]bool{},
		streams:    map[*stream]struct{}{},
		cuts:       map[[2]string]struct{}{},
		isolated:   map[string]struct{}{},
		drops:      map[[2]string]float64{},
		limits:     map[[2]string]*rate.Limiter{},
		pairStats:  map[[2]string]*Stats{},
	}
}

// Close shuts down every transport and closes every host and the mocknet.
// Later NewHost and NewTransport calls fail with ErrClosed. It is
// idempotent and returns when every host has closed.
func (n *Network) Close() error {
	n.opMu.Lock()
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		n.opMu.Unlock()
		return nil
	}
	n.closed = true
	ts := n.sortedTransportsLocked()
	hs := n.sortedHostsLocked()
	n.mu.Unlock()
	n.opMu.Unlock()

	for _, t := range ts {
		_ = t.Shutdown()
	}
	for _, h := range hs {
		_ = h.Close()
	}
	return n.mn.Close()
}

// Mocknet returns the underlying libp2p mocknet, for tests that need its
// finer controls. Links it changes are not known to the partition table,
// and the next partition change may undo them.
func (n *Network) Mocknet() mocknet.Mocknet { return n.mn }

// GossipAddr returns the "ip:port" of the live transport of node name (the
// newest if several share the name), ready for memberlist's Join.
func (n *Network) GossipAddr(name string) (string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var best *Transport
	for _, t := range n.transports {
		if t.name == name && (best == nil || t.seq > best.seq) {
			best = t
		}
	}
	if best == nil {
		return "", false
	}
	return best.addr.String(), true
}

// PeerID returns the peer ID of the live host of node name (the newest if
// several share the name).
func (n *Network) PeerID(name string) (peer.ID, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var best *Host
	for _, h := range n.hosts {
		if h.name == name && !h.closing && (best == nil || h.seq > best.seq) {
			best = h
		}
	}
	if best == nil {
		return "", false
	}
	return best.ID(), true
}

// NodeName returns the node name of the live host with peer ID id.
func (n *Network) NodeName(id peer.ID) (string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	h, ok := n.hosts[id]
	if !ok || h.closing {
		return "", false
	}
	return h.name, true
}

// HostAt returns the peer ID of the live host listening on listen
// ("host:port" as given to NewHost, or its "ip:port").
func (n *Network) HostAt(listen string) (peer.ID, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ap, err := n.lookupLocked(listen)
	if err != nil {
		return "", false
	}
	for id, h := range n.hosts {
		if h.addr == ap && !h.closing {
			return id, true
		}
	}
	return "", false
}

// NodeAt returns the node name of the live transport or host at addr
// ("host:port" or "ip:port"), so a memberlist address or a listen address
// can be told by name.
func (n *Network) NodeAt(addr string) (string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ap, err := n.lookupLocked(addr)
	if err != nil {
		return "", false
	}
	if t, ok := n.transports[ap]; ok {
		return t.name, true
	}
	for _, h := range n.hosts {
		if h.addr == ap && !h.closing {
			return h.name, true
		}
	}
	return "", false
}

// Nodes returns the names that have a live host or transport, sorted and
// without duplicates.
func (n *Network) Nodes() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var names []string
	for _, t := range n.transports {
		names = append(names, t.name)
	}
	for _, h := range n.hosts {
		if !h.closing {
			names = append(names, h.name)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Stats returns the network's counters since New.
func (n *Network) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}

// PairStats returns the counters of traffic from node from to node to
// (packets and stream dials in that direction) since New. Traffic to an
// address where nothing was live is counted under that "ip:port" as to.
func (n *Network) PairStats(from, to string) Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	if s, ok := n.pairStats[[2]string{from, to}]; ok {
		return *s
	}
	return Stats{}
}

// count adds one to the counter chosen by f in the totals and in the
// from->to pair. Callers hold mu.
func (n *Network) countLocked(from, to string, f func(*Stats) *uint64) {
	*f(&n.stats)++
	k := [2]string{from, to}
	s, ok := n.pairStats[k]
	if !ok {
		s = &Stats{}
		n.pairStats[k] = s
	}
	*f(s)++
}

// bind turns the "host:port" a node asked for into a free "ip:port" and
// reserves it. Callers hold mu.
func (n *Network) bindLocked(node, hostport string) (netip.AddrPort, error) {
	if hostport == "" {
		hostport = ":0"
	}
	h, p, err := splitHostPort(hostport)
	if err != nil {
		return netip.AddrPort{}, err
	}
	var ip netip.Addr
	if h == "" {
		ip = n.machineIPLocked(node)
	} else if a, err := netip.ParseAddr(h); err == nil {
		ip = a.Unmap()
		if ip.IsUnspecified() {
			ip = n.machineIPLocked(node)
		}
	} else {
		ip = n.hostIPLocked(h)
	}
	if p == 0 {
		p, err = n.freePortLocked(ip)
		if err != nil {
			return netip.AddrPort{}, err
		}
	}
	ap := netip.AddrPortFrom(ip, p)
	if _, used := n.ports[ap]; used {
		return netip.AddrPort{}, fmt.Errorf("%w: %s", ErrAddrInUse, ap)
	}
	n.ports[ap] = struct{}{}
	return ap, nil
}

// lookup resolves an address to dial or send to without allocating.
// Callers hold mu.
func (n *Network) lookupLocked(hostport string) (netip.AddrPort, error) {
	h, p, err := splitHostPort(hostport)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if a, err := netip.ParseAddr(h); err == nil {
		return netip.AddrPortFrom(a.Unmap(), p), nil
	}
	ip, ok := n.hostIPs[strings.ToLower(h)]
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("%w: %q", ErrNoRoute, h)
	}
	return netip.AddrPortFrom(ip, p), nil
}

// machineIP is the IP of the machine a node name says it runs on: the IP
// literal after '@', or the IP allocated to that host name.
func (n *Network) machineIPLocked(node string) netip.Addr {
	h := node
	if i := strings.LastIndexByte(node, '@'); i >= 0 {
		h = node[i+1:]
	}
	if a, err := netip.ParseAddr(h); err == nil && !a.IsUnspecified() {
		return a.Unmap()
	}
	return n.hostIPLocked(h)
}

func (n *Network) hostIPLocked(h string) netip.Addr {
	h = strings.ToLower(h)
	if ip, ok := n.hostIPs[h]; ok {
		return ip
	}
	ip := n.nextIP
	n.nextIP = ip.Next()
	n.hostIPs[h] = ip
	return ip
}

func (n *Network) freePortLocked(ip netip.Addr) (uint16, error) {
	p := n.nextPort[ip]
	if p < firstPort {
		p = firstPort
	}
	for range 1 << 16 {
		ap := netip.AddrPortFrom(ip, p)
		next := p + 1
		if next == 0 {
			next = 1024
		}
		if _, used := n.ports[ap]; !used {
			n.nextPort[ip] = next
			return p, nil
		}
		p = next
	}
	return 0, fmt.Errorf("%w: %s", ErrNoFreePort, ip)
}

func (n *Network) sortedTransportsLocked() []*Transport {
	ts := make([]*Transport, 0, len(n.transports))
	for _, t := range n.transports {
		ts = append(ts, t)
	}
	slices.SortFunc(ts, func(a, b *Transport) int { return cmpUint(a.seq, b.seq) })
	return ts
}

func (n *Network) sortedHostsLocked() []*Host {
	hs := make([]*Host, 0, len(n.hosts))
	for _, h := range n.hosts {
		hs = append(hs, h)
	}
	slices.SortFunc(hs, func(a, b *Host) int { return cmpUint(a.seq, b.seq) })
	return hs
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func splitHostPort(hostport string) (string, uint16, error) {
	h, ps, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, fmt.Errorf("%w: %w", ErrInvalidAddr, err)
	}
	p, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("%w: port %q of %q", ErrInvalidAddr, ps, hostport)
	}
	return h, uint16(p), nil
}

// rngReader reads from the network's seeded RNG; NewHost uses it to make
// deterministic keys.
type rngReader struct{ n *Network }

func (r rngReader) Read(p []byte) (int, error) {
	r.n.mu.Lock()
	defer r.n.mu.Unlock()
	for i := range p {
		p[i] = byte(r.n.rng.Uint32())
	}
	return len(p), nil
}
