package p2p

import (
	"bufio"
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/sec"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
)

func (h *Host) myHello() *hello {
	return &hello{
		Name:        h.cfg.Name,
		Incarnation: h.self.Incarnation,
		Hidden:      h.cfg.Hidden,
		Long:        h.name.Long,
		Nonce:       newNonce(),
		Addrs:       h.self.Addrs,
	}
}

// addrInfo finds how to reach node: membership meta, then nodes met before.
func (h *Host) addrInfo(node string) (peer.AddrInfo, bool) {
	if m := h.member(node); m != nil {
		return m.addrInfo(), true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	ai, ok := h.known[node]
	return ai, ok
}

// connect dials node by name and waits for its connection.
func (h *Host) connect(ctx context.Context, node string) (*conn, error) {
	if node == h.cfg.Name {
		return nil, &PeerError{Node: node, Err: fmt.Errorf("%w: cannot connect to self", ErrNoConnection)}
	}
	ai, ok := h.addrInfo(node)
	if !ok {
		return nil, &PeerError{Node: node, Err: fmt.Errorf("%w: unknown node", ErrNoConnection)}
	}
	return h.dial(ctx, ai, node)
}

// dial opens (or joins an in-flight opening of) the connection to ai.ID.
func (h *Host) dial(ctx context.Context, ai peer.AddrInfo, expect string) (*conn, error) {
	h.mu.Lock()
	if h.stopping {
		h.mu.Unlock()
		return nil, ErrStopped
	}
	if expect != "" {
		if c := h.conns[expect]; c != nil {
			h.mu.Unlock()
			return c, nil
		}
	}
	d := h.dialing[ai.ID]
	if d == nil {
		d = &dialCall{done: make(chan struct{})}
		h.dialing[ai.ID] = d
		h.mu.Unlock()
		h.connStopper.RunWorker(func() {
			dctx, cancel := context.WithTimeout(h.ctx, h.cfg.Advanced.HandshakeTimeout)
			defer cancel()
			c, err := h.dialOnce(dctx, ai, expect)
			h.mu.Lock()
			d.c, d.err = c, err
			delete(h.dialing, ai.ID)
			h.mu.Unlock()
			close(d.done)
			if c != nil {
				h.startConn(c)
			}
		})
	} else {
		h.mu.Unlock()
	}
	select {
	case <-d.done:
	case <-ctx.Done():
		return nil, ctxErr(ctx)
	case <-h.connStopper.ShouldStop():
		return nil, ErrStopped
	}
	if d.err == nil {
		return d.c, nil
	}
	if !errors.Is(d.err, errTieBreak) {
		return nil, d.err
	}
	// The peer keeps its own connection to us; wait for it to register.
	tctx, cancel := context.WithTimeout(ctx, h.cfg.Advanced.HandshakeTimeout)
	defer cancel()
	ctx = tctx
	for {
		h.mu.Lock()
		ch := h.changed
		for _, c := range h.conns {
			if c.peer.ID == ai.ID {
				h.mu.Unlock()
				return c, nil
			}
		}
		h.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctxErr(ctx)
		case <-h.connStopper.ShouldStop():
			return nil, ErrStopped
		}
	}
}

// newDistStream opens the dist stream to id. A dial that fails while ctx
// allows is tried once more at once: two nodes that dial each other at the
// same moment from their listen ports (libp2p's TCP transport reuses them)
// can meet in one TCP connection by simultaneous open, where both start
// the security handshake as its initiator and both fail ("noise: message
// is too short"); the next dial does not meet the other's. libp2p's dial
// backoff for the peer is cleared first, or the second dial would be
// refused by it.
func (h *Host) newDistStream(ctx context.Context, id peer.ID) (network.Stream, error) {
	s, err := h.lh.NewStream(network.WithAllowLimitedConn(ctx, "nodal"), id, DistProtocol)
	if err == nil || ctx.Err() != nil {
		return s, err
	}
	if sw, ok := h.lh.Network().(*swarm.Swarm); ok {
		sw.Backoff().Clear(id)
	}
	return h.lh.NewStream(network.WithAllowLimitedConn(ctx, "nodal"), id, DistProtocol)
}

// dialOnce runs the dialer's side of the handshake.
func (h *Host) dialOnce(ctx context.Context, ai peer.AddrInfo, expect string) (*conn, error) {
	who := expect
	if who == "" {
		who = ai.ID.String()
	}
	if len(ai.Addrs) > 0 {
		h.lh.Peerstore().AddAddrs(ai.ID, ai.Addrs, addrTTL)
	}
	s, err := h.newDistStream(ctx, ai.ID)
	if err != nil {
		return nil, &PeerError{Node: who, Err: fmt.Errorf("%w: %v", ErrNoConnection, err)}
	}
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()
	c, err := h.dialHandshake(s, ai.ID, expect)
	if err != nil {
		_ = s.Reset()
		if ctx.Err() != nil && !errors.Is(err, ErrCookieMismatch) {
			err = &PeerError{Node: who, Err: fmt.Errorf("%w: handshake: %w", ErrNoConnection, ctxErr(ctx))}
		}
		return nil, err
	}
	return c, nil
}

