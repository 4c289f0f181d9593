package p2ptest_test

import (
	"io"
	"net"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal/p2p/p2ptest"
)

func newTransport(t *testing.T, n *p2ptest.Network, name, addr string) *p2ptest.Transport {
	t.Helper()
	tr, err := n.NewTransport(name, addr)
	require.NoError(t, err)
	return tr.(*p2ptest.Transport)
}

// recv takes one packet without waiting.
func recv(t *testing.T, tr *p2ptest.Transport) (*memberlist.Packet, bool) {
	t.Helper()
	select {
	case p := <-tr.PacketCh():
		return p, true
	default:
		return nil, false
	}
}

func TestTransportAddresses(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := p2ptest.New()
	defer n.Close()

	cases := []struct {
		name, node, addr, want string
	}{
		{"ip of the node name", "a@10.0.0.1", "", "10.0.0.1:20000"},
		{"unspecified is the node's ip", "b@10.0.0.1", "0.0.0.0:0", "10.0.0.1:20001"},
		{"explicit ip and port", "c@10.0.0.1", "127.0.0.1:7946", "127.0.0.1:7946"},
		{"short host name gets a synthetic ip", "d@host1", ":0", "198.18.0.1:20000"},
		{"same host name same ip", "e@host1", "host1:0", "198.18.0.1:20001"},
		{"another host name", "f@host2", "", "198.18.0.2:20000"},
		{"localhost", "g@host2", "localhost:0", "127.0.0.1:20000"},
		{"ipv6", "h@host2", "[::1]:0", "[::1]:20000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTransport(t, n, tc.node, tc.addr)
			require.Equal(t, tc.want, tr.Addr())
			require.Equal(t, tc.node, tr.Name())
			got, ok := n.GossipAddr(tc.node)
			require.True(t, ok)
			require.Equal(t, tc.want, got)
			node, ok := n.NodeAt(tc.want)
			require.True(t, ok)
			require.Equal(t, tc.node, node)
			ip, port, err := tr.FinalAdvertiseAddr("192.0.2.1", 1)
			require.NoError(t, err)
			require.Equal(t, tc.want, net.JoinHostPort(ip.String(), strconv.Itoa(port)))
		})
	}

	_, err := n.NewTransport("x@10.0.0.1", "127.0.0.1:7946")
	require.ErrorIs(t, err, p2ptest.ErrAddrInUse)
	for _, bad := range []string{"nocolon", "1.2.3.4:99999", "1.2.3.4:http"} {
		_, err = n.NewTransport("x@10.0.0.1", bad)
		require.ErrorIs(t, err, p2ptest.ErrInvalidAddr, bad)
	}

	require.Equal(t, []string{"a@10.0.0.1", "b@10.0.0.1", "c@10.0.0.1", "d@host1", "e@host1", "f@host2", "g@host2", "h@host2"}, n.Nodes())

	require.NoError(t, n.Close())
	_, err = n.NewTransport("y@10.0.0.1", "")
	require.ErrorIs(t, err, p2ptest.ErrClosed)
	require.Empty(t, n.Nodes())
}

func TestTransportRestartReusesAddress(t *testing.T) {
	n := p2ptest.New()
	defer n.Close()
	a := newTransport(t, n, "a@10.0.0.1", "10.0.0.1:7946")
	require.NoError(t, a.Shutdown())
	require.NoError(t, a.Shutdown(), "shutdown is idempotent")
	_, ok := n.GossipAddr("a@10.0.0.1")
	require.False(t, ok)
	a2 := newTransport(t, n, "a@10.0.0.1", "10.0.0.1:7946")
	require.Equal(t, "10.0.0.1:7946", a2.Addr())
}

