package faultproxy

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
)

// echoServer echoes TCP and UDP on one loopback port until the test ends.
func echoServer(t *testing.T) (string, func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	u, err := net.ListenPacket("udp", l.Addr().String())
	require.NoError(t, err)
	done := make(chan struct{}, 2)
	var conns sync.WaitGroup
	stop := func() { l.Close(); u.Close(); <-done; <-done; conns.Wait() }
	go func() {
		defer func() { done <- struct{}{} }()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Go(func() { _, _ = io.Copy(c, c); c.Close() })
		}
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		buf := make([]byte, 65536)
		for {
			n, from, err := u.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = u.WriteTo(buf[:n], from)
		}
	}()
	return l.Addr().String(), stop
}

func TestTCPDelayedInOrderIntact(t *testing.T) {
	defer leaktest.AfterTest(t)()
	target, stop := echoServer(t)
	defer stop()
	p := New(Faults{MinDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond, Loss: 0.3, RetransmitDelay: 10 * time.Millisecond}, 1)
	defer p.Close()
	addr, err := p.Forward("127.0.0.1:0", target, AToB, false)
	require.NoError(t, err)
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	want := make([]byte, 1<<20)
	_, _ = rand.Read(want)
	start := time.Now()
	go func() {
		for i := 0; i < len(want); i += 1000 {
			_, _ = c.Write(want[i:min(i+1000, len(want))])
		}
	}()
	got := make([]byte, len(want))
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, got), "stream corrupted or reordered")
	// Two passes through the proxy, each at least MinDelay: a lower bound
	// the proxy enforces, not a speed assertion.
	require.GreaterOrEqual(t, time.Since(start), 10*time.Millisecond)
	s := p.Stats(Both)
	require.Equal(t, uint64(1), s.TCPConns)
	require.Positive(t, s.TCPRetrans)
}

func TestUDPLossAndBlackhole(t *testing.T) {
	defer leaktest.AfterTest(t)()
	target, stop := echoServer(t)
	defer stop()
	p := New(Faults{MinDelay: time.Millisecond, MaxDelay: 3 * time.Millisecond, Loss: 0.2}, 2)
	defer p.Close()
	addr, err := p.Forward("127.0.0.1:0", target, AToB, true)
	require.NoError(t, err)
	c, err := net.Dial("udp", addr)
	require.NoError(t, err)
	defer c.Close()
	// One packet at a time (so that no socket buffer drops any): each
	// crosses the proxy twice and is echoed back unless it was dropped.
	const n = 100
	got := 0
	buf := make([]byte, 16)
	for i := range n {
		_, err := c.Write([]byte{byte(i)})
		require.NoError(t, err)
		_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if k, err := c.Read(buf); err == nil && k == 1 && buf[0] == byte(i) {
			got++
		}
	}
	require.Less(t, got, n)
	s := p.Stats(Both)
	require.Positive(t, s.UDPDropped)
	require.Positive(t, got)
	t.Logf("%d sent, %d echoed back, %d dropped of %d crossings", n, got, s.UDPDropped, s.UDPPackets)

	// Blackholed: everything is dropped.
	p.Blackhole(Both, true)
	before := p.Stats(Both)
	for range 50 {
		_, _ = c.Write([]byte{1})
	}
	require.Eventually(t, func() bool { return p.Stats(Both).UDPPackets == before.UDPPackets+50 }, 10*time.Second, time.Millisecond)
	require.Equal(t, before.UDPDropped+50, p.Stats(Both).UDPDropped)
}

func TestTCPBlackholeHoldsThenReleases(t *testing.T) {
	defer leaktest.AfterTest(t)()
	target, stop := echoServer(t)
	defer stop()
	p := New(Faults{}, 3)
	defer p.Close()
	addr, err := p.Forward("127.0.0.1:0", target, AToB, false)
	require.NoError(t, err)
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	// The connection is through to the target (an echo came back) before
	// the blackhole: a connection accepted while blackholed would not be
	// dialled on.
	_, err = c.Write([]byte("x"))
	require.NoError(t, err)
	_, err = io.ReadFull(c, make([]byte, 1))
	require.NoError(t, err)
	p.Blackhole(Both, true)
	_, err = c.Write([]byte("held"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return p.Stats(Both).TCPChunks == 3 }, 10*time.Second, time.Millisecond)
	p.Blackhole(Both, false)
	got := make([]byte, 4)
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	require.Equal(t, "held", string(got))
}

func TestCloseEndsEverything(t *testing.T) {
	defer leaktest.AfterTest(t)()
	target, stop := echoServer(t)
	defer stop()
	p := New(Faults{MinDelay: time.Second, MaxDelay: time.Second}, 4)
	addr, err := p.Forward("127.0.0.1:0", target, AToB, true)
	require.NoError(t, err)
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_, _ = c.Write([]byte("in flight"))
	u, err := net.Dial("udp", addr)
	require.NoError(t, err)
	defer u.Close()
	_, _ = u.Write([]byte("in flight"))
	require.Eventually(t, func() bool { s := p.Stats(Both); return s.TCPChunks == 1 && s.UDPPackets == 1 }, 10*time.Second, time.Millisecond)
	require.NoError(t, p.Close())
	require.NoError(t, p.Close())
	_, err = p.Forward("127.0.0.1:0", target, AToB, false)
	require.ErrorIs(t, err, ErrClosed)
}