func (h *Host) dialHandshake(s network.Stream, id peer.ID, expect string) (*conn, error) {
	br := bufio.NewReaderSize(s, readBufSize)
	mine := h.myHello()
	mine.Direct = h.direct != nil
	if _, err := s.Write(mine.append(nil)); err != nil {
		return nil, &PeerError{Node: id.String(), Err: fmt.Errorf("%w: %v", ErrNoConnection, err)}
	}
	theirs, err := readHello(br)
	if err != nil {
		return nil, &PeerError{Node: id.String(), Err: fmt.Errorf("%w: handshake: %w", ErrNoConnection, err)}
	}
	mac, err := readMAC(br)
	if err != nil {
		return nil, &PeerError{Node: theirs.Name, Err: fmt.Errorf("%w: handshake: %w", ErrNoConnection, err)}
	}
	cookieOK := hmac.Equal(mac, handshakeMAC(h.macKey, "listener", mine, theirs, h.lh.ID(), id))
	status := hsOK
	var refuse error
	switch {
	case !cookieOK:
		status = hsCookieMismatch
	case theirs.Hidden && h.cfg.Hidden:
		status, refuse = hsBadHello, fmt.Errorf("%w: two hidden nodes do not connect", ErrNoConnection)
	case expect != "" && theirs.Name != expect:
		status, refuse = hsBadHello, fmt.Errorf("%w: expected %s, peer is %s", ErrNoConnection, expect, theirs.Name)
	default:
		if err := checkMode(h.name, theirs.Name); err != nil {
			status, refuse = hsNameMode, err
		}
	}
	reply := append([]byte{status}, handshakeMAC(h.macKey, "dialer", mine, theirs, h.lh.ID(), id)...)
	if _, err := s.Write(reply); err != nil {
		return nil, &PeerError{Node: theirs.Name, Err: fmt.Errorf("%w: %v", ErrNoConnection, err)}
	}
	// Always wait for the listener's verdict, so that it has read our
	// status (and logged a mismatch) before we hang up.
	verdict, verr := br.ReadByte()
	if !cookieOK {
		log.Warnw("cookie mismatch from "+theirs.Name+": its handshake MAC does not prove our cookie, connection refused",
			"node", theirs.Name, "peer", id.String(), "addr", s.Conn().RemoteMultiaddr().String())
		// Nothing of an impostor is kept: not the stream, not the connection.
		_ = s.Reset()
		_ = s.Conn().Close()
		return nil, &PeerError{Node: theirs.Name, Err: ErrCookieMismatch}
	}
	if refuse != nil {
		log.Warnw("refused connection to "+theirs.Name, "node", theirs.Name, "err", refuse.Error())
		return nil, &PeerError{Node: theirs.Name, Err: refuse}
	}
	if verr != nil {
		return nil, &PeerError{Node: theirs.Name, Err: fmt.Errorf("%w: handshake: %v", ErrNoConnection, verr)}
	}
	if verdict != hsOK {
		err := statusErr(verdict, theirs.Name)
		if verdict == hsCookieMismatch {
			log.Warnw("cookie mismatch from "+theirs.Name, "node", theirs.Name, "peer", id.String())
		} else if verdict != hsTieBreak {
			log.Warnw("connection refused by "+theirs.Name, "node", theirs.Name, "err", err.Error())
		}
		return nil, err
	}
	var sc sec.SecureConn
	if mine.Direct && theirs.DirectPort != 0 {
		var err error
		tok := handshakeMAC(h.macKey, "direct", mine, theirs, h.lh.ID(), id)
		path := pathDirect
		if sc, err = h.dialDirect(h.ctx, s, id, theirs.DirectPort, tok); err != nil {
			log.Infow("frames to "+theirs.Name+" stay on the libp2p stream", "node", theirs.Name, "err", err.Error())
			path = pathStream
		}
		if _, err := s.Write([]byte{path}); err != nil {
			if sc != nil {
				_ = sc.Close()
			}
			return nil, &PeerError{Node: theirs.Name, Err: fmt.Errorf("%w: handshake: %v", ErrNoConnection, err)}
		}
	}
	p := h.peerOf(theirs, id)
	c := newConn(h, p, s, br, true)
	if sc != nil {
		c.useDirect(sc)
	}
	if code, err := h.admit(c, false); code != hsOK {
		log.Warnw("dropping new connection to "+p.Name, "node", p.Name, "err", err.Error())
		if sc != nil {
			_ = sc.Close()
		}
		return nil, err
	}
	return c, nil
}

