// Package faultproxy is a user-space network fault injector for tests: it
// forwards TCP connections and UDP packets between loopback (or namespace)
// addresses and adds latency, loss and a bandwidth limit, the way tc netem
// and tbf would on a slow WAN link. It sits between nodes that advertise
// the proxy's address (Config.AdvertiseAddr) instead of their own, or that
// NAT rules send through it.
//
// # Usage
//
//	p := faultproxy.New(faultproxy.Faults{MinDelay: 50 * time.Millisecond, MaxDelay: 100 * time.Millisecond, Loss: 0.01}, 1)
//	defer p.Close()
//	addr, err := p.Forward("127.0.0.1:0", "127.0.0.1:7946", faultproxy.AToB, true) // TCP and UDP on one port
//
// # Ways
//
// A Proxy is one link between two sides, A and B, and each Way of it (AToB,
// BToA) has faults of its own: a slow uplink, a one-way cut. Forward names
// the way traffic from its clients to its target travels; the target's
// answers travel the other way. Two Forwards of one proxy in opposite ways
// (one in front of each side) make every byte A sends to B, on whichever
// side's connection, take way AToB: one bandwidth bucket, one blackhole.
//
// # Faults
//
// Each UDP packet is dropped with probability Loss and otherwise
// delivered after a delay drawn uniformly from [MinDelay, MaxDelay];
// packets may be reordered, as on a real network. A TCP stream cannot lose
// bytes, so each chunk read from one side is delivered in order after such
// a delay, and with probability Loss it is held back RetransmitDelay
// longer (what a lost segment costs TCP: its retransmission timeout, 200 ms
// minimum on Linux). One way through the proxy adds one delay.
//
// Bandwidth limits a way to that many bytes per second with a token bucket
// of Burst bytes that every connection and packet of the way draws from:
// the bytes delivered that way by time t after the limit was set are at
// most Burst + Bandwidth*t. A TCP chunk (at most Burst bytes) leaves the
// proxy's reader only once the bucket has its bytes, so a fast sender is
// held back by TCP's own flow control, as behind a slow link; a UDP packet
// that would wait more than UDPQueue for the bucket is dropped, as by a
// full router queue.
//
// Blackhole makes a way drop every UDP packet and hold every TCP byte
// (connections stay open, nothing arrives): a node behind it looks
// crashed to everyone sending to it that way. A connection accepted while
// its clients' way is blackholed is dialled to the target only once the
// way clears, and not at all if its client closes it first.
//
// # Concurrency
//
// All methods are safe for concurrent use. Close stops every goroutine
// the proxy started and waits for them.
package faultproxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Way is a direction of traffic through a Proxy, or a set of them.
type Way uint8

const (
	// AToB is the traffic from side A to side B.
	AToB Way = 1 << iota
	// BToA is the traffic from side B to side A.
	BToA
	// Both is AToB and BToA.
	Both = AToB | BToA
)

// String returns "a->b", "b->a" or "both".
func (w Way) String() string {
	switch w {
	case AToB:
		return "a->b"
	case BToA:
		return "b->a"
	case Both:
		return "both"
	}
	return fmt.Sprintf("Way(%d)", uint8(w))
}

// reverse returns the other way of a single way.
func (w Way) reverse() Way { return Both &^ w }

// UDPQueue is how long a UDP packet may wait for a way's bandwidth bucket
// before it is dropped instead.
const UDPQueue = 250 * time.Millisecond

// maxChunk is the most a TCP read takes at once.
const maxChunk = 32 << 10

// Faults are what the proxy does to the traffic of a way.
type Faults struct {
	MinDelay, MaxDelay time.Duration // one-way added latency, uniform in [MinDelay, MaxDelay]
	Loss               float64       // probability a UDP packet is lost or a TCP chunk retransmitted
	// RetransmitDelay is what a "lost" TCP chunk waits more; default 200 ms.
	RetransmitDelay time.Duration
	// Bandwidth is the most bytes per second the way carries (TCP and UDP
	// payloads together); 0 means no limit.
	Bandwidth int
	// Burst is the size in bytes of the way's token bucket, also the
	// largest TCP chunk it sends at once; default 1/16 s of Bandwidth, at
	// least 1,500 bytes (one packet).
	Burst int
}

