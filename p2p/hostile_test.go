package p2p

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
)

// hostileConfig is a loopback node whose pending connections are dropped
// after timeout.
func hostileConfig(name string, timeout time.Duration, seeds ...string) Config {
	c := loopbackConfig(name, seeds...)
	c.Advanced.HandshakeTimeout = timeout
	return c
}

func startHost(t *testing.T, ctx context.Context, cfg Config, h Handler) *Host {
	t.Helper()
	n, err := Start(ctx, cfg, h)
	require.NoError(t, err)
	return n
}

// startHidden starts a hidden host, a@127.0.0.1, for tests that drive a
// bare conn of their own (newConn) rather than a peer. The caller stops it
// (stopAll) before its leak check.
func startHidden(t *testing.T, ctx context.Context) *Host {
	t.Helper()
	return startHost(t, ctx, Config{Name: "a@127.0.0.1", Cookie: "secret-cookie", Hidden: true}, newRecorder())
}

// connsTo counts libp2p connections between the host and the raw peer, seen from both.
func connsTo(h *Host, r *rawPeer) int {
	return len(h.lh.Network().ConnsToPeer(r.h.ID())) + len(r.h.Network().ConnsToPeer(h.Self().ID))
}

// A peer that knows the cookie, speaking the same hand-written handshake
// as the impostors below, is admitted and its frames are delivered: the
// impostor tests fail for the MAC, not for a wrong encoding.
func TestRawPeerWithCookieIsAdmitted(t *testing.T) {
	defer leaktest.AfterTest(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ra := newRecorder()
	a := startHost(t, ctx, loopbackConfig("a@127.0.0.1"), ra)
	defer stopAll(t, a)
	rp := newRawPeer(t, "honest@127.0.0.1", "secret-cookie")
	defer rp.close()
	sess, err := rp.dial(ctx, a)
	require.NoError(t, err)
	require.Equal(t, byte(0), sess.verdict)
	require.Equal(t, "a@127.0.0.1", sess.theirs.name)
	_, err = sess.s.Write(rawFrame(0, []byte("hello from raw")))
	require.NoError(t, err)
	waitUntil(t, 10*time.Second, func() bool { return len(ra.frames("honest@127.0.0.1")) == 1 }, "the raw peer's frame; got %v", ra.snapshot())
	require.Equal(t, []string{"honest@127.0.0.1"}, peerNames(a.Peers()))
	require.Zero(t, a.Stats().Guard.PendingConns, "an authenticated connection is no longer pending")
	_ = sess.s.Reset()
	waitUntil(t, 10*time.Second, func() bool { return !ra.isUp("honest@127.0.0.1") }, "node down")
	ra.check(t)
}

// impostorSetup starts a host with a long handshake deadline (a
// connection must go because of a refusal, not because it stayed pending)
// and an impostor raw peer that never knew the cookie; t's cleanups stop
// both, and the logs are captured meanwhile.
func impostorSetup(t *testing.T) (context.Context, *logCapture, *Host, *recorder, *rawPeer) {
	t.Helper()
	t.Cleanup(leaktest.AfterTest(t)) // runs last, once the cleanups below stopped everything
	lc, stopLogs := captureLogs(t)
	t.Cleanup(stopLogs)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	ra := newRecorder()
	a := startHost(t, ctx, hostileConfig("a@127.0.0.1", time.Minute), ra)
	t.Cleanup(func() { stopAll(t, a) })
	rp := newRawPeer(t, "impostor@127.0.0.1", "")
	t.Cleanup(rp.close)
	return ctx, lc, a, ra, rp
}

// A dialer that never knew the cookie claims success with a junk MAC:
// the listener refuses it, delivers nothing, logs the refusal naming the
// peer, and keeps no connection.
func TestImpostorDialerRefused(t *testing.T) {
	ctx, lc, a, ra, rp := impostorSetup(t)
	sess, err := rp.dial(ctx, a)
	require.NoError(t, err, "the impostor gets as far as the verdict")
	require.Equal(t, hsCookieMismatch, sess.verdict, "the listener's verdict on a junk MAC")
	// Whatever it sends now goes nowhere.
	_, _ = sess.s.Write(rawFrame(0, []byte("from the impostor")))
	waitUntil(t, 10*time.Second, func() bool {
		return lc.contains("cookie mismatch from impostor@127.0.0.1")
	}, "the listener logs the refusal naming the peer; got %s", lc.all())
	waitUntil(t, 10*time.Second, func() bool { return connsTo(a, rp) == 0 }, "no connection kept")
	waitUntil(t, 10*time.Second, func() bool { return a.Stats().Guard.PendingConns == 0 },
		"the closed connection's pending slot is free at once, not at its one-minute deadline")
	require.Empty(t, ra.snapshot(), "nothing of the impostor reaches the handler")
	require.Empty(t, a.Peers())
	require.Equal(t, uint64(1), a.Stats().Guard.HandshakeFailures)
}

// A listener that never knew the cookie claims success with a junk MAC:
// the dialer refuses it (ErrCookieMismatch), delivers nothing, logs the
// refusal naming the peer, and keeps no connection.
func TestImpostorListenerRefused(t *testing.T) {
	ctx, lc, a, ra, rp := impostorSetup(t)
	seen := rp.listen()
	_, err := a.ConnectAddr(ctx, rp.listenAddr(t))
	require.ErrorIs(t, err, ErrCookieMismatch)
	require.Contains(t, err.Error(), "cookie mismatch from impostor@127.0.0.1")
	select {
	case res := <-seen:
		require.NoError(t, res.err)
		require.Equal(t, hsCookieMismatch, res.status, "the dialer told the impostor why")
	case <-ctx.Done():
		t.Fatal("the impostor listener never finished its handshake")
	}
	lc.waitFor(t, "cookie mismatch from impostor@127.0.0.1", "the dialer logs the refusal naming the peer")
	waitUntil(t, 10*time.Second, func() bool { return connsTo(a, rp) == 0 }, "no connection kept")
	require.Empty(t, ra.snapshot(), "nothing of the impostor reaches the handler")
	require.Empty(t, a.Peers())
}

// After the handshake, a peer that sends malformed frames, a length
// prefix beyond the frame limit, or floods streams loses its connection
// and is counted; another peer's connection is not affected.
func TestMisbehavingPeerLosesConnection(t *testing.T) {
	defer leaktest.AfterTest(t)()
	cases := []struct {
		name   string
		act    func(t *testing.T, ctx context.Context, rp *rawPeer, sess *rawSession, a *Host)
		reason error
		count  func(Stats) uint64
	}{
		{"malformed frame", func(t *testing.T, _ context.Context, _ *rawPeer, sess *rawSession, _ *Host) {
			_, err := sess.s.Write([]byte{9, 1, 0}) // unknown frame type
			require.NoError(t, err)
		}, ErrProtocol, func(s Stats) uint64 { return s.Total.DecodeErrors }},
		{"bad length prefix", func(t *testing.T, _ context.Context, _ *rawPeer, sess *rawSession, _ *Host) {
			_, err := sess.s.Write([]byte{0, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}) // a varint longer than 32 bits
			require.NoError(t, err)
		}, ErrProtocol, func(s Stats) uint64 { return s.Total.DecodeErrors }},
		{"length beyond the frame limit", func(t *testing.T, _ context.Context, _ *rawPeer, sess *rawSession, _ *Host) {
			_, err := sess.s.Write(rawFrame(0, make([]byte, 4097)))
			require.NoError(t, err)
		}, ErrFrameTooLarge, func(s Stats) uint64 { return s.Total.DecodeErrors }},
		{"stream flood", func(t *testing.T, ctx context.Context, rp *rawPeer, _ *rawSession, a *Host) {
			// Open dist streams and never speak on them.
			for range 4 * maxPendingStreamsPerPeer {
				s, err := rp.h.NewStream(ctx, a.Self().ID, rawProto)
				if err != nil {
					t.Logf("flood stream: %v", err)
					return // the connection is already gone
				}
				if _, err := s.Write([]byte("NDL")); err != nil { // half a hello
					t.Logf("flood write: %v", err)
					return
				}
			}
		}, ErrProtocol, func(s Stats) uint64 { return s.Guard.StreamFloods }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ra, rb := newRecorder(), newRecorder()
			cfgA := loopbackConfig("a@127.0.0.1")
			cfgA.Advanced.MaxFrameSize = 4096
			a := startHost(t, ctx, cfgA, ra)
			defer stopAll(t, a)
			b := startHost(t, ctx, loopbackConfig("b@127.0.0.1", a.GossipAddr()), rb)
			defer stopAll(t, b)
			waitUntil(t, 10*time.Second, func() bool { return ra.isUp("b@127.0.0.1") && rb.isUp("a@127.0.0.1") }, "mesh")
			rp := newRawPeer(t, "rogue@127.0.0.1", "secret-cookie")
			defer rp.close()
			sess, err := rp.dial(ctx, a)
			require.NoError(t, err)
			require.Equal(t, byte(0), sess.verdict)
			_, err = sess.s.Write(rawFrame(0, []byte("ok so far")))
			require.NoError(t, err)
			waitUntil(t, 10*time.Second, func() bool { return len(ra.frames("rogue@127.0.0.1")) == 1 }, "first frame")
			tc.act(t, ctx, rp, sess, a)
			waitUntil(t, 10*time.Second, func() bool { return len(ra.downs("rogue@127.0.0.1")) == 1 }, "rogue loses its connection; got %v", ra.snapshot())
			require.ErrorIs(t, ra.downs("rogue@127.0.0.1")[0], tc.reason)
			require.Equal(t, uint64(1), tc.count(a.Stats()))
			require.Equal(t, []string{"ok so far"}, ra.frames("rogue@127.0.0.1"))
			// b is unaffected: still up both ways, frames still flow.
			require.NoError(t, b.Send(ctx, "a@127.0.0.1", []byte("still here")))
			require.NoError(t, a.Send(ctx, "b@127.0.0.1", []byte("me too")))
			waitUntil(t, 10*time.Second, func() bool {
				return len(ra.frames("b@127.0.0.1")) == 1 && len(rb.frames("a@127.0.0.1")) == 1
			}, "frames between the honest nodes")
			require.Empty(t, ra.downs("b@127.0.0.1"))
			require.Empty(t, rb.downs("a@127.0.0.1"))
			ra.check(t)
		})
	}
}

