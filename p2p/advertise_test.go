package p2p

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
)

func TestAdvertiseAddrValidation(t *testing.T) {
	base := Config{Name: "a@10.0.0.1", Cookie: "c"}
	for _, tc := range []struct {
		name, listen, gossip, want string
	}{
		{name: "ipv4 host", listen: "10.0.0.1"},
		{name: "ipv4 host and port", listen: "10.0.0.1:4370"},
		{name: "ipv6 bracketed with port", listen: "[2001:db8::1]:4370"},
		{name: "ipv6 bare", listen: "2001:db8::1"},
		{name: "ipv6 bracketed", listen: "[::1]"},
		{name: "gossip only", gossip: "10.0.0.1:7946"},
		{name: "wildcard v4", listen: "0.0.0.0", want: "wildcard"},
		{name: "wildcard v4 with port", listen: "0.0.0.0:4370", want: "wildcard"},
		{name: "wildcard v6", listen: "[::]:4370", want: "wildcard"},
		{name: "wildcard v6 bare", listen: "::", want: "wildcard"},
		{name: "gossip wildcard", gossip: "0.0.0.0:7946", want: "AdvertiseGossipAddr"},
		{name: "host name", listen: "node.example.com:4370", want: "must be an IP address"},
		{name: "garbage", listen: "not an address", want: "must be an IP address"},
		{name: "port 0", listen: "10.0.0.1:0", want: "port must be"},
		{name: "bad port", listen: "10.0.0.1:http", want: "port must be"},
		{name: "zone", listen: "fe80::1%eth0", want: "zone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			c.AdvertiseAddr, c.AdvertiseGossipAddr = tc.listen, tc.gossip
			err := c.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidConfig)
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), "\n")
			// Start refuses it the same way, before binding anything.
			_, serr := Start(context.Background(), c, newRecorder())
			require.ErrorIs(t, serr, ErrInvalidConfig)
			require.Equal(t, err.Error(), serr.Error())
		})
	}
}

// TestAdvertiseWildcardBind binds wildcard addresses and advertises a
// loopback one, for IPv4 and IPv6 (with IPv6 long names): the members see
// only the advertised addresses, the bound ones are reported apart, and
// the nodes connect through what is advertised.
func TestAdvertiseWildcardBind(t *testing.T) {
	for _, tc := range []struct {
		name, wildcard, loop string
	}{
		{"ipv4", "0.0.0.0", "127.0.0.1"},
		{"ipv6", "::", "::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "ipv6" {
				if l, err := net.Listen("tcp", "[::1]:0"); err != nil {
					t.Skipf("no IPv6 loopback: %v", err)
				} else {
					l.Close()
				}
			}
			defer leaktest.AfterTest(t)()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			wild := net.JoinHostPort(tc.wildcard, "0")
			ra, rb := newRecorder(), newRecorder()
			cfgA := loopbackConfig("a@" + tc.loop)
			cfgA.ListenAddr, cfgA.GossipAddr, cfgA.AdvertiseAddr = wild, wild, tc.loop
			a, err := Start(ctx, cfgA, ra)
			require.NoError(t, err)
			defer stopAll(t, a)

			// Bound: the wildcard; advertised: the loopback address, same ports.
			require.Len(t, a.ListenAddrs(), 1)
			bh, bp, err := net.SplitHostPort(a.ListenAddrs()[0])
			require.NoError(t, err)
			require.True(t, netip.MustParseAddr(strings.Trim(bh, "[]")).IsUnspecified(), "bound %s", bh)
			wantAddr := "/ip4/" + tc.loop + "/tcp/" + bp
			if tc.name == "ipv6" {
				wantAddr = "/ip6/" + tc.loop + "/tcp/" + bp
			}
			require.Equal(t, []string{wantAddr}, a.Self().Addrs)
			gh, gp, err := net.SplitHostPort(a.GossipAddr())
			require.NoError(t, err)
			require.Equal(t, tc.loop, gh)
			require.Equal(t, net.JoinHostPort(tc.wildcard, gp), a.GossipBindAddr())

			// b gets a's advertised gossip address as its seed and dials a
			// at its advertised libp2p address: the only one a's meta holds.
			cfgB := loopbackConfig("b@"+tc.loop, a.GossipAddr())
			cfgB.ListenAddr = net.JoinHostPort(tc.loop, "0")
			cfgB.GossipAddr = net.JoinHostPort(tc.loop, "0")
			b, err := Start(ctx, cfgB, rb)
			require.NoError(t, err)
			defer stopAll(t, b)
			waitUntil(t, 20*time.Second, func() bool { return ra.isUp(b.Self().Name) && rb.isUp(a.Self().Name) }, "mesh")
			var seen Member
			for _, m := range b.Members() {
				if m.Name == a.Self().Name {
					seen = m
				}
			}
			require.Equal(t, []string{wantAddr}, seen.Addrs)
			require.Equal(t, a.GossipAddr(), seen.GossipAddr)
			require.NoError(t, b.Send(ctx, a.Self().Name, []byte("hello")))
			waitUntil(t, 10*time.Second, func() bool { return len(ra.frames(b.Self().Name)) == 1 }, "frame")
		})
	}
}