// Stats count what went through the proxy.
type Stats struct {
	UDPPackets, UDPDropped uint64 // packets received, and dropped (loss, blackhole or a full bandwidth queue)
	TCPConns               uint64 // connections accepted
	TCPChunks, TCPRetrans  uint64 // chunks forwarded, and of them delayed as retransmitted
	Bytes                  uint64 // payload bytes delivered (TCP chunks and UDP packets)
}

// way is the state of one way.
type way struct {
	faults    Faults
	limiter   *rate.Limiter // nil without a bandwidth limit
	blackhole bool
	clear     chan struct{} // closed while not blackholed

	udpPackets, udpDropped, tcpConns, tcpChunks, tcpRetrans, bytes atomic.Uint64
}

// Proxy forwards and perturbs traffic; see the package doc.
type Proxy struct {
	mu      sync.Mutex
	ways    [2]*way // AToB, BToA
	rng     *rand.Rand
	closing chan struct{}
	closed  bool
	closers []io.Closer
	wg      sync.WaitGroup
}

// New returns a proxy with faults f both ways and a random source seeded
// with seed.
func New(f Faults, seed uint64) *Proxy {
	p := &Proxy{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), closing: make(chan struct{})}
	for i := range p.ways {
		w := &way{clear: make(chan struct{})}
		close(w.clear)
		p.ways[i] = w
	}
	p.SetFaults(Both, f)
	return p
}

// each calls f for the state of every single way in ws.
func (p *Proxy) each(ws Way, f func(*way)) {
	if ws&AToB != 0 {
		f(p.ways[0])
	}
	if ws&BToA != 0 {
		f(p.ways[1])
	}
}

// of returns the state of the single way w.
func (p *Proxy) of(w Way) *way {
	if w == BToA {
		return p.ways[1]
	}
	return p.ways[0]
}

// SetFaults changes the faults of the ways in ws for traffic from now on.
// A changed bandwidth applies to the bucket as it is (its tokens are kept,
// capped at the new Burst).
func (p *Proxy) SetFaults(ws Way, f Faults) {
	if f.RetransmitDelay == 0 {
		f.RetransmitDelay = 200 * time.Millisecond
	}
	if f.MaxDelay < f.MinDelay {
		f.MaxDelay = f.MinDelay
	}
	if f.Bandwidth < 0 {
		f.Bandwidth = 0
	}
	if f.Bandwidth > 0 && f.Burst <= 0 {
		f.Burst = max(f.Bandwidth/16, 1500)
	}
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.each(ws, func(w *way) {
		w.faults = f
		switch {
		case f.Bandwidth == 0:
			w.limiter = nil
		case w.limiter == nil:
			w.limiter = rate.NewLimiter(rate.Limit(f.Bandwidth), f.Burst)
		default:
			w.limiter.SetLimitAt(now, rate.Limit(f.Bandwidth))
			w.limiter.SetBurstAt(now, f.Burst)
		}
	})
}

// Blackhole turns the blackhole of the ways in ws on or off (see the
// package doc).
func (p *Proxy) Blackhole(ws Way, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.each(ws, func(w *way) {
		if on == w.blackhole {
			return
		}
		w.blackhole = on
		if on {
			w.clear = make(chan struct{})
		} else {
			close(w.clear)
		}
	})
}

// Stats returns the counters so far of the ways in ws, summed.
func (p *Proxy) Stats(ws Way) Stats {
	var s Stats
	p.each(ws, func(w *way) {
		s.UDPPackets += w.udpPackets.Load()
		s.UDPDropped += w.udpDropped.Load()
		s.TCPConns += w.tcpConns.Load()
		s.TCPChunks += w.tcpChunks.Load()
		s.TCPRetrans += w.tcpRetrans.Load()
		s.Bytes += w.bytes.Load()
	})
	return s
}

