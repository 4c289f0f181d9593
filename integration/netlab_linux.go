//go:build linux

package integration

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// A lab is the network of one real-mode cluster: a bridge in the root
// namespace holding the test's own address (.1 of a private /24 in
// 10.202.0.0/16), one network namespace per node joined to the bridge by
// a veth pair (.2, .3, ...), an iptables chain NODAL in each namespace
// (jumped to from INPUT) that holds the cuts, and the NAT rules that send
// a degraded link through its proxies. Everything it makes is named after
// the test process's pid (namespaces nodalh-PID-..., links nhPIDHEX...), so
// a later run finds and removes what a crashed one left. close removes it
// all; so does an interrupt (SIGINT, SIGTERM) of the test process.
type lab struct {
	prefix string // link name prefix: "nh" + pid in hex + "x" + seq in hex
	nsBase string // namespace name prefix: "nodalh-PID-SEQ-"
	subnet int    // X in 10.202.X.0/24
	bridge string
	spaces []string // per node index
	hosts  []string // host veth ends, per node index
	ips    []string // per node index

	mu        sync.Mutex
	rootRules [][]string // iptables rules added in the root namespace
	chains    []string   // current NODAL chain contents per node index ("" = empty)
	closed    bool
}

const (
	labNSPrefix   = "nodalh-"
	labLinkPrefix = "nh"
	labNet        = "10.202"
)

// requireLab skips the test unless it can build namespaces and iptables
// rules: it needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN), ip, iptables and
// iptables-restore.
func requireLab(t TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("integration: real mode needs root: it creates network namespaces and iptables rules (run the in-process mode, or as root)")
	}
	for _, tool := range []string{"ip", "iptables", "iptables-restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("integration: real mode needs ip and iptables: %s not found (apt-get install -y iproute2 iptables)", tool)
		}
	}
}

var (
	labSeqMu sync.Mutex
	labSeq   int
)

// newLab builds a namespace per node. It first removes what earlier test
// processes, now dead, left behind. Call requireLab first; it skips the
// test if the namespaces cannot be made (root without the capabilities).
func newLab(t TB, nodes int) *lab {
	t.Helper()
	cleanLeftovers(t)
	pid := os.Getpid()
	labSeqMu.Lock()
	labSeq++
	seq := labSeq
	labSeqMu.Unlock()
	l := &lab{
		prefix: fmt.Sprintf("%s%xx%x", labLinkPrefix, pid, seq),
		nsBase: fmt.Sprintf("%s%d-%d-", labNSPrefix, pid, seq),
		chains: make([]string, nodes),
	}
	l.bridge = l.prefix + "b"
	var err error
	if l.subnet, err = freeLabSubnet(pid + seq); err != nil {
		t.Fatalf("integration: %v", err)
	}
	registerLab(l)
	t.Cleanup(func() {
		for _, e := range l.close() {
			t.Logf("integration: cleanup: %v", e)
		}
	})

	// The first namespace doubles as the capability probe: a root user
	// without CAP_SYS_ADMIN (an unprivileged container) cannot make one.
	first := l.nsBase + "1"
	if out, err := exec.Command("ip", "netns", "add", first).CombinedOutput(); err != nil {
		t.Skipf("integration: real mode needs root with CAP_SYS_ADMIN and CAP_NET_ADMIN: ip netns add: %v: %s", err, bytes.TrimSpace(out))
	}
	l.addSpace(first)
	if out, err := exec.Command("ip", "netns", "exec", first, "iptables", "-S").CombinedOutput(); err != nil {
		t.Skipf("integration: real mode needs a working iptables: iptables -S in a namespace: %v: %s", err, bytes.TrimSpace(out))
	}
	must := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("integration: %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
	}
	must("ip", "link", "add", l.bridge, "type", "bridge")
	must("ip", "addr", "add", l.RootIP()+"/24", "dev", l.bridge)
	must("ip", "link", "set", l.bridge, "up")
	// With br_netfilter loaded, frames between two ports of the bridge go
	// through the root namespace's FORWARD chain; let ours through
	// whatever its policy is.
	if err := l.rootRule("FORWARD", "-i", l.bridge, "-o", l.bridge, "-j", "ACCEPT"); err != nil {
		t.Fatalf("integration: %v", err)
	}
	for i := range nodes {
		ns := l.nsBase + strconv.Itoa(i+1)
		if i > 0 {
			must("ip", "netns", "add", ns)
			l.addSpace(ns)
		}
		host := fmt.Sprintf("%sv%x", l.prefix, i+1)
		peer := host + "p"
		must("ip", "link", "add", host, "type", "veth", "peer", "name", peer)
		l.mu.Lock()
		l.hosts = append(l.hosts, host)
		l.mu.Unlock()
		must("ip", "link", "set", peer, "netns", ns)
		must("ip", "link", "set", host, "master", l.bridge, "up")
		ip := fmt.Sprintf("%s.%d.%d", labNet, l.subnet, i+2)
		l.ips = append(l.ips, ip)
		must("ip", "-n", ns, "addr", "add", ip+"/24", "dev", peer)
		must("ip", "-n", ns, "link", "set", "lo", "up")
		must("ip", "-n", ns, "link", "set", peer, "up")
		must("ip", "netns", "exec", ns, "iptables", "-N", "NODAL")
		must("ip", "netns", "exec", ns, "iptables", "-I", "INPUT", "-j", "NODAL")
	}
	return l
}