// requireLoopbackSources skips unless 127.0.0.2 and up can be bound (Linux
// routes all of 127/8 to lo; macOS needs aliases).
func requireLoopbackSources(t testing.TB) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("needs 127.0.0.x loopback addresses: %v", err)
	}
	_ = l.Close()
}

// dialFrom opens a TCP connection to addr from the loopback address src.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// closedByPeer waits (at most bound) for the other end to close c.
func closedByPeer(c net.Conn, bound time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(bound))
	var b [256]byte
	for {
		_, err := c.Read(b[:])
		if err == nil {
			continue
		}
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout()) && !errors.Is(err, os.ErrDeadlineExceeded)
	}
}

// A connection that does not pass the cookie handshake within
// HandshakeTimeout is closed, whatever stage it is stuck in.
func TestHalfOpenConnectionsDropped(t *testing.T) {
	defer leaktest.AfterTest(t)()
	lc, stopLogs := captureLogs(t)
	defer stopLogs()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ra := newRecorder()
	a := startHost(t, ctx, hostileConfig("a@127.0.0.1", time.Second), ra)
	defer stopAll(t, a)
	// Stuck before the security handshake: TCP only.
	tcpOnly := dialFrom(t, "127.0.0.1", a.ListenAddrs()[0])
	// Stuck after it: a libp2p connection with no dist stream ...
	idle := newRawPeer(t, "idle@127.0.0.1", "secret-cookie")
	defer idle.close()
	addr := a.Self().Addrs
	require.NotEmpty(t, addr)
	require.NoError(t, idle.h.Connect(ctx, a.lh.Peerstore().PeerInfo(a.Self().ID)))
	// ... and one with a dist stream that never says hello.
	mute := newRawPeer(t, "mute@127.0.0.1", "secret-cookie")
	defer mute.close()
	require.NoError(t, mute.h.Connect(ctx, a.lh.Peerstore().PeerInfo(a.Self().ID)))
	s, err := mute.h.NewStream(ctx, a.Self().ID, rawProto)
	require.NoError(t, err)
	require.True(t, closedByPeer(tcpOnly, 20*time.Second), "the silent TCP connection is closed")
	waitUntil(t, 20*time.Second, func() bool {
		return idle.h.Network().Connectedness(a.Self().ID) != network.Connected &&
			mute.h.Network().Connectedness(a.Self().ID) != network.Connected
	}, "the libp2p connections without a cookie handshake are closed")
	_ = s.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err = s.Read(make([]byte, 1))
	require.Error(t, err)
	require.False(t, errors.Is(err, os.ErrDeadlineExceeded), "the mute stream is reset by the host")
	st := a.Stats().Guard
	require.GreaterOrEqual(t, st.HandshakeTimeouts, uint64(2))
	require.Zero(t, st.PendingConns)
	lc.waitFor(t, "no cookie handshake within 1s", "the drops are logged")
	require.Empty(t, ra.snapshot())
	// The host still takes an honest node.
	rb := newRecorder()
	b := startHost(t, ctx, loopbackConfig("b@127.0.0.1", a.GossipAddr()), rb)
	defer stopAll(t, b)
	waitUntil(t, 10*time.Second, func() bool { return ra.isUp("b@127.0.0.1") && rb.isUp("a@127.0.0.1") }, "mesh")
}

