package p2p

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/sec"
	tptu "github.com/libp2p/go-libp2p/p2p/net/upgrader"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// This file bounds what a peer that has not passed the cookie handshake
// may hold: libp2p connections (a connmgr.ConnectionGater, so the cap is
// applied where libp2p accepts a TCP connection, before any
// security handshake) and dist streams (handleStream).

// maxPendingStreamsPerPeer bounds the dist handshakes one libp2p peer may
// run at once. An honest peer runs one (two in a simultaneous dial); more
// is a stream flood and costs the peer its connection.
const maxPendingStreamsPerPeer = 8

// refusalLogEvery is the rate limit of refusal log lines (per kind).
const refusalLogEvery = time.Second

// guardCounters are the host-wide counters behind GuardStats.
type guardCounters struct {
	refusedPerSource, refusedTotal, timeouts, handshakeFailures, streamFloods atomic.Uint64
	gossipRefusedPerSource, gossipRefusedTotal                                atomic.Uint64
}

// rateLog logs one Warn line per kind at most every refusalLogEvery, and
// says how many were suppressed since the last line.
type rateLog struct {
	mu         sync.Mutex
	last       map[string]time.Time
	suppressed map[string]int
}

func (r *rateLog) warn(kind, msg string, kv ...any) {
	r.mu.Lock()
	if r.last == nil {
		r.last, r.suppressed = map[string]time.Time{}, map[string]int{}
	}
	now := time.Now()
	if t, ok := r.last[kind]; ok && now.Sub(t) < refusalLogEvery {
		r.suppressed[kind]++
		r.mu.Unlock()
		return
	}
	n := r.suppressed[kind]
	r.last[kind], r.suppressed[kind] = now, 0
	r.mu.Unlock()
	log.Warnw(msg, append(kv, "suppressed", n)...)
}

// pendingConn is an inbound libp2p connection that has not passed the
// cookie handshake yet.
type pendingConn struct {
	src   string
	c     io.Closer
	timer *time.Timer
}

// connGuard is the libp2p connection gater of a Host on the TCP network.
// InterceptAccept admits an inbound TCP connection only while its source
// address has fewer than MaxPendingPerSource, and the host fewer than
// MaxPendingConns, connections pending; a pending connection that has not
// passed the cookie handshake within HandshakeTimeout is closed, whatever
// stage it is stuck in (TCP, Noise, yamux, no dist stream, dist handshake).
type connGuard struct {
	timeout            time.Duration
	maxTotal, maxPerIP int
	ctr                *guardCounters
	rl                 *rateLog

	mu       sync.Mutex
	closed   bool
	pending  map[string]*pendingConn // by remote multiaddr
	perIP    map[string]int
	accepted uint64
}

var _ connmgr.ConnectionGater = (*connGuard)(nil)

func newConnGuard(a Advanced, ctr *guardCounters, rl *rateLog) *connGuard {
	return &connGuard{
		timeout:  a.HandshakeTimeout,
		maxTotal: a.MaxPendingConns,
		maxPerIP: a.MaxPendingPerSource,
		ctr:      ctr,
		rl:       rl,
		pending:  make(map[string]*pendingConn),
		perIP:    make(map[string]int),
	}
}

func sourceIP(a ma.Multiaddr) string {
	if ip, err := manet.ToIP(a); err == nil {
		return ip.String()
	}
	return a.String()
}

// InterceptAccept implements connmgr.ConnectionGater: the caps.
func (g *connGuard) InterceptAccept(cm network.ConnMultiaddrs) bool {
	remote := cm.RemoteMultiaddr()
	key, src := remote.String(), sourceIP(remote)
	closer, _ := cm.(io.Closer)
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return false
	}
	if g.perIP[src] >= g.maxPerIP {
		g.mu.Unlock()
		g.ctr.refusedPerSource.Add(1)
		g.rl.warn("per-source", "refused connection from "+src+": too many pending handshakes from this address",
			"source", src, "limit", g.maxPerIP)
		return false
	}
	if len(g.pending) >= g.maxTotal {
		g.mu.Unlock()
		g.ctr.refusedTotal.Add(1)
		g.rl.warn("total", "refused connection from "+src+": too many pending handshakes in total",
			"source", src, "limit", g.maxTotal)
		return false
	}
	if old := g.pending[key]; old != nil { // a reused source port: the old one is gone
		g.removeLocked(key, old)
	}
	p := &pendingConn{src: src, c: closer}
	p.timer = time.AfterFunc(g.timeout, func() { g.expire(key, p) })
	g.pending[key] = p
	g.perIP[src]++
	g.accepted++
	g.mu.Unlock()
	return true
}

func (g *connGuard) removeLocked(key string, p *pendingConn) {
	p.timer.Stop()
	delete(g.pending, key)
	if g.perIP[p.src]--; g.perIP[p.src] <= 0 {
		delete(g.perIP, p.src)
	}
}

// expire closes a connection that is still pending after the deadline.
func (g *connGuard) expire(key string, p *pendingConn) {
	g.mu.Lock()
	if g.pending[key] != p {
		g.mu.Unlock()
		return
	}
	g.removeLocked(key, p)
	g.mu.Unlock()
	g.ctr.timeouts.Add(1)
	g.rl.warn("timeout", fmt.Sprintf("closed connection from %s: no cookie handshake within %s", p.src, g.timeout),
		"source", p.src)
	if p.c != nil {
		_ = p.c.Close()
	}
}

// settled marks the inbound connection from remote as no longer
// pending: it passed the cookie handshake, or it closed before (its slot
// is free at once, not when its handshake deadline would have expired).
func (g *connGuard) settled(remote ma.Multiaddr) {
	key := remote.String()
	g.mu.Lock()
	defer g.mu.Unlock()
	if p := g.pending[key]; p != nil {
		g.removeLocked(key, p)
	}
}

