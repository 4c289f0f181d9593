package p2ptest

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/hashicorp/memberlist"
)

// Transport is a memberlist NodeAwareTransport on a Network. Packets go
// straight onto the receiver's buffered channel and streams are in-memory
// pipes; nothing is ever sent on a blocking channel, so no sender waits for
// a receiver that stopped or fell behind. It starts no goroutine.
//
// All methods are safe for concurrent use, as memberlist requires.
type Transport struct {
	net  *Network
	name string
	seq  uint64
	addr netip.AddrPort
	udp  *net.UDPAddr
	tcp  *net.TCPAddr

	packetCh chan *memberlist.Packet
	streamCh chan net.Conn

	down    bool                 // guarded by net.mu
	streams map[*stream]struct{} // guarded by net.mu
}

var _ memberlist.NodeAwareTransport = (*Transport)(nil)

// NewTransport returns the memberlist transport of node name, bound to
// gossipAddr ("host:port"). The host may be an IP literal, a host name
// (given a synthetic IP from 198.18.0.0/15 on first use) or empty or
// unspecified (the IP of the node name's host part, "a@10.0.0.1" ->
// 10.0.0.1); port 0 picks a free port. The transport advertises the
// resulting "ip:port" (see GossipAddr). Set it as memberlist.Config.Transport
// with Config.Name = name; memberlist's Shutdown shuts it down.
func (n *Network) NewTransport(name string, gossipAddr string) (memberlist.NodeAwareTransport, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}
	ap, err := n.bindLocked(name, gossipAddr)
	if err != nil {
		return nil, fmt.Errorf("new transport %s: %w", name, err)
	}
	n.seq++
	t := &Transport{
		net:      n,
		name:     name,
		seq:      n.seq,
		addr:     ap,
		udp:      net.UDPAddrFromAddrPort(ap),
		tcp:      net.TCPAddrFromAddrPort(ap),
		packetCh: make(chan *memberlist.Packet, n.cfg.packetBuffer),
		streamCh: make(chan net.Conn, n.cfg.streamBacklog),
		streams:  map[*stream]struct{}{},
	}
	n.transports[ap] = t
	return t, nil
}

// Name returns the node name the transport was made for.
func (t *Transport) Name() string { return t.name }

// Addr returns the transport's "ip:port".
func (t *Transport) Addr() string { return t.addr.String() }

// FinalAdvertiseAddr returns the transport's own IP and port; the
// configured advertise address is ignored, since the simulated network only
// routes to the address it allocated.
func (t *Transport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	ip := net.IP(t.addr.Addr().AsSlice())
	return ip, int(t.addr.Port()), nil
}

// WriteTo sends a packet to addr; see WriteToAddress.
func (t *Transport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress sends a copy of b to the transport at a.Addr and returns
// the send time. Like UDP it never blocks and reports no loss: the packet
// is dropped (and counted in Stats) when nothing is live at the address, a
// cut or Drop rule is in the way, a bandwidth limit would hold it more than
// PacketQueue, or the receiver's packet channel is full; held less, it
// arrives that much later (a timer delivers it).
// It fails only for a malformed or unroutable address or after Shutdown.
// a.Name is ignored: routing is by address, as on a real network.
func (t *Transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	n := t.net
	now := time.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	if t.down {
		return now, ErrShutdown
	}
	ap, err := n.lookupLocked(a.Addr)
	if err != nil {
		return now, err
	}
	dst, ok := n.transports[ap]
	if !ok {
		n.countLocked(t.name, ap.String(), func(s *Stats) *uint64 { return &s.DroppedDown })
		return now, nil
	}
	switch {
	case n.blockedLocked(t.name, dst.name):
		n.countLocked(t.name, dst.name, func(s *Stats) *uint64 { return &s.DroppedCut })
		return now, nil
	case n.lossLocked(t.name, dst.name):
		n.countLocked(t.name, dst.name, func(s *Stats) *uint64 { return &s.DroppedRate })
		return now, nil
	}
	wait, ok := n.reservePacketLocked(t.name, dst.name, len(b))
	if !ok {
		n.countLocked(t.name, dst.name, func(s *Stats) *uint64 { return &s.DroppedBandwidth })
		return now, nil
	}
	buf := slices.Clone(b)
	if wait == 0 {
		n.deliverLocked(t, dst, buf, now)
		return now, nil
	}
	time.AfterFunc(wait, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		if dst.down {
			n.countLocked(t.name, dst.name, func(s *Stats) *uint64 { return &s.DroppedDown })
			return
		}
		n.deliverLocked(t, dst, buf, time.Now())
	})
	return now, nil
}