// Pending connections are capped per source address and in total; what
// is refused is counted and logged, and other sources still connect.
func TestPendingConnectionCaps(t *testing.T) {
	defer leaktest.AfterTest(t)()
	requireLoopbackSources(t)
	t.Run("per source", func(t *testing.T) {
		lc, stopLogs := captureLogs(t)
		defer stopLogs()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cfg := loopbackConfig("a@127.0.0.1")
		cfg.Advanced.MaxPendingPerSource = 3
		ra := newRecorder()
		a := startHost(t, ctx, cfg, ra)
		defer stopAll(t, a)
		var flood []net.Conn
		for range 6 {
			flood = append(flood, dialFrom(t, "127.0.0.2", a.ListenAddrs()[0]))
		}
		waitUntil(t, 10*time.Second, func() bool { return a.Stats().Guard.RefusedPerSource == 3 }, "3 refused; got %+v", a.Stats().Guard)
		require.Equal(t, 3, a.Stats().Guard.PendingConns)
		lc.waitFor(t, "too many pending handshakes from this address", "the refusals are logged")
		require.LessOrEqual(t, lc.count("too many pending handshakes"), 2, "logged at a rate limit")
		// Another source connects while 127.0.0.2 is at its cap.
		rb := newRecorder()
		b := startHost(t, ctx, loopbackConfig("b@127.0.0.1", a.GossipAddr()), rb)
		defer stopAll(t, b)
		waitUntil(t, 10*time.Second, func() bool { return ra.isUp("b@127.0.0.1") && rb.isUp("a@127.0.0.1") }, "mesh")
		for _, c := range flood {
			_ = c.Close()
		}
	})
	t.Run("total", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cfg := loopbackConfig("a@127.0.0.1")
		cfg.Advanced.MaxPendingConns = 4
		a := startHost(t, ctx, cfg, newRecorder())
		defer stopAll(t, a)
		for _, src := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
			for range 2 {
				dialFrom(t, src, a.ListenAddrs()[0])
			}
		}
		waitUntil(t, 10*time.Second, func() bool { return a.Stats().Guard.RefusedTotal == 2 }, "2 refused; got %+v", a.Stats().Guard)
		require.Equal(t, 4, a.Stats().Guard.PendingConns)
		require.Zero(t, a.Stats().Guard.RefusedPerSource)
	})
	t.Run("gossip streams", func(t *testing.T) {
		lc, stopLogs := captureLogs(t)
		defer stopLogs()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cfg := loopbackConfig("a@127.0.0.1")
		cfg.Advanced.MaxPendingPerSource = 2
		ra := newRecorder()
		a := startHost(t, ctx, cfg, ra)
		defer stopAll(t, a)
		var flood []net.Conn
		for range 5 {
			flood = append(flood, dialFrom(t, "127.0.0.2", a.GossipAddr()))
		}
		waitUntil(t, 10*time.Second, func() bool { return a.Stats().Guard.GossipRefusedPerSource == 3 }, "3 refused; got %+v", a.Stats().Guard)
		lc.waitFor(t, "refused gossip stream from 127.0.0.2", "the refusals are logged")
		refused := 0
		for _, c := range flood {
			if closedByPeer(c, 2*time.Second) {
				refused++
			}
		}
		require.GreaterOrEqual(t, refused, 3, "refused streams are closed at once")
		// An honest node still joins over the gossip port.
		rb := newRecorder()
		b := startHost(t, ctx, loopbackConfig("b@127.0.0.1", a.GossipAddr()), rb)
		defer stopAll(t, b)
		waitUntil(t, 10*time.Second, func() bool { return ra.isUp("b@127.0.0.1") }, "mesh")
	})
}

