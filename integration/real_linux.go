//go:build linux

package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/internal/faultproxy"
)

// Ports every real-mode node binds on its namespace's address; each node
// has an address of its own, so a restart binds the same ones again.
const (
	realListenPort = 4370
	realDirectPort = 4372 // the direct connections that carry frames (p2p.Advanced.DirectPort)
	realGossipPort = 7946
)

// NewRealCluster starts n nodes as `node start` OS processes, each in a
// network namespace of its own on a bridge (n1@10.202.X.2, n2@10.202.X.3,
// ...), with --profile local, and waits until each sees all the others.
// The harness drives them with `node ctl --json` from the test's (root)
// namespace, which no cut touches, cuts links with iptables inside the
// namespaces, kills with SIGKILL and freezes with SIGSTOP. When the test
// ends, or the test process gets SIGINT or SIGTERM, it kills the
// processes and removes every namespace, link and rule it made; what a
// crashed earlier run left is removed first. It skips the test, saying
// why, unless it runs as root on Linux with ip, iptables and
// iptables-restore. opts.Services only says whether a service of the
// nodes reconnects by itself (Service.Reconnects): the nodes run what
// `node start` runs.
func NewRealCluster(t TB, n int, opts Options) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("integration: a cluster needs at least one node, not %d", n)
	}
	requireLab(t)
	opts = opts.withDefaults()
	binary := opts.Binary
	if binary == "" {
		binary = buildNode(t)
	}
	l := newLab(t, n)
	b := &realBackend{
		t: t, opts: opts, lab: l, binary: binary,
		procs: map[string]*realProc{}, index: map[string]int{}, proxies: map[[2]string]*faultproxy.Proxy{},
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("n%d@%s", i+1, l.ips[i])
		b.index[names[i]] = i
	}
	b.names = names
	for _, lk := range opts.Links {
		if lk.A < 0 || lk.A >= n || lk.B < 0 || lk.B >= n || lk.A == lk.B {
			continue // startCluster reports it
		}
		if err := b.addProxies(names[lk.A], names[lk.B]); err != nil {
			t.Fatalf("integration: proxies of link %s-%s: %v", names[lk.A], names[lk.B], err)
		}
	}
	return startCluster(t, Real, b, names, opts)
}

// buildNode builds cmd/node into the test's temporary directory.
func buildNode(t TB) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "nodal")
	cmd := exec.Command("go", "build", "-o", out, "github.com/nodal-go/nodal/cmd/node")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("integration: build the node binary: %v: %s", err, b)
	}
	return out
}

// realBackend runs nodes as OS processes in the lab's namespaces.
type realBackend struct {
	t      TB
	opts   Options
	lab    *lab
	binary string
	names  []string
	index  map[string]int

	mu      sync.Mutex
	procs   map[string]*realProc            // the current process of each node started
	proxies map[[2]string]*faultproxy.Proxy // degraded links, key sorted: side A is k[0]
}

// realProc is one `node start` process.
type realProc struct {
	name   string
	cmd    *exec.Cmd
	stderr *tailBuffer
	done   chan struct{} // closed once the process has exited and been waited for
	inc    uint64
}

func (b *realBackend) ip(name string) string { return b.lab.ips[b.index[name]] }

func (b *realBackend) listenAddr(name string) string {
	return net.JoinHostPort(b.ip(name), strconv.Itoa(realListenPort))
}

func (b *realBackend) gossipAddr(name string) string {
	return net.JoinHostPort(b.ip(name), strconv.Itoa(realGossipPort))
}