func (h *Host) peerOf(hl *hello, id peer.ID) Peer {
	addrs := slices.Clone(hl.Addrs)
	slices.Sort(addrs)
	return Peer{Name: hl.Name, Incarnation: hl.Incarnation, Hidden: hl.Hidden, ID: id, Addrs: addrs}
}

// handleStream runs the listener's side of the handshake on libp2p's goroutine.
func (h *Host) handleStream(s network.Stream) {
	id := s.Conn().RemotePeer()
	if !h.beginAccept(id) {
		_ = s.Reset()
		if !h.isStopping() {
			h.streamFlood(s.Conn())
		}
		return
	}
	defer h.endAccept(id)
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.Advanced.HandshakeTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	c, err := h.acceptHandshake(s)
	stop()
	if err != nil {
		if !errors.Is(err, errTieBreak) && !errors.Is(err, ErrStopped) {
			h.gctr.handshakeFailures.Add(1)
		}
		log.Debugw("inbound handshake failed", "peer", id.String(), "err", err.Error())
		if errors.Is(err, ErrCookieMismatch) || errors.Is(err, ErrProtocol) || ctx.Err() != nil {
			// An impostor or a broken peer keeps no connection. Give the
			// verdict a moment to reach the dialer (it hangs up after
			// reading it), then close the connection.
			_ = s.CloseWrite()
			_ = s.SetReadDeadline(time.Now().Add(time.Second))
			_, _ = io.Copy(io.Discard, io.LimitReader(s, 64<<10))
			_ = s.Reset()
			_ = s.Conn().Close()
			return
		}
		// Close, not Reset: a verdict we wrote must reach the dialer.
		_ = s.Close()
		return
	}
	h.startConn(c)
}

// beginAccept reserves one of the maxPendingStreamsPerPeer dist
// handshakes the peer id may run at once.
func (h *Host) beginAccept(id peer.ID) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopping || h.accepts[id] >= maxPendingStreamsPerPeer {
		return false
	}
	h.accepts[id]++
	return true
}

func (h *Host) endAccept(id peer.ID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.accepts[id]--; h.accepts[id] <= 0 {
		delete(h.accepts, id)
	}
}

// streamFlood closes the connection of a peer that opened more dist
// streams at once than any honest peer does; an authenticated connection
// of that peer goes with it (NodeDown reason ErrProtocol).
func (h *Host) streamFlood(lc network.Conn) {
	// Streams of one flood arrive together: count and close it once.
	h.floodMu.Lock()
	defer h.floodMu.Unlock()
	if lc.IsClosed() {
		return
	}
	id := lc.RemotePeer()
	h.gctr.streamFloods.Add(1)
	h.mu.Lock()
	var victims []*conn
	for _, c := range h.conns {
		if c.peer.ID == id {
			victims = append(victims, c)
		}
	}
	h.mu.Unlock()
	for _, c := range victims {
		c.close(&PeerError{Node: c.peer.Name, Err: fmt.Errorf("%w: stream flood (more than %d dist streams at once)", ErrProtocol, maxPendingStreamsPerPeer)})
	}
	h.rl.warn("stream-flood", "closed connection of peer "+id.String()+" from "+sourceIP(lc.RemoteMultiaddr())+": stream flood",
		"peer", id.String(), "limit", maxPendingStreamsPerPeer)
	_ = lc.Close()
}

