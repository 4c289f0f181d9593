package p2ptest_test

import (
	"context"
	"io"
	"testing"
	"testing/synctest"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal/p2p/p2ptest"
)

const echoProto = "/nodal/test-echo/1.0.0"

func newHost(t *testing.T, n *p2ptest.Network, name string, key crypto.PrivKey) host.Host {
	t.Helper()
	h, err := n.NewHost(t.Context(), name, key, "")
	require.NoError(t, err)
	h.SetStreamHandler(echoProto, func(s network.Stream) {
		defer s.Close()
		buf := make([]byte, 4)
		if _, err := io.ReadFull(s, buf); err != nil {
			_ = s.Reset()
			return
		}
		_, _ = s.Write(buf)
	})
	return h
}

// echo opens a stream from a to b and round-trips four bytes.
func echo(ctx context.Context, a, b host.Host) error {
	s, err := a.NewStream(ctx, b.ID(), echoProto)
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.Write([]byte("ping")); err != nil {
		return err
	}
	buf := make([]byte, 4)
	_, err = io.ReadFull(s, buf)
	return err
}

func TestHostPartitionAndHeal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := p2ptest.New()
		defer n.Close()
		ctx := t.Context()
		a := newHost(t, n, "a@10.0.0.1", nil)
		b := newHost(t, n, "b@10.0.0.2", nil)
		c := newHost(t, n, "c@10.0.0.3", nil)
		require.Equal(t, "/ip4/10.0.0.2/tcp/20000", b.Addrs()[0].String())

		require.NoError(t, a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}))
		require.NoError(t, echo(ctx, a, b))
		require.NoError(t, echo(ctx, b, a))

		// The cut closes the connection and keeps new dials from getting
		// through; other pairs are untouched.
		n.Partition("a@10.0.0.1", "b@10.0.0.2")
		require.Equal(t, network.NotConnected, a.Network().Connectedness(b.ID()))
		require.ErrorIs(t, echo(ctx, a, b), p2ptest.ErrUnreachable)
		require.ErrorIs(t, echo(ctx, b, a), p2ptest.ErrUnreachable)
		require.ErrorIs(t, a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}), p2ptest.ErrUnreachable)
		require.NoError(t, echo(ctx, a, c))
		require.NoError(t, echo(ctx, c, b))

		n.Heal()
		require.NoError(t, echo(ctx, a, b))

		// Drop is for memberlist only: even a rate of 1 both ways leaves
		// the hosts connected, as a frozen process's connections stay open.
		n.Drop("b@10.0.0.2", "a@10.0.0.1", 1)
		n.Drop("a@10.0.0.1", "b@10.0.0.2", 1)
		require.NoError(t, echo(ctx, a, b))
		require.Equal(t, network.Connected, a.Network().Connectedness(b.ID()))
		n.Heal()

		// Isolation applies to hosts that start later too.
		n.Isolate("d@10.0.0.4")
		d := newHost(t, n, "d@10.0.0.4", nil)
		require.Error(t, echo(ctx, d, a))
		require.NoError(t, echo(ctx, c, a))
		n.Heal()
		require.NoError(t, echo(ctx, d, a))
	})
}

func TestHostCloseAndRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := p2ptest.New()
		defer n.Close()
		ctx := t.Context()
		key, _, err := crypto.GenerateEd25519Key(nil)
		require.NoError(t, err)
		a := newHost(t, n, "a@10.0.0.1", nil)
		b := newHost(t, n, "b@10.0.0.2", key)
		require.NoError(t, echo(ctx, a, b))

		id, ok := n.PeerID("b@10.0.0.2")
		require.True(t, ok)
		require.Equal(t, b.ID(), id)
		name, ok := n.NodeName(b.ID())
		require.True(t, ok)
		require.Equal(t, "b@10.0.0.2", name)
		at, ok := n.HostAt("10.0.0.2:20000")
		require.True(t, ok)
		require.Equal(t, b.ID(), at)
		name, ok = n.NodeAt("10.0.0.2:20000")
		require.True(t, ok)
		require.Equal(t, "b@10.0.0.2", name)

		_, err = n.NewHost(ctx, "b2@10.0.0.2", key, "")
		require.ErrorIs(t, err, p2ptest.ErrPeerIDInUse)
		_, err = n.NewHost(ctx, "x@10.0.0.2", nil, "10.0.0.2:20000")
		require.ErrorIs(t, err, p2ptest.ErrAddrInUse)

		require.NoError(t, b.Close())
		require.NoError(t, b.Close(), "close is idempotent")
		require.Error(t, echo(ctx, a, b))
		_, ok = n.PeerID("b@10.0.0.2")
		require.False(t, ok)

		// A restart with the same key and address is reachable again.
		b = newHost(t, n, "b@10.0.0.2", key)
		require.Equal(t, id, b.ID())
		require.NoError(t, echo(ctx, a, b))

		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		_, err = n.NewHost(cancelled, "e@10.0.0.5", nil, "")
		require.ErrorIs(t, err, context.Canceled)

		require.NoError(t, n.Close())
		_, err = n.NewHost(ctx, "f@10.0.0.6", nil, "")
		require.ErrorIs(t, err, p2ptest.ErrClosed)
	})
}

func TestHostKeysFollowSeed(t *testing.T) {
	defer leaktest.AfterTest(t)()
	ids := func(seed int64) []peer.ID {
		n := p2ptest.New(p2ptest.WithSeed(seed))
		defer n.Close()
		var out []peer.ID
		for _, name := range []string{"a@10.0.0.1", "b@10.0.0.2"} {
			h, err := n.NewHost(context.Background(), name, nil, "")
			require.NoError(t, err)
			out = append(out, h.ID())
		}
		return out
	}
	first := ids(3)
	require.Equal(t, first, ids(3))
	require.NotEqual(t, first[0], first[1])
	require.NotEqual(t, first, ids(4))
}

// Outside a bubble the network works on real time, and Close leaves no
// goroutine behind.
func TestHostOutsideBubble(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := p2ptest.New()
	ctx := context.Background()
	a := newHost(t, n, "a@10.0.0.1", nil)
	b := newHost(t, n, "b@10.0.0.2", nil)
	require.NoError(t, echo(ctx, a, b))
	n.Partition("a@10.0.0.1", "b@10.0.0.2")
	require.Error(t, echo(ctx, a, b))
	n.Heal()
	require.NoError(t, echo(ctx, a, b))
	require.NoError(t, n.Close())
}