// unit is what the faults decided for one chunk or packet.
type unit struct {
	delay time.Duration // latency, retransmission included
	lost  bool
	wait  time.Duration // for the bandwidth bucket
	hole  bool
}

// draw decides the faults of n bytes going way w. With a bandwidth limit
// the bytes are taken from the bucket; a UDP packet that would wait more
// than UDPQueue takes nothing and is lost.
func (p *Proxy) draw(w Way, n int, udp bool) unit {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.of(w)
	f := st.faults
	u := unit{delay: f.MinDelay, hole: st.blackhole}
	if f.MaxDelay > f.MinDelay {
		u.delay += time.Duration(p.rng.Int64N(int64(f.MaxDelay - f.MinDelay + 1)))
	}
	u.lost = p.rng.Float64() < f.Loss
	if u.lost && !udp {
		u.delay += f.RetransmitDelay
	}
	if st.limiter == nil || (udp && (u.lost || u.hole)) {
		return u
	}
	// A chunk is at most the burst the reader was given; the burst may
	// have shrunk since, so the bytes are taken in pieces the bucket can
	// hold, one after the other.
	var rs []*rate.Reservation
	for left := n; left > 0; {
		k := min(left, st.limiter.Burst())
		r := st.limiter.ReserveN(now, k)
		rs = append(rs, r)
		u.wait = max(u.wait, r.DelayFrom(now))
		left -= k
	}
	if udp && u.wait > UDPQueue {
		for i := len(rs) - 1; i >= 0; i-- {
			rs[i].CancelAt(now)
		}
		u.lost, u.wait = true, 0
	}
	return u
}

// chunkSize is how much a TCP read of way w takes: the bucket's burst
// under a bandwidth limit, so that one chunk never waits for more than a
// full bucket.
func (p *Proxy) chunkSize(w Way) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l := p.of(w).limiter; l != nil {
		return min(maxChunk, l.Burst())
	}
	return maxChunk
}

// ErrClosed is returned by Forward after Close.
var ErrClosed = errors.New("faultproxy: closed")

// ErrWay is returned by Forward for a way that is not AToB or BToA.
var ErrWay = errors.New("faultproxy: forward needs one way, AToB or BToA")

// Forward listens on listen ("host:port", port 0 for any) and forwards to
// target: TCP connections, and UDP packets too when udp is set (on the
// same port, as memberlist needs). What its clients send to target goes
// way w (AToB: target is side B); target's answers go the other way. It
// returns the address it listens on.
func (p *Proxy) Forward(listen, target string, w Way, udp bool) (string, error) {
	if w != AToB && w != BToA {
		return "", fmt.Errorf("%w, not %v", ErrWay, w)
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return "", err
	}
	var lastErr error
	for range 20 {
		l, err := net.Listen("tcp", listen)
		if err != nil {
			return "", err
		}
		addr := l.Addr().String()
		var u *net.UDPConn
		if udp {
			ua, err := net.ResolveUDPAddr("udp", net.JoinHostPort(host, strconv.Itoa(l.Addr().(*net.TCPAddr).Port)))
			if err == nil {
				u, err = net.ListenUDP("udp", ua)
			}
			if err != nil {
				l.Close()
				lastErr = err
				continue
			}
		}
		if !p.track(l) || (u != nil && !p.track(u)) {
			l.Close()
			if u != nil {
				u.Close()
			}
			return "", ErrClosed
		}
		p.wg.Go(func() { p.acceptLoop(l, func() (net.Conn, error) { return net.Dial("tcp", target) }, w) })
		if u != nil {
			p.wg.Go(func() { p.udpLoop(u, target, w) })
		}
		return addr, nil
	}
	return "", lastErr
}

// track registers c to be closed by Close; false after Close.
func (p *Proxy) track(c io.Closer) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.closers = append(p.closers, c)
	return true
}

