// Package faultproxy is a user-space network fault injector for tests: it
// forwards TCP connections and UDP packets between loopback (or namespace)
// addresses and adds latency and loss, the way tc netem would on a slow
// WAN link. It sits between nodes that advertise the proxy's address
// (Config.AdvertiseAddr) instead of their own.
//
// # Usage
//
//	p := faultproxy.New(faultproxy.Faults{MinDelay: 50 * time.Millisecond, MaxDelay: 100 * time.Millisecond, Loss: 0.01}, 1)
//	defer p.Close()
//	addr, err := p.Forward("127.0.0.1:0", "127.0.0.1:7946", true) // TCP and UDP on one port
//
// # Faults
//
// Each UDP packet, in either direction, is dropped with probability Loss
// and otherwise delivered after a delay drawn uniformly from
// [MinDelay, MaxDelay]; packets may be reordered, as on a real network.
// A TCP stream cannot lose bytes, so each chunk read from one side is
// delivered in order after such a delay, and with probability Loss it is
// held back RetransmitDelay longer (what a lost segment costs TCP: its
// retransmission timeout, 200 ms minimum on Linux). One way through the
// proxy adds one delay: a round trip through two proxies (one in front of
// each node) adds two.
//
// Blackhole makes the proxy drop every UDP packet and hold every TCP byte
// (connections stay open, nothing arrives): a node behind it looks
// crashed to everyone sending to it.
//
// # Concurrency
//
// All methods are safe for concurrent use. Close stops every goroutine
// the proxy started and waits for them.
package faultproxy

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Faults are what the proxy does to traffic.
type Faults struct {
	MinDelay, MaxDelay time.Duration // one-way added latency, uniform in [MinDelay, MaxDelay]
	Loss               float64       // probability a UDP packet is lost or a TCP chunk retransmitted
	// RetransmitDelay is what a "lost" TCP chunk waits more; default 200 ms.
	RetransmitDelay time.Duration
}

// Stats count what went through the proxy.
type Stats struct {
	UDPPackets, UDPDropped uint64 // packets received, and dropped (loss or blackhole)
	TCPConns               uint64 // connections accepted
	TCPChunks, TCPRetrans  uint64 // chunks forwarded, and of them delayed as retransmitted
}

// Proxy forwards and perturbs traffic; see the package doc.
type Proxy struct {
	mu        sync.Mutex
	faults    Faults
	rng       *rand.Rand
	blackhole bool
	clear     chan struct{} // closed while not blackholed
	closing   chan struct{}
	closed    bool
	closers   []io.Closer
	wg        sync.WaitGroup

	udpPackets, udpDropped, tcpConns, tcpChunks, tcpRetrans atomic.Uint64
}

// New returns a proxy with faults f and a random source seeded with seed.
func New(f Faults, seed uint64) *Proxy {
	p := &Proxy{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), clear: make(chan struct{}), closing: make(chan struct{})}
	close(p.clear)
	p.SetFaults(f)
	return p
}

// SetFaults changes the faults for traffic from now on.
func (p *Proxy) SetFaults(f Faults) {
	if f.RetransmitDelay == 0 {
		f.RetransmitDelay = 200 * time.Millisecond
	}
	if f.MaxDelay < f.MinDelay {
		f.MaxDelay = f.MinDelay
	}
	p.mu.Lock()
	p.faults = f
	p.mu.Unlock()
}

// Blackhole turns the blackhole on or off (see the package doc).
func (p *Proxy) Blackhole(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on == p.blackhole {
		return
	}
	p.blackhole = on
	if on {
		p.clear = make(chan struct{})
	} else {
		close(p.clear)
	}
}

// Stats returns the counters so far.
func (p *Proxy) Stats() Stats {
	return Stats{
		UDPPackets: p.udpPackets.Load(), UDPDropped: p.udpDropped.Load(),
		TCPConns: p.tcpConns.Load(), TCPChunks: p.tcpChunks.Load(), TCPRetrans: p.tcpRetrans.Load(),
	}
}