// deliverLocked puts a packet from t on dst's channel, or drops it when
// the channel is full. Callers hold mu.
func (n *Network) deliverLocked(t, dst *Transport, b []byte, at time.Time) {
	p := &memberlist.Packet{Buf: b, From: t.udp, Timestamp: at}
	select {
	case dst.packetCh <- p:
		n.countLocked(t.name, dst.name, func(s *Stats) *uint64 { return &s.Delivered })
	default:
		n.countLocked(t.name, dst.name, func(s *Stats) *uint64 { return &s.DroppedFull })
	}
}

// PacketCh returns the channel of packets sent to this transport. It is
// never closed; memberlist stops reading it on Shutdown.
func (t *Transport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// DialTimeout opens a stream to addr; see DialAddressTimeout.
func (t *Transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout opens a stream to the transport at a.Addr and returns
// its end at once: a synchronous in-memory pipe (net.Pipe) whose other end
// arrives on the receiver's StreamCh, with TCP addresses on both ends and
// working deadlines. It never waits: it fails with ErrRefused when nothing
// is live at the address or its backlog is full, and with ErrUnreachable
// across a cut or when lost to a Drop rate (timeout is not used). The
// stream is closed on both ends when a cut comes between them or either
// transport shuts down.
func (t *Transport) DialAddressTimeout(a memberlist.Address, _ time.Duration) (net.Conn, error) {
	n := t.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if t.down {
		return nil, ErrShutdown
	}
	ap, err := n.lookupLocked(a.Addr)
	if err != nil {
		return nil, err
	}
	dst, ok := n.transports[ap]
	if !ok {
		n.countLocked(t.name, ap.String(), func(s *Stats) *uint64 { return &s.StreamsRefused })
		return nil, fmt.Errorf("%w: dial %s", ErrRefused, ap)
	}
	if n.blockedLocked(t.name, dst.name) || n.dialLossLocked(t.name, dst.name) {
		n.countLocked(t.name, dst.name, func(s *Stats) *uint64 { return &s.StreamsUnreachable })
		return nil, fmt.Errorf("%w: dial %s (%s) from %s", ErrUnreachable, ap, dst.name, t.name)
	}
	s := newStream(n, t, dst)
	select {
	case dst.streamCh <- s.ends[1]:
	default:
		_ = s.ends[0].Conn.Close()
		_ = s.ends[1].Conn.Close()
		n.countLocked(t.name, dst.name, func(st *Stats) *uint64 { return &st.StreamsRefused })
		return nil, fmt.Errorf("%w: dial %s: backlog full", ErrRefused, ap)
	}
	n.streams[s] = struct{}{}
	t.streams[s] = struct{}{}
	dst.streams[s] = struct{}{}
	n.countLocked(t.name, dst.name, func(st *Stats) *uint64 { return &st.StreamsOpened })
	return s.ends[0], nil
}

// StreamCh returns the channel of streams dialled to this transport. It is
// never closed.
func (t *Transport) StreamCh() <-chan net.Conn { return t.streamCh }

// Shutdown frees the transport's address and closes its ends of all its
// streams, including those not yet accepted (the peers read io.EOF); later
// sends to it are dropped and dials to it refused. Packets still queued
// are discarded. It is idempotent.
func (t *Transport) Shutdown() error {
	n := t.net
	n.mu.Lock()
	if t.down {
		n.mu.Unlock()
		return nil
	}
	t.down = true
	delete(n.transports, t.addr)
	delete(n.ports, t.addr)
	var own []*pipeConn
	for s := range t.streams {
		if _, ok := n.streams[s]; ok {
			delete(n.streams, s)
			n.countLocked(s.dialer.name, s.listener.name, func(st *Stats) *uint64 { return &st.StreamsSevered })
		}
		if s.dialer == t {
			own = append(own, s.ends[0])
		} else {
			own = append(own, s.ends[1])
		}
	}
	clear(t.streams)
	n.mu.Unlock()
	// Close this transport's ends, as a dying process's sockets are; the
	// peers then read io.EOF and fail to write.
	slices.SortFunc(own, func(a, b *pipeConn) int { return cmpUint(a.s.id, b.s.id) })
	for _, c := range own {
		_ = c.Close()
	}
	for {
		select {
		case <-t.packetCh:
		case c := <-t.streamCh:
			_ = c.Close()
		default:
			return nil
		}
	}
}

// loss draws whether one packet from -> to is lost to a Drop rule.
// Callers hold mu.
func (n *Network) lossLocked(from, to string) bool {
	r := n.drops[[2]string{from, to}]
	return r > 0 && n.rng.Float64() < r
}

// dialLoss draws whether a dial between from and to fails: it needs a
// packet through in each direction. Callers hold mu.
func (n *Network) dialLossLocked(from, to string) bool {
	pass := (1 - n.drops[[2]string{from, to}]) * (1 - n.drops[[2]string{to, from}])
	return pass < 1 && n.rng.Float64() >= pass
}