func TestHandshakeLimitsValidate(t *testing.T) {
	for _, f := range []func(*Advanced){
		func(a *Advanced) { a.HandshakeTimeout = -1 },
		func(a *Advanced) { a.MaxPendingConns = -1 },
		func(a *Advanced) { a.MaxPendingPerSource = -1 },
	} {
		c := loopbackConfig("a@127.0.0.1")
		f(&c.Advanced)
		require.ErrorIs(t, c.Validate(), ErrInvalidConfig)
	}
	a := Advanced{}.withDefaults()
	require.Equal(t, DefaultHandshakeTimeout, a.HandshakeTimeout)
	require.Equal(t, 7*time.Second, a.HandshakeTimeout, "Erlang's net_setuptime")
	require.Equal(t, DefaultMaxPendingConns, a.MaxPendingConns)
	require.Equal(t, DefaultMaxPendingPerSource, a.MaxPendingPerSource)
}

// An outbound dial to a listener that never answers the handshake fails
// by HandshakeTimeout, well inside the caller's ctx.
func TestDialHandshakeTimeout(t *testing.T) {
	defer leaktest.AfterTest(t)()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ra := newRecorder()
	a := startHost(t, ctx, hostileConfig("a@127.0.0.1", time.Second), ra)
	defer stopAll(t, a)
	rp := newRawPeer(t, "mute@127.0.0.1", "secret-cookie")
	defer rp.close()
	rp.h.SetStreamHandler(rawProto, func(s network.Stream) {
		_, _ = io.Copy(io.Discard, s) // reads the hello, never answers
	})
	_, err := a.ConnectAddr(ctx, rp.listenAddr(t))
	require.ErrorIs(t, err, ErrNoConnection)
	require.ErrorIs(t, err, ErrTimeout)
	require.NoError(t, ctx.Err(), "the handshake deadline ended the dial, not the caller's ctx")
	require.Empty(t, a.Peers())
	require.Empty(t, ra.snapshot())
}