func TestTransportPackets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := p2ptest.New()
		defer n.Close()
		a := newTransport(t, n, "a@10.0.0.1", "")
		b := newTransport(t, n, "b@10.0.0.2", "")

		buf := []byte("ping")
		when, err := a.WriteToAddress(buf, memberlist.Address{Addr: b.Addr(), Name: "b@10.0.0.2"})
		require.NoError(t, err)
		buf[0] = 'X' // the transport sent a copy
		p, ok := recv(t, b)
		require.True(t, ok)
		require.Equal(t, "ping", string(p.Buf))
		require.Equal(t, a.Addr(), p.From.String())
		require.Equal(t, "udp", p.From.Network())
		require.Equal(t, when, p.Timestamp)

		send := func(from, to *p2ptest.Transport) bool {
			_, err := from.WriteTo([]byte("x"), to.Addr())
			require.NoError(t, err, "packet loss is silent")
			_, ok := recv(t, to)
			return ok
		}

		n.Partition("a@10.0.0.1", "b@10.0.0.2")
		require.False(t, send(a, b))
		require.False(t, send(b, a))
		require.False(t, n.Reachable("a@10.0.0.1", "b@10.0.0.2"))
		n.Heal()
		require.True(t, send(a, b))
		require.True(t, send(b, a))

		n.Drop("a@10.0.0.1", "b@10.0.0.2", 1)
		require.False(t, send(a, b))
		require.True(t, send(b, a), "drop is one way")
		n.Drop("a@10.0.0.1", "b@10.0.0.2", 0)
		require.True(t, send(a, b))

		n.Isolate("b@10.0.0.2")
		c := newTransport(t, n, "c@10.0.0.3", "")
		require.False(t, send(c, b), "isolation covers nodes started later")
		require.True(t, send(c, a))
		n.Heal()
		require.True(t, send(c, b))

		require.Equal(t, p2ptest.Stats{Delivered: 7, DroppedCut: 3, DroppedRate: 1}, n.Stats())
		require.Equal(t, p2ptest.Stats{Delivered: 3, DroppedCut: 1, DroppedRate: 1}, n.PairStats("a@10.0.0.1", "b@10.0.0.2"))

		// Sending to a stopped peer is dropped, never blocks, never errors.
		require.NoError(t, b.Shutdown())
		_, err = a.WriteTo([]byte("x"), b.Addr())
		require.NoError(t, err)
		require.Equal(t, uint64(1), n.Stats().DroppedDown)
		_, err = b.WriteTo([]byte("x"), a.Addr())
		require.ErrorIs(t, err, p2ptest.ErrShutdown)

		_, err = a.WriteTo([]byte("x"), "nohost:1")
		require.ErrorIs(t, err, p2ptest.ErrNoRoute)
		_, err = a.WriteTo([]byte("x"), "garbage")
		require.ErrorIs(t, err, p2ptest.ErrInvalidAddr)
	})
}

func TestTransportFullBufferDrops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := p2ptest.New(p2ptest.WithPacketBuffer(2))
		defer n.Close()
		a := newTransport(t, n, "a@10.0.0.1", "")
		b := newTransport(t, n, "b@10.0.0.2", "")
		for range 5 {
			_, err := a.WriteTo([]byte("x"), b.Addr())
			require.NoError(t, err)
		}
		require.Equal(t, p2ptest.Stats{Delivered: 2, DroppedFull: 3}, n.Stats())
		require.Len(t, b.PacketCh(), 2)
	})
}

func TestTransportDropRateIsSeeded(t *testing.T) {
	run := func(seed int64) (delivered uint64) {
		n := p2ptest.New(p2ptest.WithSeed(seed))
		defer n.Close()
		a := newTransport(t, n, "a@10.0.0.1", "")
		b := newTransport(t, n, "b@10.0.0.2", "")
		n.Drop("a@10.0.0.1", "b@10.0.0.2", 0.5)
		for range 1000 {
			_, err := a.WriteTo([]byte("x"), b.Addr())
			require.NoError(t, err)
			recv(t, b)
		}
		s := n.Stats()
		require.Equal(t, uint64(1000), s.Delivered+s.DroppedRate)
		return s.Delivered
	}
	d := run(7)
	require.Equal(t, d, run(7), "same seed, same losses")
	require.InDelta(t, 500, float64(d), 100)
	require.Panics(t, func() { p2ptest.New().Drop("a", "b", 1.5) })
}