// Close closes every listener and connection and waits for the proxy's
// goroutines. It is idempotent.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return nil
	}
	p.closed = true
	close(p.closing)
	cs := p.closers
	p.closers = nil
	p.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
	}
	p.wg.Wait()
	return nil
}

// acceptLoop forwards each connection l accepts to a connection dial
// makes; what the client sends goes way w.
func (p *Proxy) acceptLoop(l net.Listener, dial func() (net.Conn, error), w Way) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		p.of(w).tcpConns.Add(1)
		if !p.track(c) {
			c.Close()
			return
		}
		p.wg.Go(func() {
			// A connection made while its way is blackholed reaches the
			// target only once the way clears, and not at all if its client
			// gives up first, as a SYN dropped on the way never opens one:
			// the target never holds a pile of half-open connections from
			// the proxy's address.
			c, ok := p.holdUntilClear(c, w)
			if !ok {
				c.Close()
				return
			}
			up, err := dial()
			if err != nil || !p.track(up) {
				if up != nil {
					up.Close()
				}
				c.Close()
				return
			}
			var once sync.Once
			closeBoth := func() { once.Do(func() { c.Close(); up.Close() }) }
			var wg sync.WaitGroup
			wg.Go(func() { p.pipe(c, up, w, closeBoth) })
			wg.Go(func() { p.pipe(up, c, w.reverse(), closeBoth) })
			wg.Wait()
		})
	}
}

// maxHeld bounds what holdUntilClear keeps of a held client's bytes; past
// it the client is no longer read (TCP's flow control holds it back).
const maxHeld = 64 << 10

// holdUntilClear waits while way w is blackholed, reading what client c
// sends meanwhile so that a client that gives up (closes, resets) is seen:
// then it returns false and the target is never dialled. Otherwise it
// returns c with the bytes read so far put back in front of its stream.
// It returns false when the proxy closes first.
func (p *Proxy) holdUntilClear(c net.Conn, w Way) (net.Conn, bool) {
	p.mu.Lock()
	clear := p.of(w).clear
	p.mu.Unlock()
	select {
	case <-clear:
		return c, true
	default:
	}
	var held []byte
	var readErr error
	gone := make(chan struct{}) // closed when the reader returns
	go func() {
		defer close(gone)
		buf := make([]byte, 4096)
		for len(held) < maxHeld {
			n, err := c.Read(buf[:min(len(buf), maxHeld-len(held))])
			held = append(held, buf[:n]...)
			if err != nil {
				readErr = err
				return
			}
		}
	}()
	select {
	case <-clear:
	case <-gone:
		if readErr != nil {
			return c, false // the client gave up before the way cleared
		}
		select { // maxHeld read: wait without reading further
		case <-clear:
		case <-p.closing:
			return c, false
		}
	case <-p.closing:
		c.Close()
		<-gone
		return c, false
	}
	_ = c.SetReadDeadline(time.Now()) // stop the reader, keep the connection
	<-gone
	if readErr != nil && !errors.Is(readErr, os.ErrDeadlineExceeded) {
		return c, false
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return c, false
	}
	if len(held) == 0 {
		return c, true
	}
	return &prefixedConn{Conn: c, r: io.MultiReader(bytes.NewReader(held), c)}, true
}

// prefixedConn reads r (bytes already read from Conn, then Conn itself).
type prefixedConn struct {
	net.Conn
	r io.Reader
}