func (h *Host) acceptHandshake(s network.Stream) (*conn, error) {
	id := s.Conn().RemotePeer()
	br := bufio.NewReaderSize(s, readBufSize)
	theirs, err := readHello(br)
	if err != nil {
		return nil, err
	}
	mine := h.myHello()
	var dw *directWait
	if theirs.Direct && h.direct != nil {
		mine.DirectPort = h.direct.port
		var done func()
		dw, done = h.direct.expect(handshakeMAC(h.macKey, "direct", theirs, mine, id, h.lh.ID()), id)
		defer done()
	}
	msg := mine.append(nil)
	msg = append(msg, handshakeMAC(h.macKey, "listener", theirs, mine, id, h.lh.ID())...)
	if _, err := s.Write(msg); err != nil {
		return nil, err
	}
	var reply [1 + macLen]byte
	if _, err := io.ReadFull(br, reply[:]); err != nil {
		return nil, err
	}
	if reply[0] == hsCookieMismatch || !hmac.Equal(reply[1:], handshakeMAC(h.macKey, "dialer", theirs, mine, id, h.lh.ID())) {
		log.Warnw("cookie mismatch from "+theirs.Name+": its handshake MAC does not prove our cookie, connection refused",
			"node", theirs.Name, "peer", id.String(), "addr", s.Conn().RemoteMultiaddr().String())
		_, _ = s.Write([]byte{hsCookieMismatch})
		return nil, &PeerError{Node: theirs.Name, Err: ErrCookieMismatch}
	}
	if reply[0] != hsOK {
		_, _ = s.Write([]byte{reply[0]})
		return nil, statusErr(reply[0], theirs.Name)
	}
	verdict := hsOK
	var refuse error
	if _, err := ParseName(theirs.Name); err != nil {
		verdict, refuse = hsBadHello, err
	} else if err := checkMode(h.name, theirs.Name); err != nil {
		verdict, refuse = hsNameMode, err
	} else if theirs.Hidden && h.cfg.Hidden {
		verdict, refuse = hsBadHello, fmt.Errorf("%w: two hidden nodes do not connect", ErrNoConnection)
	}
	var c *conn
	if verdict == hsOK {
		c = newConn(h, h.peerOf(theirs, id), s, br, false)
		verdict, refuse = h.admit(c, true)
	}
	if verdict != hsOK && verdict != hsTieBreak {
		log.Warnw("refused connection from "+theirs.Name, "node", theirs.Name, "err", refuse.Error())
	}
	_, err = s.Write([]byte{verdict})
	if err == nil && verdict == hsOK && dw != nil {
		err = h.acceptPath(c, br, dw)
	}
	if err != nil {
		if c != nil && verdict == hsOK {
			c.close(fmt.Errorf("%w: %v", ErrConnClosed, err))
			close(c.done)
			close(c.writerDone)
		}
		return nil, err
	}
	if verdict != hsOK {
		return nil, refuse
	}
	return c, nil
}

// acceptPath reads which path the dialer chose for the frames and moves c
// to its direct connection if that is the one.
func (h *Host) acceptPath(c *conn, br *bufio.Reader, dw *directWait) error {
	path, err := br.ReadByte()
	if err != nil {
		return err
	}
	switch path {
	case pathStream:
		return nil
	case pathDirect:
		sc, ok := dw.take()
		if !ok {
			return fmt.Errorf("%w: direct path chosen, no direct connection matched", ErrProtocol)
		}
		c.useDirect(sc)
		return nil
	}
	return fmt.Errorf("%w: unknown path %d", ErrProtocol, path)
}

// admit decides whether c may become the connection for its name and
// registers it. Both sides apply the same rules, so a simultaneous dial
// leaves one connection: the one dialed by the lower peer ID.
func (h *Host) admit(c *conn, inbound bool) (byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	name := c.peer.Name
	if h.stopping {
		return hsStopping, ErrStopped
	}
	if name == h.cfg.Name {
		return hsNameInUse, &PeerError{Node: name, Err: fmt.Errorf("%w: %s is this node's own name", ErrNameInUse, name)}
	}
	if old := h.conns[name]; old != nil {
		if old.peer.ID != c.peer.ID {
			return hsNameInUse, &PeerError{Node: name, Err: fmt.Errorf("%w: %s is already connected as peer %s", ErrNameInUse, name, old.peer.ID)}
		}
		return hsTieBreak, &PeerError{Node: name, Err: errTieBreak}
	}
	m := h.member(name)
	if m != nil && m.ID != c.peer.ID {
		return hsNameInUse, &PeerError{Node: name, Err: fmt.Errorf("%w: %s is a live member with peer %s", ErrNameInUse, name, m.ID)}
	}
	if inbound {
		if d := h.dialing[c.peer.ID]; d != nil && h.lh.ID() < c.peer.ID {
			return hsTieBreak, &PeerError{Node: name, Err: errTieBreak}
		}
	}
	c.prev = h.last[name]
	h.last[name] = c
	h.conns[name] = c
	if h.guard != nil {
		h.guard.settled(c.s.Conn().RemoteMultiaddr())
	}
	if c.peer.Hidden || m == nil {
		if _, ok := h.known[name]; !ok && len(h.known) >= maxKnown {
			for k := range h.known { // evict one
				delete(h.known, k)
				break
			}
		}
		h.known[name] = h.addrInfoOf(c.peer)
	}
	h.publish()
	return hsOK, nil
}

func (h *Host) addrInfoOf(p Peer) peer.AddrInfo {
	ai := peer.AddrInfo{ID: p.ID}
	for _, s := range p.Addrs {
		if a, err := ma.NewMultiaddr(s); err == nil {
			ai.Addrs = append(ai.Addrs, a)
		}
	}
	return ai
}

// startConn starts the reader and writer of an admitted connection.
func (h *Host) startConn(c *conn) {
	c.mu.Lock()
	c.started = true
	c.mu.Unlock()
	// When Stop has begun the stopper refuses new workers; Stop closes
	// every registered connection itself, so nothing is left open.
	h.connStopper.RunWorker(c.writeLoop)
	h.connStopper.RunWorker(c.readLoop)
}
