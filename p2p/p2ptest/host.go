package p2ptest

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
)

// Host is a libp2p host on the network's mocknet. It is the mocknet's
// host.Host with a Close that first unlinks it from every other host, so a
// closed node looks gone (dials to it fail) rather than half alive.
type Host struct {
	host.Host
	inner host.Host
	net   *Network
	name  string
	seq   uint64
	addr  netip.AddrPort

	closing bool // guarded by net.mu: Close has begun, keep it unlinked

	once     sync.Once
	closeErr error
}

var _ host.Host = (*Host)(nil)

// NewHost adds a libp2p host for node name to the mocknet, with identity key
// (nil: a key from the seeded RNG, so the peer ID is the same on every run)
// and the listen address listen ("host:port", resolved as by
// NewTransport; it becomes the host's /ip4 or /ip6 .../tcp/port multiaddr).
// The host is linked to every other live host it is not cut from; it still
// has to dial them (host.Connect or NewStream) to connect. It fails with
// ErrPeerIDInUse while a live host has the same key. The caller closes the
// host; Network.Close closes the ones left.
func (n *Network) NewHost(ctx context.Context, name string, key crypto.PrivKey, listen string) (host.Host, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("new host %s: %w", name, err)
	}
	if key == nil {
		k, _, err := crypto.GenerateEd25519Key(rngReader{n})
		if err != nil {
			return nil, fmt.Errorf("new host %s: %w", name, err)
		}
		key = k
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("new host %s: %w", name, err)
	}

	n.opMu.Lock()
	defer n.opMu.Unlock()
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, ErrClosed
	}
	if _, ok := n.hosts[id]; ok {
		n.mu.Unlock()
		return nil, fmt.Errorf("new host %s: %w: %s", name, ErrPeerIDInUse, id)
	}
	ap, err := n.bindLocked(name, listen)
	if err != nil {
		n.mu.Unlock()
		return nil, fmt.Errorf("new host %s: %w", name, err)
	}
	n.mu.Unlock()

	maddr, err := multiaddrOf(ap)
	var inner host.Host
	if err == nil {
		inner, err = n.mn.AddPeer(key, maddr)
	}
	if err != nil {
		n.mu.Lock()
		delete(n.ports, ap)
		n.mu.Unlock()
		return nil, fmt.Errorf("new host %s: %w", name, err)
	}
	n.mu.Lock()
	n.seq++
	h := &Host{Host: inner, inner: inner, net: n, name: name, seq: n.seq, addr: ap}
	n.hosts[id] = h
	plan := n.planLinksLocked()
	n.mu.Unlock()
	n.applyLinks(plan)
	return h, nil
}

// NodeName returns the node name the host was made for.
func (h *Host) NodeName() string { return h.name }

// cutFrom reports whether the partition table cuts h from the host with
// peer ID p. Unlinking the mocknet stops new connections, but mocknet
// tears a connection down one side at a time; checking the table on every
// stream and connection keeps a cut watertight meanwhile.
func (h *Host) cutFrom(p peer.ID) bool {
	n := h.net
	n.mu.Lock()
	defer n.mu.Unlock()
	o, ok := n.hosts[p]
	return ok && n.blockedLocked(h.name, o.name)
}

// Connect implements host.Host, refusing a node h is cut from.
func (h *Host) Connect(ctx context.Context, ai peer.AddrInfo) error {
	if h.cutFrom(ai.ID) {
		return fmt.Errorf("connect %s: %w", ai.ID, ErrUnreachable)
	}
	return h.inner.Connect(ctx, ai)
}

// NewStream implements host.Host, refusing a node h is cut from even over
// a connection the cut has not torn down yet. The stream's writes wait for
// the bandwidth limit from h's node to p's (SetBandwidth).
func (h *Host) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	if h.cutFrom(p) {
		return nil, fmt.Errorf("new stream to %s: %w", p, ErrUnreachable)
	}
	s, err := h.inner.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	return h.limit(s, p), nil
}

// SetStreamHandler implements host.Host: streams from a node h is cut
// from are reset instead of handled; the others' writes wait for the
// bandwidth limit from h's node to the remote one (SetBandwidth).
func (h *Host) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.inner.SetStreamHandler(pid, func(s network.Stream) {
		if h.cutFrom(s.Conn().RemotePeer()) {
			_ = s.Reset()
			return
		}
		handler(h.limit(s, s.Conn().RemotePeer()))
	})
}

// Close unlinks the host from every other host, closes its connections and
// then the host itself, and frees its address. It is idempotent.
func (h *Host) Close() error {
	h.once.Do(func() {
		n := h.net
		id := h.inner.ID()
		n.opMu.Lock()
		n.mu.Lock()
		var unlink []peer.ID
		others := n.sortedHostsLocked()
		for _, o := range others {
			k := idKey(id, o.ID())
			if n.linked[k] {
				delete(n.linked, k)
				unlink = append(unlink, o.ID())
			}
		}
		h.closing = true
		n.mu.Unlock()
		for _, o := range unlink {
			_ = n.mn.UnlinkPeers(id, o)
		}
		// mocknet closes the far side of a connection in a goroutine of
		// its own; close it from the far side first, so no peer can open
		// a stream to the closed host over a connection not yet torn down.
		for _, o := range others {
			if o != h {
				_ = o.inner.Network().ClosePeer(id)
			}
		}
		n.opMu.Unlock()
		h.closeErr = h.inner.Close()
		n.mu.Lock()
		if n.hosts[id] == h {
			delete(n.hosts, id)
		}
		delete(n.ports, h.addr)
		n.mu.Unlock()
	})
	return h.closeErr
}

func multiaddrOf(ap netip.AddrPort) (ma.Multiaddr, error) {
	proto := "ip4"
	if ap.Addr().Is6() {
		proto = "ip6"
	}
	m, err := ma.NewMultiaddr(fmt.Sprintf("/%s/%s/tcp/%d", proto, ap.Addr().WithZone(""), ap.Port()))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidAddr, ap, err)
	}
	return m, nil
}