func TestTransportStreams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := p2ptest.New()
		defer n.Close()
		a := newTransport(t, n, "a@10.0.0.1", "")
		b := newTransport(t, n, "b@10.0.0.2", "")

		dial := func(from, to *p2ptest.Transport) (net.Conn, net.Conn, error) {
			c, err := from.DialAddressTimeout(memberlist.Address{Addr: to.Addr()}, time.Second)
			if err != nil {
				return nil, nil, err
			}
			select {
			case s := <-to.StreamCh():
				return c, s, nil
			default:
				t.Fatal("dialled stream not on StreamCh")
				return nil, nil, nil
			}
		}

		c, s, err := dial(a, b)
		require.NoError(t, err)
		require.Equal(t, "10.0.0.1", c.LocalAddr().(*net.TCPAddr).IP.String())
		require.Equal(t, b.Addr(), c.RemoteAddr().String())
		require.Equal(t, "10.0.0.1", s.RemoteAddr().(*net.TCPAddr).IP.String())
		go func() {
			buf := make([]byte, 4)
			_, _ = io.ReadFull(s, buf)
			_, _ = s.Write([]byte("pong"))
		}()
		_, err = c.Write([]byte("ping"))
		require.NoError(t, err)
		buf := make([]byte, 4)
		_, err = io.ReadFull(c, buf)
		require.NoError(t, err)
		require.Equal(t, "pong", string(buf))

		// A cut closes open streams on both ends and fails new dials at once.
		readErr := make(chan error, 1)
		go func() {
			_, err := s.Read(make([]byte, 1))
			readErr <- err
		}()
		synctest.Wait()
		n.Partition("a@10.0.0.1", "b@10.0.0.2")
		require.Error(t, recvWithin(t, readErr, "the read to fail"))
		_, err = c.Write([]byte("x"))
		require.Error(t, err)
		_, _, err = dial(a, b)
		require.ErrorIs(t, err, p2ptest.ErrUnreachable)
		_, _, err = dial(b, a)
		require.ErrorIs(t, err, p2ptest.ErrUnreachable)

		// A one-way Drop of 1 also kills dials both ways.
		n.Heal()
		n.Drop("b@10.0.0.2", "a@10.0.0.1", 1)
		_, _, err = dial(a, b)
		require.ErrorIs(t, err, p2ptest.ErrUnreachable)
		n.Heal()

		// Shutdown of the listener closes its streams, accepted or not.
		c1, s1, err := dial(a, b)
		require.NoError(t, err)
		c2, err := a.DialTimeout(b.Addr(), time.Second)
		require.NoError(t, err)
		go func() {
			_, err := c1.Read(make([]byte, 1))
			readErr <- err
		}()
		synctest.Wait()
		require.NoError(t, b.Shutdown())
		require.ErrorIs(t, recvWithin(t, readErr, "the read to end"), io.EOF)
		_, err = c2.Write([]byte("x"))
		require.Error(t, err)
		_, err = s1.Write([]byte("x"))
		require.Error(t, err)
		_, _, err = dial(a, b)
		require.ErrorIs(t, err, p2ptest.ErrRefused)
		_, err = b.DialTimeout(a.Addr(), time.Second)
		require.ErrorIs(t, err, p2ptest.ErrShutdown)

		st := n.Stats()
		require.Equal(t, uint64(3), st.StreamsOpened)
		require.Equal(t, uint64(3), st.StreamsUnreachable)
		require.Equal(t, uint64(1), st.StreamsRefused)
		require.Equal(t, uint64(3), st.StreamsSevered)
		require.NoError(t, c.Close())
		require.NoError(t, s.Close())
	})
}

func TestTransportBacklogFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := p2ptest.New(p2ptest.WithStreamBacklog(1))
		defer n.Close()
		a := newTransport(t, n, "a@10.0.0.1", "")
		b := newTransport(t, n, "b@10.0.0.2", "")
		c1, err := a.DialTimeout(b.Addr(), time.Second)
		require.NoError(t, err)
		defer c1.Close()
		_, err = a.DialTimeout(b.Addr(), time.Second)
		require.ErrorIs(t, err, p2ptest.ErrRefused)
	})
}

// recvWithin receives from ch, failing the test after a minute of (fake)
// time: a hang guard with a message, not a timing assertion.
func recvWithin[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(time.Minute)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}
