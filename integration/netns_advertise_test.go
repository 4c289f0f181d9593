//go:build linux

package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
)

// hostsFile writes the /etc/hosts that "ip netns exec" bind-mounts inside
// node key's namespace (/etc/netns/NS/hosts), removed when the test ends.
func (l *netLab) hostsFile(key string, lines ...string) {
	l.t.Helper()
	dir := filepath.Join("/etc/netns", l.NS(key))
	require.NoError(l.t, os.MkdirAll(dir, 0o755))
	l.t.Cleanup(func() { _ = os.RemoveAll(dir) })
	body := "127.0.0.1 localhost\n"
	for _, s := range lines {
		body += s + "\n"
	}
	require.NoError(l.t, os.WriteFile(filepath.Join(dir, "hosts"), []byte(body), 0o644))
}

// TestNetnsWildcardBindAdvertise runs nodes a, b and c as "nodal start"
// processes in their own namespaces. Each binds the wildcard (0.0.0.0:4370
// and 0.0.0.0:7946) and advertises its namespace address. b and c join
// through a DNS name, seeds.nodal.test, that their namespace's /etc/hosts
// resolves to two addresses: one where nothing runs, then a's. The cluster
// forms; ctl, run from the root namespace, reaches each node through its
// advertised address, and info shows bound and advertised addresses apart;
// an embedded node sees only the advertised addresses in the membership.
func TestNetnsWildcardBindAdvertise(t *testing.T) {
	requireNetLab(t)
	defer leaktest.AfterTest(t)()
	lab := newNetLab(t, "a", "b", "c")
	defer lab.close() // after the nodes stop, before leaktest checks
	c := newCluster(t, fmt.Sprintf("netns-adv-cookie-%d", lab.subnet))
	defer c.close()
	dead := lab.Spare() // in the subnet, nobody there
	for _, k := range []string{"b", "c"} {
		lab.hostsFile(k, dead+" seeds.nodal.test", lab.IP("a")+" seeds.nodal.test")
	}
	wild := []string{"--listen", "0.0.0.0:4370", "--gossip", "0.0.0.0:7946"}
	start := func(key string, extra ...string) *nodeProc {
		n := lab.StartNode(c, key, append(append(slices.Clone(wild), "--advertise", lab.IP(key)), extra...)...)
		require.Equal(t, lab.IP(key)+":4370", n.Listen, "the up line shows the advertised listen address")
		require.Equal(t, lab.IP(key)+":7946", n.Gossip, "the up line shows the advertised gossip address")
		return n
	}
	a := start("a")
	b := start("b", "--join", "seeds.nodal.test:7946")
	cn := start("c", "--join", "seeds.nodal.test:7946")
	all := []string{a.Name, b.Name, cn.Name}

	// ctl from the root namespace: only the advertised address is routable
	// from here (0.0.0.0 and 127.0.0.1 are the test's own).
	for _, n := range []*nodeProc{a, b, cn} {
		eventually(t, func() bool {
			r := ctl(t, n.Listen, n.Cookie, "--json", "nodes")
			if r.Code != 0 {
				return false
			}
			var v nodesJSON
			decodeOne(t, r.Stdout, &v)
			return slices.Equal(v.Nodes, all)
		}, "%s to see a, b and c through ctl at %s", n.Name, n.Listen)
		r := ctl(t, n.Listen, n.Cookie, "--json", "info")
		require.Equal(t, 0, r.Code, r.Stderr)
		var info infoJSON
		decodeOne(t, r.Stdout, &info)
		require.Equal(t, []string{n.Listen}, info.Listen)
		require.Equal(t, n.Gossip, info.Gossip)
		require.Equal(t, []string{"0.0.0.0:4370"}, info.ListenBound)
		require.Equal(t, "0.0.0.0:7946", info.GossipBound)
	}

	// An embedded node in the root namespace joins through a's advertised
	// gossip address and sees only advertised addresses.
	cfg := nodal.DefaultLocalConfig("t@"+lab.RootIP(), c.cookie)
	cfg.ListenAddr, cfg.GossipAddr = lab.RootIP()+":0", lab.RootIP()+":0"
	cfg.Seeds = []string{a.Gossip}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	tn, err := nodal.Start(ctx, cfg)
	require.NoError(t, err)
	defer stopTestNode(tn)
	eventually(t, func() bool { return slices.Equal(tn.Nodes(), all) }, "t to connect to a, b and c")
	for _, m := range tn.Members() {
		if m.Name == tn.Name() {
			continue
		}
		ip := m.Name[2:]
		require.Equal(t, []string{"/ip4/" + ip + "/tcp/4370"}, m.ListenAddrs, m.Name)
		require.Equal(t, ip+":7946", m.GossipAddr, m.Name)
	}
	_, err = tn.Ping(ctx, b.Name)
	require.NoError(t, err)
}