func (l *lab) addSpace(ns string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.spaces = append(l.spaces, ns)
}

// RootIP is the test process's address on the bridge.
func (l *lab) RootIP() string { return fmt.Sprintf("%s.%d.1", labNet, l.subnet) }

// freeLabSubnet picks X for 10.202.X.0/24 from seed, skipping subnets that
// already appear in this host's addresses or routes.
func freeLabSubnet(seed int) (int, error) {
	addrs, err := exec.Command("ip", "-4", "-o", "addr").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("ip addr: %v: %s", err, addrs)
	}
	routes, err := exec.Command("ip", "-4", "route").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("ip route: %v: %s", err, routes)
	}
	used := string(addrs) + string(routes)
	for i := range 240 {
		x := 8 + (seed+i)%240
		if !strings.Contains(used, fmt.Sprintf("%s.%d.", labNet, x)) {
			return x, nil
		}
	}
	return 0, errors.New("no free " + labNet + ".X.0/24 subnet")
}

// rootRule inserts an iptables rule in the root namespace; close deletes
// it.
func (l *lab) rootRule(chain string, spec ...string) error {
	args := append([]string{"-I", chain}, spec...)
	if out, err := exec.Command("iptables", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("iptables %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	l.mu.Lock()
	l.rootRules = append(l.rootRules, append([]string{chain}, spec...))
	l.mu.Unlock()
	return nil
}

// nsRun runs a command inside node i's namespace.
func (l *lab) nsRun(i int, stdin string, args ...string) error {
	cmd := exec.Command("ip", append([]string{"netns", "exec", l.spaces[i]}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s in %s: %v: %s", strings.Join(args, " "), l.spaces[i], err, bytes.TrimSpace(out))
	}
	return nil
}

// setDrops makes node i's NODAL chain drop every packet from the sources
// given (addresses of other nodes), replacing what it held, in one
// iptables-restore (a declared chain is flushed first).
func (l *lab) setDrops(i int, sources []string) error {
	slices.Sort(sources)
	var b strings.Builder
	b.WriteString("*filter\n:NODAL - [0:0]\n")
	for _, s := range sources {
		fmt.Fprintf(&b, "-A NODAL -s %s/32 -j DROP\n", s)
	}
	b.WriteString("COMMIT\n")
	rules := b.String()
	l.mu.Lock()
	same := l.chains[i] == rules
	l.mu.Unlock()
	if same {
		return nil
	}
	if err := l.nsRun(i, rules, "iptables-restore", "--noflush"); err != nil {
		return err
	}
	l.mu.Lock()
	l.chains[i] = rules
	l.mu.Unlock()
	return nil
}

// redirect makes node i's own traffic to dst:port (TCP, and UDP too when
// udp) go to to instead (a proxy on the bridge), with a NAT rule in its
// namespace.
func (l *lab) redirect(i int, dst string, port int, to string, udp bool) error {
	protos := []string{"tcp"}
	if udp {
		protos = append(protos, "udp")
	}
	for _, p := range protos {
		if err := l.nsRun(i, "", "iptables", "-t", "nat", "-A", "OUTPUT", "-d", dst+"/32", "-p", p,
			"--dport", strconv.Itoa(port), "-j", "DNAT", "--to-destination", to); err != nil {
			return err
		}
	}
	return nil
}

// close undoes everything (teardown) and stops watching for interrupts
// once no lab is left. It returns what failed.
func (l *lab) close() []error {
	errs := l.teardown()
	unregisterLab(l)
	return errs
}

// teardown undoes everything, best effort, in reverse: processes left in
// the namespaces, the namespaces (which takes their veth ends, rules and
// NAT with them), host veth ends, the root rules and the bridge. It
// returns what failed; a second call does nothing.
func (l *lab) teardown() []error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	spaces, hosts, rules := l.spaces, l.hosts, l.rootRules
	l.mu.Unlock()
	var errs []error
	run := func(args ...string) {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out)))
		}
	}
	for _, ns := range spaces {
		killInNamespace(ns)
		run("ip", "netns", "del", ns)
	}
	for _, h := range hosts {
		// Usually gone with its namespace peer already.
		if exec.Command("ip", "link", "show", h).Run() == nil {
			run("ip", "link", "del", h)
		}
	}
	for _, r := range rules {
		run(append([]string{"iptables", "-D"}, r...)...)
	}
	if exec.Command("ip", "link", "show", l.bridge).Run() == nil {
		run("ip", "link", "del", l.bridge)
	}
	return errs
}

