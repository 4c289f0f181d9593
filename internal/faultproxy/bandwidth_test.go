package faultproxy

import (
	"bytes"
	"crypto/rand"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
)

// memListener is an in-memory net.Listener on net.Pipe: in a synctest
// bubble a goroutine blocked on it is durably blocked, so the proxy runs
// on the bubble's fake clock.
type memListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newMemListener() *memListener {
	return &memListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error { l.once.Do(func() { close(l.done) }); return nil }
func (l *memListener) Addr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}
}

// dial hands the listener one end of a new pipe and returns the other.
func (l *memListener) dial() (net.Conn, error) {
	a, b := net.Pipe()
	select {
	case l.conns <- b:
		return a, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// memLink is a proxy forwarding, way w, from an in-memory listener to an
// in-memory target: client is what the test writes to (and reads answers
// from), server what the target side reads (and answers on).
func memLink(t *testing.T, p *Proxy, w Way) (client, server net.Conn) {
	t.Helper()
	l := newMemListener()
	require.True(t, p.track(l))
	servers := make(chan net.Conn, 1)
	p.wg.Go(func() {
		p.acceptLoop(l, func() (net.Conn, error) {
			a, b := net.Pipe()
			servers <- b
			return a, nil
		}, w)
	})
	c, err := l.dial()
	require.NoError(t, err)
	return c, <-servers
}

// sample is how many bytes had arrived at a moment.
type sample struct {
	at    time.Time
	total int
}

// readAll reads want bytes from c, noting the total after each read.
func readAll(c net.Conn, want int) ([]byte, []sample, error) {
	got := make([]byte, 0, want)
	var samples []sample
	buf := make([]byte, 64<<10)
	for len(got) < want {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if n > 0 {
			samples = append(samples, sample{time.Now(), len(got)})
		}
		if err != nil {
			return got, samples, err
		}
	}
	return got, samples, nil
}

// TestBandwidthBoundsDelivery sends 256 KiB each way through a proxy
// whose way a->b is limited to 64 KiB/s (burst 4 KiB) and b->a is not, on
// synctest's fake clock: at every read the bytes delivered a->b are at
// most Burst + Bandwidth*t, the stream is intact and in order, and the
// whole arrives within one chunk's time of what the rate allows (the
// limit holds without stalling). b->a arrives at once: the ways are
// separate.
func TestBandwidthBoundsDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rateBps, burst, size = 64 << 10, 4 << 10, 256 << 10
		p := New(Faults{Bandwidth: rateBps, Burst: burst}, 5)
		p.SetFaults(BToA, Faults{})
		defer p.Close()
		client, server := memLink(t, p, AToB)
		defer client.Close()
		defer server.Close()
		up := make([]byte, size)
		down := make([]byte, size)
		_, _ = rand.Read(up)
		_, _ = rand.Read(down)

		start := time.Now()
		var wg sync.WaitGroup
		wg.Go(func() { _, _ = client.Write(up) })
		wg.Go(func() { _, _ = server.Write(down) })
		var gotDown []byte
		var downAt time.Time
		wg.Go(func() {
			gotDown, _, _ = readAll(client, size)
			downAt = time.Now()
		})
		gotUp, samples, err := readAll(server, size)
		require.NoError(t, err)
		upAt := time.Now()
		wg.Wait()

		require.True(t, bytes.Equal(up, gotUp), "a->b stream corrupted or reordered")
		require.True(t, bytes.Equal(down, gotDown), "b->a stream corrupted or reordered")
		for _, s := range samples {
			// +1: the bucket's float arithmetic may round a wait down by
			// a nanosecond.
			bound := burst + rateBps*s.at.Sub(start).Seconds() + 1
			require.LessOrEqual(t, float64(s.total), bound, "%d bytes delivered %v after the start", s.total, s.at.Sub(start))
		}
		least := time.Duration(float64(size-burst) / rateBps * float64(time.Second))
		chunk := time.Duration(float64(burst) / rateBps * float64(time.Second))
		took := upAt.Sub(start)
		require.GreaterOrEqual(t, took, least-time.Millisecond)
		require.LessOrEqual(t, took, least+chunk, "the limit stalls the stream")
		require.Zero(t, downAt.Sub(start), "b->a has no limit")
		synctest.Wait() // the proxy's writers count the last chunk after it was read
		s := p.Stats(AToB)
		require.Equal(t, uint64(size), s.Bytes)
		require.Equal(t, uint64(size/burst), s.TCPChunks, "a->b chunks are at most Burst")
		t.Logf("256 KiB at 64 KiB/s: %v (rate allows %v), %d reads", took, least, len(samples))
	})
}

// TestBandwidthChangeAppliesToStream: lowering a way's bandwidth in the
// middle of a transfer slows the rest; removing it lets the rest through
// at once (fake clock).
func TestBandwidthChangeAppliesToStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := New(Faults{Bandwidth: 32 << 10, Burst: 2 << 10}, 6)
		defer p.Close()
		client, server := memLink(t, p, AToB)
		defer client.Close()
		defer server.Close()
		go func() { _, _ = client.Write(make([]byte, 96<<10)) }()
		_, _, err := readAll(server, 32<<10)
		require.NoError(t, err)
		// 30 KiB after the first burst at 32 KiB/s: ~0.94 s.
		t1 := time.Now()
		p.SetFaults(AToB, Faults{Bandwidth: 8 << 10, Burst: 2 << 10})
		_, _, err = readAll(server, 16<<10)
		require.NoError(t, err)
		require.GreaterOrEqual(t, time.Since(t1), time.Duration(float64(14<<10)/(8<<10)*float64(time.Second)))
		t2 := time.Now()
		p.SetFaults(AToB, Faults{})
		_, _, err = readAll(server, 48<<10)
		require.NoError(t, err)
		// At most the one chunk reserved under the old limit still waits.
		require.LessOrEqual(t, time.Since(t2), time.Duration(float64(2<<10)/(8<<10)*float64(time.Second)))
	})
}

