package p2p

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/sec"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/nodal-go/nodal/internal/hoptrace"
)

// Direct connections: on the TCP network the frames between two nodes run
// on a TCP connection of their own (Erlang's one distribution channel per
// node pair), secured by go-libp2p's TLS 1.3 transport with the host's
// identity key and no muxer. yamux's send and receive loops are two
// goroutine hand-offs per direction and take a third of the throughput;
// the direct connection has none. TLS rather than Noise: its AES-GCM
// (with the CPU's AES instructions) costs less per byte than Noise's
// ChaCha20-Poly1305; measured in nodal bench remote --size 1024, 1.2x the
// throughput, CPU per message -24 % on the sender and -9 % on the
// receiver. (The libp2p host's own connections keep Noise.)
//
// The libp2p stream still does everything that makes the connection
// trusted: the dialer opens it and both sides run the cookie handshake on
// it as before. The dialer's hello says it can go direct; the listener's
// answers with the port of its direct listener. After the verdict the
// dialer dials that port on the address its libp2p connection reached,
// runs TLS expecting the listener's peer ID, and sends a token only the
// two ends of this handshake can compute (handshakeMAC with role
// "direct"); the listener matches it with the handshake it belongs to and
// checks the TLS peer ID is the dialer's. The dialer then tells, on the
// stream, which path the frames take (1 direct, 0 the stream): if the
// direct dial fails (a firewall, a proxy in front of the node) the frames
// stay on the libp2p stream, the fallback. A node that advertises another
// address than it binds (AdvertiseAddr) keeps to the stream.
//
// A direct connection has no yamux keep-alive under it, so the host ticks
// instead (tickLoop): every directTick a connection that wrote nothing
// since the last tick sends a ping, and one that read nothing for
// directQuietTicks ticks is closed (ErrConnClosed), between 12 and 15 s
// after the peer went silent, as yamux's keep-alive did.

const (
	directTick        = 3 * time.Second
	directQuietTicks  = 4
	directDialTimeout = 2 * time.Second
	// maxPendingDirect bounds the direct connections being secured and
	// matched at once (each for at most HandshakeTimeout).
	maxPendingDirect = 64
)

// Path bytes the dialer sends on the stream after the verdict.
const (
	pathStream byte = 0
	pathDirect byte = 1
)

// errDirect marks a direct connection that could not be set up.
var errDirect = errors.New("direct connection")

// directListener accepts the direct connections of the handshakes this
// host listens for.
type directListener struct {
	h    *Host
	ln   net.Listener
	port uint16
	sec  sec.SecureTransport
	sem  chan struct{}

	mu    sync.Mutex
	waits map[[macLen]byte]*directWait
}

// directWait is one accepted handshake waiting for its direct connection.
type directWait struct {
	d  *directListener
	id peer.ID        // the dialer, as its TLS handshake must prove
	sc sec.SecureConn // the matched connection, until taken (under d.mu)
}

// startDirect binds the direct listener on the host of cfg.ListenAddr (a
// port of its own, Advanced.DirectPort) and starts its accept loop and the tick.
func (h *Host) startDirect(key crypto.PrivKey) error {
	host, _, err := net.SplitHostPort(h.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("%w: ListenAddr: %w", ErrInvalidConfig, err)
	}
	t, err := libp2ptls.New(libp2ptls.ID, key, nil)
	if err != nil {
		return fmt.Errorf("p2p: direct connections: %w", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(h.cfg.Advanced.DirectPort)))
	if err != nil {
		return fmt.Errorf("p2p: direct listener: %w", err)
	}
	d := &directListener{
		h:     h,
		ln:    ln,
		port:  uint16(ln.Addr().(*net.TCPAddr).Port),
		sec:   t,
		sem:   make(chan struct{}, maxPendingDirect),
		waits: make(map[[macLen]byte]*directWait),
	}
	h.direct = d
	h.connStopper.RunWorker(d.acceptLoop)
	h.connStopper.RunWorker(h.tickLoop)
	return nil
}

// close stops accepting; Stop calls it before it waits for the workers.
func (d *directListener) close() { _ = d.ln.Close() }

// acceptLoop accepts until the listener closes, then waits for the
// connections it is still securing (Stop's cancel of h.ctx closes them).
// It runs them itself rather than on the stopper, whose Stop holds the
// stopper's lock while it waits.
func (d *directListener) acceptLoop() {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		raw, err := d.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				log.Debugw("direct listener", "err", err.Error())
			}
			return
		}
		select {
		case d.sem <- struct{}{}:
			wg.Go(func() {
				defer func() { <-d.sem }()
				d.serve(raw)
			})
		default:
			_ = raw.Close() // more pending than any honest set of peers makes
		}
	}
}