// memberlist's stream deadline (TCPTimeout) is capped by HandshakeTimeout,
// so a silent gossip stream holds its slot no longer than that.
func TestGossipStreamDeadlineCapped(t *testing.T) {
	defer leaktest.AfterTest(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var seen time.Duration
	cfg := hostileConfig("a@127.0.0.1", 3*time.Second)
	cfg.Profile = ProfileLAN // TCPTimeout 10 s
	cfg.Advanced.TuneMemberlist = func(mc *memberlist.Config) { seen = mc.TCPTimeout }
	a := startHost(t, ctx, cfg, newRecorder())
	defer stopAll(t, a)
	require.Equal(t, 3*time.Second, seen)
}

// A dial that fails its security handshake frees its pending slot at once
// (libp2p tells the gater nothing about it). Every `node ctl` makes one:
// its probe of the listener's peer ID. Before, each held a slot for the
// handshake deadline, and more than MaxPendingPerSource ctl runs within it
// from one address were refused.
func TestFailedSecurityHandshakeFreesItsSlot(t *testing.T) {
	defer leaktest.AfterTest(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := hostileConfig("a@127.0.0.1", time.Minute)
	cfg.Advanced.MaxPendingPerSource = 3
	a := startHost(t, ctx, cfg, newRecorder())
	b := startHost(t, ctx, loopbackConfig("b@127.0.0.1"), newRecorder())
	defer stopAll(t, a, b)
	addr, err := tcpMultiaddr(a.ListenAddrs()[0])
	require.NoError(t, err)
	for range 2 * cfg.Advanced.MaxPendingPerSource {
		id, err := b.probePeerID(ctx, addr)
		require.NoError(t, err, "a probe refused: slots of failed handshakes are still held")
		require.Equal(t, a.Self().ID, id)
		waitUntil(t, 10*time.Second, func() bool { return a.Stats().Guard.PendingConns == 0 },
			"the probe's slot free at once, not at its one-minute deadline")
	}
}