// TestBlackholeOneWay: blackholing a->b holds what the client sends while
// what the target sends still arrives; lifting it delivers the held bytes
// (fake clock).
func TestBlackholeOneWay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := New(Faults{}, 7)
		defer p.Close()
		client, server := memLink(t, p, AToB)
		defer client.Close()
		defer server.Close()
		p.Blackhole(AToB, true)
		go func() { _, _ = client.Write([]byte("held")) }()
		go func() { _, _ = server.Write([]byte("answer")) }()
		got, _, err := readAll(client, len("answer"))
		require.NoError(t, err)
		require.Equal(t, "answer", string(got), "b->a passes a one-way blackhole of a->b")
		synctest.Wait()
		require.Equal(t, uint64(1), p.Stats(AToB).TCPChunks)
		require.Zero(t, p.Stats(AToB).Bytes, "a->b bytes arrived through the blackhole")
		p.Blackhole(AToB, false)
		got, _, err = readAll(server, len("held"))
		require.NoError(t, err)
		require.Equal(t, "held", string(got))
	})
}

// TestUDPBandwidthQueueDrops: 100 packets of 1,000 bytes sent back to back
// into a way limited to 10,000 bytes/s: the bucket lets through its
// burst and what waits at most UDPQueue, and drops the rest, so what is
// delivered stays under Burst + Bandwidth*(elapsed + UDPQueue). The
// elapsed time is measured after the sends and the deliveries ended, so
// the bound only gets looser with a slow machine.
func TestUDPBandwidthQueueDrops(t *testing.T) {
	defer leaktest.AfterTest(t)()
	target, stop := echoServer(t)
	defer stop()
	const rateBps, burst, n, size = 10_000, 1_500, 100, 1_000
	p := New(Faults{}, 8)
	p.SetFaults(AToB, Faults{Bandwidth: rateBps, Burst: burst})
	defer p.Close()
	addr, err := p.Forward("127.0.0.1:0", target, AToB, true)
	require.NoError(t, err)
	c, err := net.Dial("udp", addr)
	require.NoError(t, err)
	defer c.Close()
	start := time.Now()
	for i := range n {
		_, err := c.Write(make([]byte, size))
		require.NoError(t, err)
		// One at a time into the proxy, so that no socket buffer drops
		// any on the way in.
		require.Eventually(t, func() bool { return p.Stats(AToB).UDPPackets == uint64(i+1) }, 10*time.Second, 100*time.Microsecond)
	}
	// Every packet is either dropped or, within UDPQueue, delivered.
	require.Eventually(t, func() bool {
		s := p.Stats(AToB)
		return s.UDPPackets == n && s.UDPDropped+s.Bytes/size == n
	}, 10*time.Second, time.Millisecond)
	s := p.Stats(AToB)
	elapsed := time.Since(start)
	delivered := n - s.UDPDropped
	require.Positive(t, s.UDPDropped, "a burst 60x the bucket went through")
	require.Positive(t, delivered)
	require.LessOrEqual(t, float64(s.Bytes), burst+rateBps*(elapsed+UDPQueue).Seconds())
	t.Logf("%d of %d packets delivered in %v", delivered, n, elapsed)
}

// TestForwardNeedsOneWay: Forward refuses Both (which way would the
// answers go?).
func TestForwardNeedsOneWay(t *testing.T) {
	p := New(Faults{}, 9)
	defer p.Close()
	_, err := p.Forward("127.0.0.1:0", "127.0.0.1:1", Both, false)
	require.ErrorIs(t, err, ErrWay)
}

// TestBlackholeDefersDial: a connection accepted while its way is
// blackholed does not reach the target (no half-open connection piles up
// there) until the way clears; then its bytes arrive (fake clock). A
// client that closes before the way clears is never dialled through: at
// the heal the target sees no burst of dead connections from the proxy's
// address (each would hold one of its pending-handshake slots).
func TestBlackholeDefersDial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := New(Faults{}, 10)
		defer p.Close()
		p.Blackhole(AToB, true)
		l := newMemListener()
		require.True(t, p.track(l))
		servers := make(chan net.Conn, 2)
		p.wg.Go(func() {
			p.acceptLoop(l, func() (net.Conn, error) {
				a, b := net.Pipe()
				servers <- b
				return a, nil
			}, AToB)
		})
		quitter, err := l.dial()
		require.NoError(t, err)
		_, err = quitter.Write([]byte("bye"))
		require.NoError(t, err)
		require.NoError(t, quitter.Close())
		client, err := l.dial()
		require.NoError(t, err)
		defer client.Close()
		go func() { _, _ = client.Write([]byte("hello")) }()
		time.Sleep(time.Minute)
		synctest.Wait()
		require.Empty(t, servers, "dialled the target through a blackhole")
		p.Blackhole(AToB, false)
		server := <-servers
		defer server.Close()
		got, _, err := readAll(server, len("hello"))
		require.NoError(t, err)
		require.Equal(t, "hello", string(got))
		time.Sleep(time.Minute)
		synctest.Wait()
		require.Empty(t, servers, "dialled the target for a client that had gone")
	})
}