// addProxies puts a proxy on the bridge in the path of link a-b, with
// listeners in front of each node, and NAT rules in each namespace that
// send the node's traffic to the other through them. The link's first
// node (sorted) is the proxy's side A: whatever connection carries them,
// the bytes from A to B take the proxy's way AToB (one bandwidth bucket,
// one blackhole for a one-way cut), those from B to A BToA.
func (b *realBackend) addProxies(a, c string) error {
	k := pairKey(a, c)
	lp := faultproxy.New(faultproxy.Faults{}, uint64(b.opts.Seed))
	b.mu.Lock()
	b.proxies[k] = lp
	b.mu.Unlock()
	for _, side := range []struct {
		way      faultproxy.Way // of what from sends to the listener in front of to
		to, from string
	}{{faultproxy.BToA, k[0], k[1]}, {faultproxy.AToB, k[1], k[0]}} {
		for _, port := range []int{realListenPort, realDirectPort, realGossipPort} {
			udp := port == realGossipPort
			addr, err := lp.Forward(net.JoinHostPort(b.lab.RootIP(), "0"), net.JoinHostPort(b.ip(side.to), strconv.Itoa(port)), side.way, udp)
			if err != nil {
				return err
			}
			if err := b.lab.redirect(b.index[side.from], b.ip(side.to), port, addr, udp); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *realBackend) start(ctx context.Context, name string, seeds []string) error {
	ns := b.lab.spaces[b.index[name]]
	args := []string{"netns", "exec", ns, b.binary, "start", "--name", name,
		"--listen", b.listenAddr(name), "--gossip", b.gossipAddr(name), "--profile", "local",
		"--direct-port", strconv.Itoa(realDirectPort)}
	if len(seeds) > 0 {
		args = append(args, "--join", strings.Join(seeds, ","))
	}
	// ip netns exec execs the binary: the process is the node itself.
	cmd := exec.Command("ip", args...)
	cmd.Env = nodeEnv("NODAL_COOKIE="+b.opts.Cookie, "GOLOG_LOG_LEVEL=info")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &realProc{name: name, cmd: cmd, stderr: &tailBuffer{max: 1 << 20}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	up := make(chan error, 1)
	go func() { // ends when the process's stdout closes: it exited
		defer close(p.done)
		sc := bufio.NewScanner(out)
		first := true
		for sc.Scan() {
			if first {
				first = false
				up <- p.parseUp(sc.Text())
			}
		}
		if first {
			up <- errors.New("exited before its up line")
		}
		_ = cmd.Wait()
	}()
	b.t.Cleanup(func() {
		if b.t.Failed() {
			b.t.Logf("integration: stderr of %s (incarnation %d), last lines but the harness's own ctl connections:\n%s", name, p.inc, lastLines(withoutCtl(p.stderr.String()), 40))
		}
	})
	select {
	case err = <-up:
	case <-ctx.Done():
		err = fmt.Errorf("no up line: %w", ctx.Err())
	}
	if err != nil {
		_ = cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%w; stderr: %s", err, lastLines(p.stderr.String(), 10))
	}
	b.mu.Lock()
	b.procs[name] = p
	b.mu.Unlock()
	return nil
}

// parseUp reads "node NAME up listen=HOST:PORT gossip=HOST:PORT incarnation=N".
func (p *realProc) parseUp(line string) error {
	f := strings.Fields(line)
	if len(f) != 6 || f[0] != "node" || f[1] != p.name || f[2] != "up" {
		return fmt.Errorf("not an up line of %s: %q", p.name, line)
	}
	inc, err := strconv.ParseUint(strings.TrimPrefix(f[5], "incarnation="), 10, 64)
	if err != nil || inc == 0 {
		return fmt.Errorf("bad incarnation in %q", line)
	}
	p.inc = inc
	return nil
}

func (b *realBackend) proc(name string) (*realProc, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.procs[name]
	if !ok {
		return nil, ErrNotRunning
	}
	return p, nil
}

func (b *realBackend) signal(name string, sig syscall.Signal) error {
	p, err := b.proc(name)
	if err != nil {
		return err
	}
	return p.cmd.Process.Signal(sig)
}

func (b *realBackend) kill(name string) error {
	p, err := b.proc(name)
	if err != nil {
		return err
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	b.mu.Lock()
	delete(b.procs, name)
	b.mu.Unlock()
	return nil
}

func (b *realBackend) stop(ctx context.Context, name string) error {
	p, err := b.proc(name)
	if err != nil {
		return err
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-ctx.Done():
		_ = p.cmd.Process.Kill()
		<-p.done
		err = fmt.Errorf("no graceful stop: %w", ctx.Err())
	}
	b.mu.Lock()
	delete(b.procs, name)
	b.mu.Unlock()
	return err
}

func (b *realBackend) freeze(name string) error { return b.signal(name, syscall.SIGSTOP) }
func (b *realBackend) thaw(name string) error   { return b.signal(name, syscall.SIGCONT) }

// apply sets each namespace's NODAL chain to drop the packets of the
// nodes blocked towards it, and blackholes the ways of a degraded link's
// proxy that are cut (its traffic comes from the bridge's address, which
// no chain drops): both for a cut both ways, one for a one-way cut.
func (b *realBackend) apply(f faults) error {
	for i, to := range b.names {
		var from []string
		for k := range f.blocked {
			if k[1] == to {
				from = append(from, b.ip(k[0]))
			}
		}
		if err := b.lab.setDrops(i, from); err != nil {
			return err
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, lp := range b.proxies {
		lp.Blackhole(faultproxy.AToB, f.blocked[k])
		lp.Blackhole(faultproxy.BToA, f.blocked[[2]string{k[1], k[0]}])
		lf := f.links[k]
		lp.SetFaults(faultproxy.Both, faultproxy.Faults{MinDelay: lf.Latency, MaxDelay: lf.Latency, Loss: lf.Loss, Bandwidth: lf.Bandwidth})
	}
	return nil
}

// ctl runs `node ctl --json` against node name and decodes its one JSON
// object into v; a failure the node reports is an error matching the
// sentinels its text names.
func (b *realBackend) ctl(ctx context.Context, name string, v any, args ...string) error {
	full := append([]string{"ctl", "--to", b.listenAddr(name), "--cookie", b.opts.Cookie, "--json"}, args...)
	cmd := exec.CommandContext(ctx, b.binary, full...)
	cmd.Env = nodeEnv("GOLOG_LOG_LEVEL=error")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	runErr := cmd.Run()
	if runErr != nil {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(out.Bytes(), &e) == nil && e.Error != "" {
			return errorFromText(e.Error)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w: ctl %s: %w", ErrCtl, args[0], ctx.Err())
		}
		return fmt.Errorf("%w: ctl %s: %v: %s", ErrCtl, args[0], runErr, strings.TrimSpace(errb.String()))
	}
	if err := json.Unmarshal(out.Bytes(), v); err != nil {
		return fmt.Errorf("%w: ctl %s printed %q: %v", ErrCtl, args[0], out.String(), err)
	}
	return nil
}

func (b *realBackend) running(name string) error {
	_, err := b.proc(name)
	return err
}

func (b *realBackend) peers(ctx context.Context, name string) ([]string, error) {
	if err := b.running(name); err != nil {
		return nil, err
	}
	var v struct {
		Self  string   `json:"self"`
		Nodes []string `json:"nodes"`
	}
	if err := b.ctl(ctx, name, &v, "nodes"); err != nil {
		return nil, err
	}
	peers := slices.DeleteFunc(v.Nodes, func(s string) bool { return s == v.Self })
	slices.Sort(peers)
	return peers, nil
}

func (b *realBackend) incarnation(ctx context.Context, name string) (uint64, error) {
	if err := b.running(name); err != nil {
		return 0, err
	}
	var v struct {
		Incarnation uint64 `json:"incarnation"`
	}
	err := b.ctl(ctx, name, &v, "info")
	return v.Incarnation, err
}

func (b *realBackend) spawnEcho(ctx context.Context, name, register string) (nodal.Pid, error) {
	if err := b.running(name); err != nil {
		return nodal.Pid{}, err
	}
	args := []string{"spawn", "echo"}
	if register != "" {
		args = append(args, "--name", register)
	}
	var v struct {
		Pid string `json:"pid"`
	}
	if err := b.ctl(ctx, name, &v, args...); err != nil {
		return nodal.Pid{}, err
	}
	return nodal.ParsePid(v.Pid)
}

func (b *realBackend) send(ctx context.Context, from string, to nodal.Pid, text string) error {
	if err := b.running(from); err != nil {
		return err
	}
	var v struct {
		Sent bool `json:"sent"`
	}
	return b.ctl(ctx, from, &v, "send", to.String(), text)
}

func (b *realBackend) call(ctx context.Context, from string, to nodal.Pid, text string) (string, error) {
	if err := b.running(from); err != nil {
		return "", err
	}
	var v struct {
		Reply string `json:"reply"`
	}
	err := b.ctl(ctx, from, &v, "call", to.String(), text)
	return v.Reply, err
}

func (b *realBackend) rpc(ctx context.Context, from, to, fn string, args json.RawMessage) (json.RawMessage, error) {
	if err := b.running(from); err != nil {
		return nil, err
	}
	a := []string{"rpc", to, fn}
	if len(args) > 0 {
		a = append(a, string(args))
	}
	var v struct {
		Result json.RawMessage `json:"result"`
	}
	err := b.ctl(ctx, from, &v, a...)
	return v.Result, err
}

func (b *realBackend) join(ctx context.Context, name string, seeds []string) error {
	if err := b.running(name); err != nil {
		return err
	}
	var v struct {
		Joined []string `json:"joined"`
	}
	return b.ctl(ctx, name, &v, append([]string{"rejoin"}, seeds...)...)
}

func (b *realBackend) ping(ctx context.Context, from, to string) (time.Duration, error) {
	if err := b.running(from); err != nil {
		return 0, err
	}
	var v struct {
		RTTUS float64 `json:"rtt_us"`
	}
	err := b.ctl(ctx, from, &v, "ping", to)
	return time.Duration(v.RTTUS * float64(time.Microsecond)), err
}

// realWatch is a watcher process on a real node (ctl monitor).
type realWatch struct {
	b       *realBackend
	node    string
	watcher string
}

func (w *realWatch) status(ctx context.Context) (watchState, error) {
	var v struct {
		Down     bool   `json:"down"`
		Reason   string `json:"reason"`
		AtUnixMS int64  `json:"at_unix_ms"`
	}
	if err := w.b.ctl(ctx, w.node, &v, "monitored", w.watcher); err != nil {
		return watchState{}, err
	}
	if !v.Down {
		return watchState{}, nil
	}
	return watchState{down: true, reason: reasonFromText(v.Reason), at: time.UnixMilli(v.AtUnixMS)}, nil
}

func (b *realBackend) monitor(ctx context.Context, from string, target nodal.Pid) (watchBackend, error) {
	if err := b.running(from); err != nil {
		return nil, err
	}
	var v struct {
		Watcher string `json:"watcher"`
	}
	if err := b.ctl(ctx, from, &v, "monitor", target.String()); err != nil {
		return nil, err
	}
	return &realWatch{b: b, node: from, watcher: v.Watcher}, nil
}

func (b *realBackend) node(string) *nodal.Node    { return nil }
func (b *realBackend) service(string, string) any { return nil }

// close kills every node process (a frozen one too) and waits for it,
// closes the proxies and removes the lab's network.
func (b *realBackend) close() {
	b.mu.Lock()
	procs := make([]*realProc, 0, len(b.procs))
	for _, p := range b.procs {
		procs = append(procs, p)
	}
	clear(b.procs)
	proxies := b.proxies
	b.proxies = map[[2]string]*faultproxy.Proxy{}
	b.mu.Unlock()
	for _, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
	for k, lp := range proxies {
		if b.t.Failed() {
			b.t.Logf("integration: proxy of link %s-%s: %s to %s %+v; %s to %s %+v", k[0], k[1],
				k[0], k[1], lp.Stats(faultproxy.AToB), k[1], k[0], lp.Stats(faultproxy.BToA))
		}
		_ = lp.Close()
	}
	for _, e := range b.lab.close() {
		b.t.Logf("integration: cleanup: %v", e)
	}
}

// nodeEnv is the environment of the binary: the test's, without a cookie
// or log settings that would change what it does, plus extra.
func nodeEnv(extra ...string) []string {
	var env []string
	for _, e := range os.Environ() {
		if strings.HasPrefix(e, "NODAL_COOKIE=") || strings.HasPrefix(e, "GOLOG_") {
			continue
		}
		env = append(env, e)
	}
	return append(env, extra...)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// withoutCtl drops the log lines about the harness's own `node ctl`
// connections (a node up and a node down for each ctl run), which would
// fill the tail a failing test prints.
func withoutCtl(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		if !strings.Contains(line, `"node": "ctl-`) {
			b.WriteString(line)
		}
	}
	return b.String()
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
