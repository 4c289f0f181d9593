package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// netLab is a small network built for one test: a bridge in the root
// namespace holding the test's own address (.1 of a private /24), and one
// network namespace per node, each joined to the bridge by a veth pair
// (.2, .3, ... in the order given). Its cleanup, registered with
// t.Cleanup, kills whatever still runs in the namespaces, deletes the
// namespaces, the links and every iptables rule the lab added, even when
// the test failed half-way through the setup.
type netLab struct {
	t      *testing.T
	prefix string // interface name prefix: "nd" + pid, at most 9 characters
	subnet int    // X in 10.201.X.0/24
	bridge string
	spaces map[string]string // node key -> namespace name
	hosts  map[string]string // node key -> host veth end (in the root namespace)
	ips    map[string]string // node key -> address
	keys   []string          // node keys in creation order

	rootRules [][]string // iptables rules added in the root namespace
	cuts      map[string][][]string
}

// requireNetLab skips the test unless it can build namespaces and iptables
// rules: it needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN), ip and iptables.
func requireNetLab(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and iptables rules")
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs root with ip and iptables: %s not found (apt-get install -y iproute2 iptables)", tool)
		}
	}
}

// newNetLab builds a namespace for each key ("a", "b", ...) on a fresh
// bridge. Call requireNetLab first.
func newNetLab(t *testing.T, keys ...string) *netLab {
	t.Helper()
	pid := os.Getpid()
	l := &netLab{
		t:      t,
		prefix: fmt.Sprintf("nd%d", pid%10_000_000),
		spaces: map[string]string{},
		hosts:  map[string]string{},
		ips:    map[string]string{},
		cuts:   map[string][][]string{},
	}
	l.bridge = l.prefix + "br"
	l.subnet = freeSubnet(t, pid)
	t.Cleanup(l.close)

	// The first namespace doubles as the capability probe: a root user
	// without CAP_SYS_ADMIN (an unprivileged container) cannot make one.
	first := fmt.Sprintf("nodal-%d-%s", pid, keys[0])
	if out, err := exec.Command("ip", "netns", "add", first).CombinedOutput(); err != nil {
		t.Skipf("needs root with CAP_SYS_ADMIN and CAP_NET_ADMIN: ip netns add: %v: %s", err, strings.TrimSpace(string(out)))
	}
	l.spaces[keys[0]] = first
	l.keys = append(l.keys, keys[0])
	if out, err := exec.Command("ip", "netns", "exec", first, "iptables", "-S").CombinedOutput(); err != nil {
		t.Skipf("needs root with a working iptables: iptables -S in a namespace: %v: %s", err, strings.TrimSpace(string(out)))
	}

	l.must("ip", "link", "add", l.bridge, "type", "bridge")
	l.must("ip", "addr", "add", l.RootIP()+"/24", "dev", l.bridge)
	l.must("ip", "link", "set", l.bridge, "up")
	// With br_netfilter loaded, frames between two ports of the bridge go
	// through the root namespace's FORWARD chain; let ours through
	// whatever its policy is.
	l.rootRule("FORWARD", "-i", l.bridge, "-o", l.bridge, "-j", "ACCEPT")

	for i, key := range keys {
		ns := fmt.Sprintf("nodal-%d-%s", pid, key)
		if i > 0 {
			l.must("ip", "netns", "add", ns)
			l.spaces[key] = ns
			l.keys = append(l.keys, key)
		}
		host := fmt.Sprintf("%s%s", l.prefix, key)
		peer := host + "p"
		l.must("ip", "link", "add", host, "type", "veth", "peer", "name", peer)
		l.hosts[key] = host
		l.must("ip", "link", "set", peer, "netns", ns)
		l.must("ip", "link", "set", host, "master", l.bridge, "up")
		ip := fmt.Sprintf("10.201.%d.%d", l.subnet, i+2)
		l.ips[key] = ip
		l.must("ip", "-n", ns, "addr", "add", ip+"/24", "dev", peer)
		l.must("ip", "-n", ns, "link", "set", "lo", "up")
		l.must("ip", "-n", ns, "link", "set", peer, "up")
	}
	return l
}

