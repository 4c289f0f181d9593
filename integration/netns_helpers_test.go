//go:build linux

package integration

import (
	"bytes"
	"fmt"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
)

// netLab is the harness's lab (netlab_linux.go) addressed by node keys,
// for tests that need more than a Cluster: an embedded node in the root
// namespace, wildcard binds, a hosts file. A bridge in the root namespace
// holds the test's own address (.1 of a private /24), and each key gets a
// namespace joined to it (.2, .3, ... in the order given). The lab's
// cleanup kills whatever still runs in the namespaces and removes them,
// their links and rules, also when the test failed half-way through the
// setup.
type netLab struct {
	t      *testing.T
	l      *lab
	subnet int            // X in the lab's 10.202.X.0/24
	index  map[string]int // node key -> lab index
	cuts   map[string][][]string
}

// requireNetLab skips the test unless it can build namespaces and iptables
// rules: it needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN), ip and iptables.
func requireNetLab(t *testing.T) {
	t.Helper()
	requireLab(t)
}

// newNetLab builds a namespace for each key ("a", "b", ...) on a fresh
// bridge. Call requireNetLab first.
func newNetLab(t *testing.T, keys ...string) *netLab {
	t.Helper()
	l := &netLab{t: t, l: newLab(t, len(keys)), index: map[string]int{}, cuts: map[string][][]string{}}
	l.subnet = l.l.subnet
	for i, k := range keys {
		l.index[k] = i
	}
	return l
}

// close removes the lab now (its cleanup does it at the end of the test
// otherwise): call it before a leak check, as it also ends the lab's
// interrupt watcher.
func (l *netLab) close() {
	for _, e := range l.l.close() {
		l.t.Logf("cleanup: %v", e)
	}
}

// RootIP is the test process's address on the bridge.
func (l *netLab) RootIP() string { return l.l.RootIP() }

// Spare is an address in the lab's subnet where nothing runs.
func (l *netLab) Spare() string { return fmt.Sprintf("%s.%d.250", labNet, l.subnet) }

// IP is node key's address.
func (l *netLab) IP(key string) string { return l.l.ips[l.index[key]] }

// NS is node key's namespace.
func (l *netLab) NS(key string) string { return l.l.spaces[l.index[key]] }

// Cut drops every packet between node key and ip, with rules inside key's
// namespace (INPUT from ip, OUTPUT to ip): a silent cut, no RST, no ICMP.
func (l *netLab) Cut(key, ip string) {
	l.t.Helper()
	for _, rule := range [][]string{{"INPUT", "-s", ip, "-j", "DROP"}, {"OUTPUT", "-d", ip, "-j", "DROP"}} {
		require.NoError(l.t, l.l.nsRun(l.index[key], "", append([]string{"iptables", "-I"}, rule...)...))
		l.cuts[key] = append(l.cuts[key], rule)
	}
}

// Heal deletes the rules Cut added in key's namespace.
func (l *netLab) Heal(key string) {
	l.t.Helper()
	for len(l.cuts[key]) > 0 {
		rule := l.cuts[key][0]
		require.NoError(l.t, l.l.nsRun(l.index[key], "", append([]string{"iptables", "-D"}, rule...)...))
		l.cuts[key] = l.cuts[key][1:]
	}
}

// netnsEnv is the environment of binaries run in the lab: the cluster's
// cookie, and info logs kept in memory for failure reports.
func netnsEnv(cookie string) []string {
	return baseEnv("NODAL_COOKIE="+cookie, "GOLOG_LOG_LEVEL=info")
}

// StartNode runs "nodal start" for node key inside its namespace, named
// key@IP, listening and gossiping on its address (port 0), with --profile
// local and extra flags; it waits for the up line. c owns the process.
func (l *netLab) StartNode(c *cluster, key string, extra ...string) *nodeProc {
	l.t.Helper()
	ip := l.IP(key)
	args := append([]string{"netns", "exec", l.NS(key), binary, "start",
		"--name", key + "@" + ip, "--listen", ip + ":0", "--gossip", ip + ":0", "--profile", "local"}, extra...)
	// ip netns exec execs the binary: the process is the node itself, so
	// Kill9 kills the node.
	cmd := exec.Command("ip", args...)
	cmd.Env = netnsEnv(c.cookie)
	n, err := startCmd(c, cmd)
	require.NoError(l.t, err, "start %s in %s", key, l.NS(key))
	n.Cookie = c.cookie
	l.t.Cleanup(func() {
		if l.t.Failed() {
			l.t.Logf("stderr of %s (last lines):\n%s", n.Name, lastLines(n.stderr.String(), 40))
		}
	})
	return n
}

// CtlJSON runs "nodal ctl --json" inside node key's namespace against n
// (a node in that namespace), requires success and decodes its one JSON
// object into v.
func (l *netLab) CtlJSON(key string, n *nodeProc, v any, args ...string) {
	l.t.Helper()
	full := append([]string{"netns", "exec", l.NS(key), binary, "ctl", "--to", n.Listen, "--cookie", n.Cookie, "--json"}, args...)
	cmd := exec.Command("ip", full...)
	cmd.Env = baseEnv("GOLOG_LOG_LEVEL=error")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	require.NoError(l.t, err, "ctl %v in %s: stdout %q stderr %q", args, l.NS(key), out.String(), errb.String())
	decodeOne(l.t, out.String(), v)
}