// killInNamespace SIGKILLs every process in namespace ns (only processes
// the harness started live in its namespaces).
func killInNamespace(ns string) {
	out, _ := exec.Command("ip", "netns", "pids", ns).Output()
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// processAlive reports whether pid is a live process.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

var (
	leftoverNS   = regexp.MustCompile(`^` + labNSPrefix + `(\d+)-\d+-\d+$`)
	leftoverLink = regexp.MustCompile(`^` + labLinkPrefix + `([0-9a-f]+)x[0-9a-f]+(b|v[0-9a-f]+p?)$`)
)

// cleanLeftovers removes the namespaces, links and root rules of earlier
// test processes that died without cleaning up (a crash, a -timeout
// panic, kill -9): those named after a pid that no longer runs.
func cleanLeftovers(t TB) {
	t.Helper()
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		m := leftoverNS.FindStringSubmatch(f[0])
		if m == nil {
			continue
		}
		if pid, _ := strconv.Atoi(m[1]); processAlive(pid) {
			continue
		}
		killInNamespace(f[0])
		if out, err := exec.Command("ip", "netns", "del", f[0]).CombinedOutput(); err == nil {
			t.Logf("integration: removed namespace %s left by an earlier run", f[0])
		} else {
			t.Logf("integration: remove leftover namespace %s: %v: %s", f[0], err, bytes.TrimSpace(out))
		}
	}
	deadLink := func(name string) bool {
		m := leftoverLink.FindStringSubmatch(name)
		if m == nil {
			return false
		}
		pid, err := strconv.ParseInt(m[1], 16, 64)
		return err == nil && !processAlive(int(pid))
	}
	out, _ = exec.Command("iptables", "-S", "FORWARD").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[0] != "-A" {
			continue
		}
		if i := slices.Index(f, "-i"); i < 0 || i+1 >= len(f) || !deadLink(f[i+1]) {
			continue
		}
		f[0] = "-D"
		if out, err := exec.Command("iptables", f...).CombinedOutput(); err != nil {
			t.Logf("integration: remove leftover rule %s: %v: %s", line, err, bytes.TrimSpace(out))
		}
	}
	out, _ = exec.Command("ip", "-o", "link", "show").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if !deadLink(name) {
			continue
		}
		if out, err := exec.Command("ip", "link", "del", name).CombinedOutput(); err == nil {
			t.Logf("integration: removed link %s left by an earlier run", name)
		} else if exec.Command("ip", "link", "show", name).Run() == nil {
			t.Logf("integration: remove leftover link %s: %v: %s", name, err, bytes.TrimSpace(out))
		}
	}
}

// The labs open in this process, cleaned up if the process is
// interrupted; the signal watcher runs while there is one.
var (
	labsMu   sync.Mutex
	labs     = map[*lab]bool{}
	sigStop  chan struct{}
	sigEnded chan struct{}
)

func registerLab(l *lab) {
	labsMu.Lock()
	defer labsMu.Unlock()
	labs[l] = true
	if len(labs) > 1 {
		return
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	stop, ended := make(chan struct{}), make(chan struct{})
	sigStop, sigEnded = stop, ended
	go func() { // ends when the last lab closes (unregisterLab) or on a signal
		defer close(ended)
		defer signal.Stop(sigs)
		select {
		case <-stop:
		case s := <-sigs:
			labsMu.Lock()
			open := make([]*lab, 0, len(labs))
			for l := range labs {
				open = append(open, l)
			}
			labsMu.Unlock()
			for _, l := range open {
				for _, e := range l.teardown() {
					fmt.Fprintln(os.Stderr, "integration: cleanup:", e)
				}
			}
			fmt.Fprintf(os.Stderr, "integration: %v: removed the test's namespaces, links and rules\n", s)
			os.Exit(1)
		}
	}()
}

func unregisterLab(l *lab) {
	labsMu.Lock()
	delete(labs, l)
	if len(labs) > 0 || sigStop == nil {
		labsMu.Unlock()
		return
	}
	stop, ended := sigStop, sigEnded
	sigStop, sigEnded = nil, nil
	labsMu.Unlock()
	close(stop)
	<-ended
}