func (c *prefixedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// CloseWrite half-closes Conn when it can (a TCP connection).
func (c *prefixedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

type chunk struct {
	b   []byte
	at  time.Time
	eof bool
}

// pipe copies src to dst in order, way w: each chunk leaves once the
// bandwidth bucket has its bytes and arrives after its delay.
func (p *Proxy) pipe(src, dst net.Conn, w Way, closeBoth func()) {
	st := p.of(w)
	q := make(chan chunk, 256) // bounded: a held (blackholed) stream pushes back on the sender
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range q {
			if c.eof {
				if tc, ok := dst.(interface{ CloseWrite() error }); ok {
					_ = tc.CloseWrite()
				}
				return
			}
			if !p.wait(w, c.at) {
				closeBoth()
				return
			}
			if _, err := dst.Write(c.b); err != nil {
				closeBoth()
				return
			}
			st.bytes.Add(uint64(len(c.b)))
		}
	}()
	var last time.Time
	for {
		buf := make([]byte, p.chunkSize(w))
		n, err := src.Read(buf)
		if n > 0 {
			u := p.draw(w, n, false)
			if u.lost {
				st.tcpRetrans.Add(1)
			}
			st.tcpChunks.Add(1)
			if u.wait > 0 && !p.sleep(u.wait, done) {
				closeBoth()
				close(q)
				<-done
				return
			}
			at := time.Now().Add(u.delay)
			if at.Before(last) {
				at = last // a stream stays in order
			}
			last = at
			select {
			case q <- chunk{b: buf[:n], at: at}:
			case <-p.closing:
				closeBoth()
			case <-done:
			}
		}
		if err != nil {
			select {
			case q <- chunk{eof: true}:
			case <-p.closing:
			case <-done:
			}
			close(q)
			<-done
			if !errors.Is(err, io.EOF) {
				closeBoth()
			}
			return
		}
	}
}

// sleep waits d; false when the proxy closes or done is closed first.
func (p *Proxy) sleep(d time.Duration, done <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.closing:
	case <-done:
	}
	return false
}

// wait sleeps until at and then while way w's blackhole is on; false when
// the proxy closes first.
func (p *Proxy) wait(w Way, at time.Time) bool {
	if !p.sleep(time.Until(at), nil) {
		return false
	}
	p.mu.Lock()
	clear := p.of(w).clear
	p.mu.Unlock()
	select {
	case <-clear:
		return true
	case <-p.closing:
		return false
	}
}

// udpLoop forwards packets from each source through its own upstream
// socket, so that replies from target go back to that source; packets to
// target go way w, replies the other way.
func (p *Proxy) udpLoop(l *net.UDPConn, target string, w Way) {
	ta, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		return
	}
	sessions := map[string]*net.UDPConn{}
	buf := make([]byte, 65536)
	for {
		n, src, err := l.ReadFromUDP(buf)
		if err != nil {
			return
		}
		up := sessions[src.String()]
		if up == nil {
			if up, err = net.DialUDP("udp", nil, ta); err != nil || !p.track(up) {
				if up != nil {
					up.Close()
				}
				continue
			}
			sessions[src.String()] = up
			p.wg.Go(func() { p.udpReturn(up, l, src, w.reverse()) })
		}
		p.sendLater(w, append([]byte(nil), buf[:n]...), func(b []byte) { _, _ = up.Write(b) })
	}
}

// udpReturn forwards target's replies on up back to src through l, way w.
func (p *Proxy) udpReturn(up, l *net.UDPConn, src *net.UDPAddr, w Way) {
	buf := make([]byte, 65536)
	for {
		n, err := up.Read(buf)
		if err != nil {
			return
		}
		p.sendLater(w, append([]byte(nil), buf[:n]...), func(b []byte) { _, _ = l.WriteToUDP(b, src) })
	}
}

// sendLater drops b or sends it way w after its wait for the bandwidth
// bucket and its delay.
func (p *Proxy) sendLater(w Way, b []byte, send func([]byte)) {
	st := p.of(w)
	st.udpPackets.Add(1)
	u := p.draw(w, len(b), true)
	if u.lost || u.hole {
		st.udpDropped.Add(1)
		return
	}
	p.wg.Add(1)
	time.AfterFunc(u.wait+u.delay, func() {
		defer p.wg.Done()
		select {
		case <-p.closing:
		default:
			send(b)
			st.bytes.Add(uint64(len(b)))
		}
	})
}