// serve secures one inbound direct connection and hands it to the
// handshake its token names; anything else is closed.
func (d *directListener) serve(raw net.Conn) {
	ctx, cancel := context.WithTimeout(d.h.ctx, d.h.cfg.Advanced.HandshakeTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = raw.Close() })
	fail := func(err error) {
		stop()
		_ = raw.Close()
		log.Debugw("inbound direct connection refused", "addr", raw.RemoteAddr().String(), "err", err.Error())
	}
	sc, err := d.sec.SecureInbound(ctx, raw, "")
	if err != nil {
		fail(err)
		return
	}
	var tok [macLen]byte
	if _, err := io.ReadFull(sc, tok[:]); err != nil {
		fail(err)
		return
	}
	if !stop() {
		return // the deadline closed it
	}
	d.mu.Lock()
	w := d.waits[tok]
	ok := w != nil && w.id == sc.RemotePeer()
	if ok {
		delete(d.waits, tok)
		w.sc = sc // before the ack: the dialer says "direct" only after it
	}
	d.mu.Unlock()
	if !ok {
		fail(errors.New("no handshake waits for this token and peer"))
		return
	}
	_, _ = sc.Write([]byte{1}) // on failure the dialer falls back; the handshake closes sc
}

// expect registers a handshake's token; the returned func unregisters it
// and closes a matched connection the handshake did not take.
func (d *directListener) expect(tok []byte, id peer.ID) (*directWait, func()) {
	w := &directWait{d: d, id: id}
	k := [macLen]byte(tok)
	d.mu.Lock()
	d.waits[k] = w
	d.mu.Unlock()
	return w, func() {
		d.mu.Lock()
		if d.waits[k] == w {
			delete(d.waits, k)
		}
		sc := w.sc
		w.sc = nil
		d.mu.Unlock()
		if sc != nil {
			_ = sc.Close()
		}
	}
}

// take returns the direct connection matched for w, if any.
func (w *directWait) take() (sec.SecureConn, bool) {
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	sc := w.sc
	w.sc = nil
	return sc, sc != nil
}

// dialDirect dials the direct listener of the peer at the other end of s
// on port, proves its TLS identity is id and sends the handshake's token.
func (h *Host) dialDirect(ctx context.Context, s network.Stream, id peer.ID, port uint16, tok []byte) (sec.SecureConn, error) {
	ip, err := manet.ToIP(s.Conn().RemoteMultiaddr())
	if err != nil {
		return nil, fmt.Errorf("%w: no IP address: %v", errDirect, err)
	}
	dctx, cancel := context.WithTimeout(ctx, directDialTimeout)
	defer cancel()
	var nd net.Dialer
	raw, err := nd.DialContext(dctx, "tcp", net.JoinHostPort(ip.String(), strconv.Itoa(int(port))))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errDirect, err)
	}
	stop := context.AfterFunc(dctx, func() { _ = raw.Close() })
	sc, err := h.direct.sec.SecureOutbound(dctx, raw, id)
	if err == nil {
		_, err = sc.Write(tok)
	}
	var ack [1]byte
	if err == nil {
		_, err = io.ReadFull(sc, ack[:])
	}
	if !stop() && err == nil {
		err = dctx.Err()
	}
	if err == nil && ack[0] != 1 {
		err = fmt.Errorf("bad ack %d", ack[0])
	}
	if err != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("%w: %v", errDirect, err)
	}
	return sc, nil
}

// directIO is a direct connection as a conn writes on it.
type directIO struct{ sec.SecureConn }

// Reset implements frameIO: a TCP connection has no reset of its own here.
func (d directIO) Reset() error { return d.Close() }

// countReader counts the reads of the underlying connection (the tick's
// sign of life), once per buffer fill rather than per frame.
type countReader struct {
	r io.Reader
	n *atomic.Uint64
}

func (c countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		hoptrace.Stamp(hoptrace.ReadReturn)
		c.n.Add(1)
	}
	return n, err
}

// useDirect moves c's frames to sc, before c is started; the stream the
// handshake ran on is closed.
func (c *conn) useDirect(sc sec.SecureConn) {
	c.mu.Lock()
	c.w = directIO{sc}
	c.rd = countReader{r: sc, n: &c.reads}
	c.direct = true
	c.mu.Unlock()
	_ = c.s.Close()
}

// tickLoop is the keep-alive of direct connections.
func (h *Host) tickLoop() {
	t := time.NewTicker(directTick)
	defer t.Stop()
	for {
		select {
		case <-h.connStopper.ShouldStop():
			return
		case <-t.C:
		}
		for _, c := range *h.table.Load() {
			c.mu.Lock()
			direct := c.direct && c.started // a listener sets direct after admit
			c.mu.Unlock()
			if direct {
				c.tick()
			}
		}
	}
}

var tickPing [8]byte // sequence 0: a pong nobody waits for

// tick closes c when nothing was read for directQuietTicks ticks, and
// pings when nothing was written since the last tick.
func (c *conn) tick() {
	if r := c.reads.Load(); r != c.tickR {
		c.tickR, c.quietTicks = r, 0
	} else if c.quietTicks++; c.quietTicks >= directQuietTicks {
		c.close(&PeerError{Node: c.peer.Name, Err: fmt.Errorf("%w: nothing heard for %v", ErrConnClosed, directQuietTicks*directTick)})
		return
	}
	if w := c.writes.Load(); w == c.tickW {
		if c.enqueue(context.Background(), framePing, tickPing[:], false) == nil {
			w++ // the ping's write, once it is done, is not news
		}
		c.tickW = w
	} else {
		c.tickW = w
	}
}

// monoBase anchors monoNow.
var monoBase = time.Now()

// monoNow is a monotonic clock in nanoseconds.
func monoNow() int64 { return int64(time.Since(monoBase)) }