// mapResolver is a Resolver over a table the test changes; it counts lookups.
type mapResolver struct {
	mu      sync.Mutex
	table   map[string][]netip.Addr
	lookups int
}

func (r *mapResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lookups++
	if as, ok := r.table[host]; ok {
		return append([]netip.Addr(nil), as...), nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (r *mapResolver) set(host string, addrs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.table[host] = nil
	for _, a := range addrs {
		r.table[host] = append(r.table[host], netip.MustParseAddr(a))
	}
}

// freeGossipPort returns a port free for TCP and UDP on each of ips.
func freeGossipPort(t *testing.T, ips ...string) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", net.JoinHostPort(ips[0], "0"))
		require.NoError(t, err)
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		ok := true
		for _, ip := range ips {
			hp := net.JoinHostPort(ip, strconv.Itoa(port))
			tl, err1 := net.Listen("tcp", hp)
			ul, err2 := net.ListenPacket("udp", hp)
			if tl != nil {
				tl.Close()
			}
			if ul != nil {
				ul.Close()
			}
			ok = ok && err1 == nil && err2 == nil
		}
		if ok {
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// TestJoinResolvesDNSSeedsEveryTime joins through a seed name that
// resolves to two addresses (one dead), then moves the name to a node of
// another cluster: the next Join looks the name up again and finds it.
func TestJoinResolvesDNSSeedsEveryTime(t *testing.T) {
	defer leaktest.AfterTest(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	port := freeGossipPort(t, "127.0.0.2", "127.0.0.3", "127.0.0.4")
	gossip := func(ip string) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }
	res := &mapResolver{table: map[string][]netip.Addr{}}
	res.set("seeds.nodal.test", "127.0.0.4", "127.0.0.2") // .4: nothing there
	seed := net.JoinHostPort("seeds.nodal.test", strconv.Itoa(port))

	cfgA := loopbackConfig("a@127.0.0.2")
	cfgA.ListenAddr, cfgA.GossipAddr = "127.0.0.2:0", gossip("127.0.0.2")
	a, err := Start(ctx, cfgA, newRecorder())
	require.NoError(t, err)
	defer stopAll(t, a)
	cfgB := loopbackConfig("b@127.0.0.3")
	cfgB.ListenAddr, cfgB.GossipAddr = "127.0.0.3:0", gossip("127.0.0.3")
	b, err := Start(ctx, cfgB, newRecorder())
	require.NoError(t, err)
	defer stopAll(t, b)

	cfgC := loopbackConfig("c@127.0.0.1", seed)
	cfgC.Advanced.Resolver = res
	c, err := Start(ctx, cfgC, newRecorder())
	require.NoError(t, err)
	defer stopAll(t, c)
	waitUntil(t, 20*time.Second, func() bool { return len(a.Members()) == 2 }, "a to see c")
	require.Equal(t, []string{"a@127.0.0.2", "c@127.0.0.1"}, memberNames(c.Members()))

	// The seed moves to b (another cluster); a rejoin finds it.
	res.set("seeds.nodal.test", "127.0.0.3")
	require.NoError(t, c.Join(ctx, []string{seed}))
	waitUntil(t, 20*time.Second, func() bool { return len(c.Members()) == 3 && len(b.Members()) == 3 }, "clusters merged through the moved seed")
	res.mu.Lock()
	require.Equal(t, 2, res.lookups, "one lookup per join")
	res.mu.Unlock()

	// A name that resolves to nothing fails with one line naming it.
	err = c.Join(ctx, []string{"gone.nodal.test:7946"})
	require.ErrorIs(t, err, ErrNoConnection)
	require.ErrorContains(t, err, "gone.nodal.test")
	require.NotContains(t, err.Error(), "\n")
}
