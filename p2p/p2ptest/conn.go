package p2ptest

import (
	"net"
	"sync"
)

// stream is one memberlist stream: a net.Pipe between a dialing and a
// listening transport. ends[0] is the dialer's end, ends[1] the listener's.
type stream struct {
	id       uint64
	n        *Network
	dialer   *Transport
	listener *Transport
	ends     [2]*pipeConn
}

// newStream makes the pipe pair. Callers hold n.mu.
func newStream(n *Network, dialer, listener *Transport) *stream {
	n.seq++
	s := &stream{id: n.seq, n: n, dialer: dialer, listener: listener}
	c0, c1 := net.Pipe()
	from := &net.TCPAddr{IP: dialer.tcp.IP, Port: ephemeralPort(s.id)}
	s.ends[0] = &pipeConn{Conn: c0, s: s, local: from, remote: listener.tcp, from: dialer.name, to: listener.name, done: make(chan struct{})}
	s.ends[1] = &pipeConn{Conn: c1, s: s, local: listener.tcp, remote: from, from: listener.name, to: dialer.name, done: make(chan struct{})}
	return s
}

// ephemeralPort is the dialer's port as the listener sees it: like a TCP
// client's, it is from the ephemeral range (49152-65535) and not the
// listening port; the IP is the dialer's, so memberlist's CIDR checks see
// the right source.
func ephemeralPort(id uint64) int { return 49152 + int(id%16384) }

// untrack takes the stream off the books once either end closes.
func (s *stream) untrack() {
	n := s.n
	n.mu.Lock()
	delete(n.streams, s)
	delete(s.dialer.streams, s)
	delete(s.listener.streams, s)
	n.mu.Unlock()
}

// closeStreams closes both ends of each stream. Callers do not hold n.mu.
func closeStreams(ss []*stream) {
	for _, s := range ss {
		_ = s.ends[0].Close()
		_ = s.ends[1].Close()
	}
}

// pipeConn is one end of a stream: a net.Pipe end with TCP addresses, that
// leaves the network's books when closed, and whose writes wait for the
// bandwidth limit from its node to the other end's.
type pipeConn struct {
	net.Conn
	s             *stream
	local, remote net.Addr
	from, to      string        // the node names of this end and the other
	done          chan struct{} // closed by Close: ends a bandwidth wait
	once          sync.Once
}

// Write writes b to the other end, waiting for the bandwidth limit (see
// Network.SetBandwidth).
func (c *pipeConn) Write(b []byte) (int, error) {
	return c.s.n.throttledWrite(c.from, c.to, b, c.done, c.Conn.Write)
}

// LocalAddr returns this end's TCP address.
func (c *pipeConn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the other end's TCP address.
func (c *pipeConn) RemoteAddr() net.Addr { return c.remote }

// Close closes this end; the other end then reads io.EOF and fails to
// write. It is idempotent.
func (c *pipeConn) Close() error {
	c.once.Do(func() { close(c.done); c.s.untrack() })
	return c.Conn.Close()
}