// notifiee frees the slot of a pending connection that closes after
// libp2p upgraded it (one that fails the security handshake keeps its
// slot until its deadline: libp2p tells the gater nothing about it).
func (g *connGuard) notifiee() network.Notifiee {
	return &network.NotifyBundle{DisconnectedF: func(_ network.Network, c network.Conn) {
		if c.Stat().Direction == network.DirInbound {
			g.settled(c.RemoteMultiaddr())
		}
	}}
}

// security is the constructor of the host's Noise transport when it has a
// guard: libp2p tells a gater nothing of a connection that fails its
// security handshake, and every `node ctl` makes one such (its probe of
// the listener's peer ID, connectaddr.go), so without this each held a
// pending slot until its deadline and a burst of ctl runs from one address
// was refused.
func (g *connGuard) security(id protocol.ID, key crypto.PrivKey, muxers []tptu.StreamMuxer) (*guardedNoise, error) {
	t, err := noise.New(id, key, muxers)
	if err != nil {
		return nil, err
	}
	return &guardedNoise{Transport: t, g: g}, nil
}

// guardedNoise is libp2p's Noise transport that frees the pending slot of
// an inbound connection whose security handshake fails.
type guardedNoise struct {
	*noise.Transport
	g *connGuard
}

// SecureInbound implements sec.SecureTransport.
func (t *guardedNoise) SecureInbound(ctx context.Context, insecure net.Conn, p peer.ID) (sec.SecureConn, error) {
	c, err := t.Transport.SecureInbound(ctx, insecure, p)
	if err != nil {
		if remote, merr := manet.FromNetAddr(insecure.RemoteAddr()); merr == nil {
			t.g.settled(remote)
		}
	}
	return c, err
}

// count returns how many connections are pending.
func (g *connGuard) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.pending)
}

// close stops every timer and refuses what comes later (Stop).
func (g *connGuard) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	for k, p := range g.pending {
		g.removeLocked(k, p)
	}
}

// InterceptPeerDial implements connmgr.ConnectionGater.
func (g *connGuard) InterceptPeerDial(peer.ID) bool { return true }

// InterceptAddrDial implements connmgr.ConnectionGater.
func (g *connGuard) InterceptAddrDial(peer.ID, ma.Multiaddr) bool { return true }

// InterceptSecured implements connmgr.ConnectionGater.
func (g *connGuard) InterceptSecured(network.Direction, peer.ID, network.ConnMultiaddrs) bool {
	return true
}

// InterceptUpgraded implements connmgr.ConnectionGater.
func (g *connGuard) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) {
	return true, 0
}

// streamGuard bounds concurrent gossip (memberlist TCP stream) connections
// per source address and in total; see guardTransport.
type streamGuard struct {
	maxTotal, maxPerIP int
	ctr                *guardCounters
	rl                 *rateLog

	mu    sync.Mutex
	total int
	perIP map[string]int
}

// admit reserves a slot for a stream from src, or says no.
func (g *streamGuard) admit(src string) bool {
	g.mu.Lock()
	switch {
	case g.perIP[src] >= g.maxPerIP:
		g.mu.Unlock()
		g.ctr.gossipRefusedPerSource.Add(1)
		g.rl.warn("gossip-per-source", "refused gossip stream from "+src+": too many open from this address",
			"source", src, "limit", g.maxPerIP)
		return false
	case g.total >= g.maxTotal:
		g.mu.Unlock()
		g.ctr.gossipRefusedTotal.Add(1)
		g.rl.warn("gossip-total", "refused gossip stream from "+src+": too many open in total",
			"source", src, "limit", g.maxTotal)
		return false
	}
	g.perIP[src]++
	g.total++
	g.mu.Unlock()
	return true
}

func (g *streamGuard) release(src string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.total--
	if g.perIP[src]--; g.perIP[src] <= 0 {
		delete(g.perIP, src)
	}
}

func (g *streamGuard) open() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.total
}

// guardedConn releases its stream slot once, on Close.
type guardedConn struct {
	net.Conn
	g    *streamGuard
	src  string
	once sync.Once
}

func (c *guardedConn) Close() error {
	c.once.Do(func() { c.g.release(c.src) })
	return c.Conn.Close()
}

func connSource(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	if a := c.RemoteAddr(); a != nil {
		host, _, err := net.SplitHostPort(a.String())
		if err == nil {
			return host
		}
		return a.String()
	}
	return "?"
}

// guardTransport wraps a memberlist transport so that the stream (TCP)
// connections it accepts pass the streamGuard's caps before memberlist
// sees them. memberlist v0.7.0 accepts inside its NetTransport (the
// listener cannot be swapped), so the check sits on StreamCh: a refused
// connection is closed at once, an admitted one is bounded in time by
// memberlist's own deadline (Config.TCPTimeout, which Start lowers to
// HandshakeTimeout) and releases its slot when memberlist closes it.
type guardTransport struct {
	memberlist.NodeAwareTransport
	g    *streamGuard
	out  chan net.Conn
	stop <-chan struct{}
}

// StreamCh implements memberlist.Transport.
func (t *guardTransport) StreamCh() <-chan net.Conn { return t.out }

// forward runs on the host's stopper until Stop.
func (t *guardTransport) forward() {
	in := t.NodeAwareTransport.StreamCh()
	for {
		select {
		case c := <-in:
			src := connSource(c)
			if !t.g.admit(src) {
				_ = c.Close()
				continue
			}
			gc := &guardedConn{Conn: c, g: t.g, src: src}
			select {
			case t.out <- gc:
			case <-t.stop:
				_ = gc.Close()
				return
			}
		case <-t.stop:
			return
		}
	}
}