// draw returns a delay and whether the unit is "lost".
func (p *Proxy) draw() (time.Duration, bool, time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.faults
	d := f.MinDelay
	if f.MaxDelay > f.MinDelay {
		d += time.Duration(p.rng.Int64N(int64(f.MaxDelay - f.MinDelay + 1)))
	}
	return d, p.rng.Float64() < f.Loss, f.RetransmitDelay, p.blackhole
}

// ErrClosed is returned by Forward after Close.
var ErrClosed = errors.New("faultproxy: closed")

// Forward listens on listen ("host:port", port 0 for any) and forwards to
// target: TCP connections, and UDP packets too when udp is set (on the
// same port, as memberlist needs). It returns the address it listens on.
func (p *Proxy) Forward(listen, target string, udp bool) (string, error) {
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
		p.wg.Go(func() { p.acceptLoop(l, target) })
		if u != nil {
			p.wg.Go(func() { p.udpLoop(u, target) })
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

func (p *Proxy) acceptLoop(l net.Listener, target string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		p.tcpConns.Add(1)
		if !p.track(c) {
			c.Close()
			return
		}
		p.wg.Go(func() {
			up, err := net.Dial("tcp", target)
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
			wg.Go(func() { p.pipe(c, up, closeBoth) })
			wg.Go(func() { p.pipe(up, c, closeBoth) })
			wg.Wait()
		})
	}
}

type chunk struct {
	b   []byte
	at  time.Time
	eof bool
}

// pipe copies src to dst in order, each chunk after its delay.
func (p *Proxy) pipe(src, dst net.Conn, closeBoth func()) {
	q := make(chan chunk, 256) // bounded: a held (blackholed) stream pushes back on the sender
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range q {
			if c.eof {
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
				return
			}
			if !p.wait(c.at) {
				closeBoth()
				return
			}
			if _, err := dst.Write(c.b); err != nil {
				closeBoth()
				return
			}
		}
	}()
	var last time.Time
	for {
		buf := make([]byte, 32<<10)
		n, err := src.Read(buf)
		if n > 0 {
			d, lost, rto, _ := p.draw()
			if lost {
				d += rto
				p.tcpRetrans.Add(1)
			}
			p.tcpChunks.Add(1)
			at := time.Now().Add(d)
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

// wait sleeps until at and then while the blackhole is on; false when the
// proxy closes first.
func (p *Proxy) wait(at time.Time) bool {
	t := time.NewTimer(time.Until(at))
	defer t.Stop()
	select {
	case <-t.C:
	case <-p.closing:
		return false
	}
	p.mu.Lock()
	clear := p.clear
	p.mu.Unlock()
	select {
	case <-clear:
		return true
	case <-p.closing:
		return false
	}
}

// udpLoop forwards packets from each source through its own upstream
// socket, so that replies from target go back to that source.
func (p *Proxy) udpLoop(l *net.UDPConn, target string) {
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
			p.wg.Go(func() { p.udpReturn(up, l, src) })
		}
		p.sendLater(append([]byte(nil), buf[:n]...), func(b []byte) { _, _ = up.Write(b) })
	}
}

// udpReturn forwards target's replies on up back to src through l.
func (p *Proxy) udpReturn(up, l *net.UDPConn, src *net.UDPAddr) {
	buf := make([]byte, 65536)
	for {
		n, err := up.Read(buf)
		if err != nil {
			return
		}
		p.sendLater(append([]byte(nil), buf[:n]...), func(b []byte) { _, _ = l.WriteToUDP(b, src) })
	}
}

// sendLater drops b or sends it after its delay.
func (p *Proxy) sendLater(b []byte, send func([]byte)) {
	p.udpPackets.Add(1)
	d, lost, _, hole := p.draw()
	if lost || hole {
		p.udpDropped.Add(1)
		return
	}
	p.wg.Add(1)
	time.AfterFunc(d, func() {
		defer p.wg.Done()
		select {
		case <-p.closing:
		default:
			send(b)
		}
	})
}
