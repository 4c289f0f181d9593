package p2p

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
)

// connTo returns h's current connection to node (nil if none).
func connTo(h *Host, node string) *conn { return h.lookup(node) }

func isDirect(c *conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.direct && c.started
}

// exchange sends n numbered frames each way and checks they arrive in order.
func exchange(t *testing.T, ctx context.Context, a, b *Host, ra, rb *recorder, n int) {
	t.Helper()
	an, bn := a.Self().Name, b.Self().Name
	for i := range n {
		require.NoError(t, a.Send(ctx, bn, []byte(fmt.Sprint("ab", i))))
		require.NoError(t, b.Send(ctx, an, []byte(fmt.Sprint("ba", i))))
	}
	waitUntil(t, 10*time.Second, func() bool { return len(rb.frames(an)) >= n && len(ra.frames(bn)) >= n }, "frames")
	for i, f := range rb.frames(an)[:n] {
		require.Equal(t, fmt.Sprint("ab", i), f)
	}
	for i, f := range ra.frames(bn)[:n] {
		require.Equal(t, fmt.Sprint("ba", i), f)
	}
}

func TestDirectConnectionCarriesFrames(t *testing.T) {
	defer leaktest.AfterTest(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ra, rb := newRecorder(), newRecorder()
	a, err := Start(ctx, loopbackConfig("a@127.0.0.1"), ra)
	require.NoError(t, err)
	b, err := Start(ctx, loopbackConfig("b@127.0.0.1", a.GossipAddr()), rb)
	require.NoError(t, err)
	require.NotNil(t, a.direct)
	waitUntil(t, 10*time.Second, func() bool { return ra.isUp("b@127.0.0.1") && rb.isUp("a@127.0.0.1") }, "mesh")
	ca, cb := connTo(a, "b@127.0.0.1"), connTo(b, "a@127.0.0.1")
	require.True(t, isDirect(ca), "a's frames to b on the direct connection")
	require.True(t, isDirect(cb), "b's frames to a on the direct connection")
	exchange(t, ctx, a, b, ra, rb, 1000)
	d, err := a.Ping(ctx, "b@127.0.0.1")
	require.NoError(t, err)
	require.Positive(t, d)
	stopAll(t, b)
	waitUntil(t, 10*time.Second, func() bool { return !ra.isUp("b@127.0.0.1") }, "down")
	require.ErrorIs(t, ra.downs("b@127.0.0.1")[0], ErrLeft)
	stopAll(t, a)
	ra.check(t)
	rb.check(t)
}

func TestDirectFallsBackToStream(t *testing.T) {
	defer leaktest.AfterTest(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ra, rb := newRecorder(), newRecorder()
	a, err := Start(ctx, Config{Name: "a@127.0.0.1", Cookie: "secret-cookie", Hidden: true}, ra)
	require.NoError(t, err)
	b, err := Start(ctx, loopbackConfig("b@127.0.0.1"), rb)
	require.NoError(t, err)
	// b still offers its direct port, but nothing listens there any more:
	// the dial is refused and the frames stay on the libp2p stream.
	b.direct.close()
	_, err = a.ConnectAddr(ctx, b.ListenAddrs()[0])
	require.NoError(t, err)
	waitUntil(t, 10*time.Second, func() bool { return ra.isUp("b@127.0.0.1") && rb.isUp("a@127.0.0.1") }, "connected")
	require.False(t, isDirect(connTo(a, "b@127.0.0.1")))
	require.False(t, isDirect(connTo(b, "a@127.0.0.1")))
	exchange(t, ctx, a, b, ra, rb, 200)
	stopAll(t, a, b)
	ra.check(t)
	rb.check(t)
}

// A connection to the direct port that does not carry the token of a
// handshake in progress is closed, and no connection comes of it.
func TestDirectRefusesUnknownToken(t *testing.T) {
	defer leaktest.AfterTest(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rb := newRecorder()
	b, err := Start(ctx, loopbackConfig("b@127.0.0.1"), rb)
	require.NoError(t, err)
	raw, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(b.direct.port))))
	require.NoError(t, err)
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	require.NoError(t, err)
	tr, err := libp2ptls.New(libp2ptls.ID, key, nil)
	require.NoError(t, err)
	sc, err := tr.SecureOutbound(ctx, raw, b.Self().ID)
	require.NoError(t, err)
	_, err = sc.Write(make([]byte, macLen))
	require.NoError(t, err)
	require.NoError(t, sc.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = io.ReadFull(sc, make([]byte, 1))
	require.Error(t, err, "no ack for a token nobody waits for")
	_ = sc.Close()
	require.Empty(t, b.Peers())
	stopAll(t, b)
	rb.check(t)
}

// fakeIO is a frameIO that keeps what is written.
type fakeIO struct {
	writes chan []byte
	closed chan struct{}
}

func (f *fakeIO) Write(p []byte) (int, error) {
	f.writes <- append([]byte(nil), p...)
	return len(p), nil
}

func (f *fakeIO) Close() error {
	select {
	case <-f.closed:
	default:
		close(f.closed)
	}
	return nil
}

func (f *fakeIO) Reset() error { return f.Close() }

// The tick pings a connection that wrote nothing since the last tick and
// closes one that read nothing for directQuietTicks ticks.
func TestTickPingsAndClosesSilentConnection(t *testing.T) {
	defer leaktest.AfterTest(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h := startHidden(t, ctx)
	defer stopAll(t, h)
	f := &fakeIO{writes: make(chan []byte, 16), closed: make(chan struct{})}
	c := newConn(h, Peer{Name: "x@127.0.0.1"}, nil, nil, true)
	c.w, c.direct, c.started = f, true, true
	go c.writeLoop()
	defer c.close(ErrShutdown)

	c.tick() // nothing written yet: a ping
	require.Equal(t, framePing, recvWithin(t, f.writes, 5*time.Second, "ping")[0])
	waitUntil(t, 5*time.Second, func() bool { return c.writes.Load() == 1 }, "ping written")
	c.reads.Add(1) // the peer answered
	for range directQuietTicks {
		c.tick() // the first sees the read; each pings again (only the ping was written); not yet closed
		require.Equal(t, framePing, recvWithin(t, f.writes, 5*time.Second, "ping")[0])
		waitUntil(t, 5*time.Second, func() bool { return c.writes.Load() == c.tickW }, "ping written")
	}
	require.Nil(t, c.closeReason())
	c.tick()
	select {
	case <-f.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("a connection silent for directQuietTicks ticks stays open")
	}
	require.ErrorIs(t, c.closeReason(), ErrConnClosed)
}

// Advanced.DirectPort binds the given port, and DirectOff keeps the frames
// of both sides on the libp2p stream (no direct listener at all).
func TestDirectPortSetting(t *testing.T) {
	defer leaktest.AfterTest(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := free.Addr().(*net.TCPAddr).Port
	require.NoError(t, free.Close())

	ra, rb := newRecorder(), newRecorder()
	ca := loopbackConfig("a@127.0.0.1")
	ca.Advanced.DirectPort = port
	a, err := Start(ctx, ca, ra)
	require.NoError(t, err)
	require.NotNil(t, a.direct)
	require.Equal(t, uint16(port), a.direct.port)
	cb := loopbackConfig("b@127.0.0.1", a.GossipAddr())
	cb.Advanced.DirectPort = DirectOff
	b, err := Start(ctx, cb, rb)
	require.NoError(t, err)
	require.Nil(t, b.direct, "DirectOff starts no direct listener")
	waitUntil(t, 10*time.Second, func() bool { return ra.isUp("b@127.0.0.1") && rb.isUp("a@127.0.0.1") }, "mesh")
	require.False(t, isDirect(connTo(a, "b@127.0.0.1")), "b turned direct connections off: a's frames stay on the stream")
	require.False(t, isDirect(connTo(b, "a@127.0.0.1")))
	exchange(t, ctx, a, b, ra, rb, 100)
	stopAll(t, b, a)

	bad := loopbackConfig("c@127.0.0.1")
	bad.Advanced.DirectPort = 70000
	require.ErrorIs(t, bad.Validate(), ErrInvalidConfig)
}
