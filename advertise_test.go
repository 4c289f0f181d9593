package nodal

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal/p2p"
)

func TestNodeNamesWithIPHosts(t *testing.T) {
	for _, ok := range []string{"a@10.0.0.1", "a@::1", "a@2001:db8::1", "a@::ffff:10.0.0.1", "a@host.example.com"} {
		require.NoError(t, ValidateNodeName(ok), ok)
		_, err := p2p.ParseName(ok)
		require.NoError(t, err, ok)
		pid := Pid{Node: ok, ID: 7, Incarnation: 3}
		back, err := ParsePid(pid.String())
		require.NoError(t, err, pid.String())
		require.Equal(t, pid, back)
	}
	for _, bad := range []string{"a@fe80::1%eth0", "a@[::1]", "a@::1:", "a@:"} {
		require.ErrorIs(t, ValidateNodeName(bad), ErrBadNodeName, bad)
	}
}

func TestAdvertiseAddrRefusedAtStart(t *testing.T) {
	for _, adv := range []string{"0.0.0.0", "[::]:4370", "node.example.com", "1.2.3.4:99999"} {
		cfg := DefaultLocalConfig("a@127.0.0.1", testCookie)
		cfg.ListenAddr, cfg.AdvertiseAddr = "0.0.0.0:0", adv
		_, err := Start(context.Background(), cfg)
		require.ErrorIs(t, err, ErrInvalidConfig, adv)
		require.ErrorContains(t, err, "AdvertiseAddr")
		require.NotContains(t, err.Error(), "\n")
	}
	cfg := Config{AdvertiseAddr: "10.0.0.1"} // not distributed
	require.ErrorIs(t, cfg.Validate(), ErrInvalidConfig)
}

// TestAdvertiseIPv6Call runs two nodes with IPv6 long names that bind the
// IPv6 wildcard and advertise ::1, and makes a remote call between them.
func TestAdvertiseIPv6Call(t *testing.T) {
	if l, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		l.Close()
	}
	defer leaktest.AfterTest(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := func(name string, seeds ...string) *Node {
		cfg := DefaultLocalConfig(name, testCookie)
		cfg.ListenAddr, cfg.GossipAddr, cfg.AdvertiseAddr, cfg.Seeds = "[::]:0", "[::]:0", "::1", seeds
		n, err := Start(ctx, cfg)
		require.NoError(t, err)
		return n
	}
	a := start("a@::1")
	defer stopNodes([]*Node{a})
	require.True(t, strings.HasPrefix(a.GossipAddr(), "[::1]:"), a.GossipAddr())
	require.True(t, strings.HasPrefix(a.GossipBindAddr(), "[::]:"), a.GossipBindAddr())
	require.Len(t, a.ListenAddrs(), 1)
	require.True(t, strings.HasPrefix(a.ListenAddrs()[0], "[::]:"), a.ListenAddrs())
	require.Len(t, a.Info().Addrs, 1)
	require.True(t, strings.HasPrefix(a.Info().Addrs[0], "/ip6/::1/tcp/"), a.Info().Addrs)
	b := start("b@::1", a.GossipAddr())
	defer stopNodes([]*Node{b})
	_, err := a.Spawn(func(p *Process) error {
		for {
			m, err := p.Receive(p.Context())
			if err != nil {
				return err
			}
			if r, ok := m.(CallRequest); ok {
				p.Reply(r.From, r.Req)
			}
		}
	}, WithName("echo"))
	require.NoError(t, err)
	got := make(chan any, 1)
	_, err = b.Spawn(func(p *Process) error {
		r, err := p.CallName(ctx, a.Name(), "echo", "over ipv6")
		if err != nil {
			got <- err
			return nil
		}
		got <- r
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, "over ipv6", <-got)
}