// freeSubnet picks X for 10.201.X.0/24 from pid, skipping subnets that
// already appear in this host's addresses or routes.
func freeSubnet(t *testing.T, pid int) int {
	t.Helper()
	addrs, err := exec.Command("ip", "-4", "-o", "addr").CombinedOutput()
	require.NoError(t, err, "ip addr: %s", addrs)
	routes, err := exec.Command("ip", "-4", "route").CombinedOutput()
	require.NoError(t, err, "ip route: %s", routes)
	used := string(addrs) + string(routes)
	for i := range 224 {
		x := 16 + (pid+i)%224
		if !strings.Contains(used, fmt.Sprintf("10.201.%d.", x)) {
			return x
		}
	}
	t.Fatal("no free 10.201.X.0/24 subnet")
	return 0
}

// RootIP is the test process's address on the bridge.
func (l *netLab) RootIP() string { return fmt.Sprintf("10.201.%d.1", l.subnet) }

// IP is node key's address.
func (l *netLab) IP(key string) string { return l.ips[key] }

// NS is node key's namespace.
func (l *netLab) NS(key string) string { return l.spaces[key] }

// must runs a setup command and fails the test if it fails.
func (l *netLab) must(args ...string) {
	l.t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	require.NoError(l.t, err, "%s: %s", strings.Join(args, " "), out)
}

// rootRule inserts an iptables rule in the root namespace; close deletes it.
func (l *netLab) rootRule(chain string, spec ...string) {
	l.t.Helper()
	l.must(append([]string{"iptables", "-I", chain}, spec...)...)
	l.rootRules = append(l.rootRules, append([]string{chain}, spec...))
}

// Cut drops every packet between node key and ip, with rules inside key's
// namespace (INPUT from ip, OUTPUT to ip): a silent cut, no RST, no ICMP.
func (l *netLab) Cut(key, ip string) {
	l.t.Helper()
	ns := l.NS(key)
	for _, rule := range [][]string{{"INPUT", "-s", ip, "-j", "DROP"}, {"OUTPUT", "-d", ip, "-j", "DROP"}} {
		l.must(append([]string{"ip", "netns", "exec", ns, "iptables", "-I"}, rule...)...)
		l.cuts[key] = append(l.cuts[key], rule)
	}
}

// Heal deletes the rules Cut added in key's namespace.
func (l *netLab) Heal(key string) {
	l.t.Helper()
	for len(l.cuts[key]) > 0 {
		rule := l.cuts[key][0]
		l.must(append([]string{"ip", "netns", "exec", l.NS(key), "iptables", "-D"}, rule...)...)
		l.cuts[key] = l.cuts[key][1:]
	}
}

// close undoes everything, best effort, in reverse: rules, processes left
// in the namespaces, namespaces (which takes their veth ends and so the
// pairs), host veth ends and the bridge.
func (l *netLab) close() {
	run := func(args ...string) {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			l.t.Logf("cleanup: %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
	}
	for key, rules := range l.cuts {
		for _, rule := range rules {
			run(append([]string{"ip", "netns", "exec", l.NS(key), "iptables", "-D"}, rule...)...)
		}
	}
	l.cuts = nil
	for _, rule := range l.rootRules {
		run(append([]string{"iptables", "-D"}, rule...)...)
	}
	l.rootRules = nil
	for _, key := range l.keys {
		ns := l.spaces[key]
		// Only processes this test started live in its namespaces.
		out, _ := exec.Command("ip", "netns", "pids", ns).Output()
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil {
				if p, err := os.FindProcess(pid); err == nil {
					_ = p.Kill()
				}
			}
		}
		run("ip", "netns", "del", ns)
	}
	for _, key := range l.keys {
		if host := l.hosts[key]; host != "" {
			// Usually gone with its namespace peer already.
			if exec.Command("ip", "link", "show", host).Run() == nil {
				run("ip", "link", "del", host)
			}
		}
	}
	if exec.Command("ip", "link", "show", l.bridge).Run() == nil {
		run("ip", "link", "del", l.bridge)
	}
	l.keys = nil
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
