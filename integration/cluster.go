package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nodal-go/nodal"
)

// Mode is how a Cluster runs its nodes.
type Mode int

const (
	// InProcess runs every node in the test process on a p2ptest network:
	// no privileges, fast, and under testing/synctest on a fake clock.
	InProcess Mode = iota + 1
	// Real runs every node as a `node start` OS process in a network
	// namespace of its own, cuts links with iptables and needs root.
	Real
)

// String returns "in-process" or "real".
func (m Mode) String() string {
	switch m {
	case InProcess:
		return "in-process"
	case Real:
		return "real"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Direction says which way a Cut drops packets.
type Direction int

const (
	// BothWays drops every packet between the two nodes.
	BothWays Direction = iota + 1
	// OneWay drops the packets from the first node to the second only:
	// the first hears the second, the second does not hear the first.
	OneWay
)

// LinkFaults degrade one link (both directions) without cutting it.
type LinkFaults struct {
	// Latency is added to each direction: a round trip between the two
	// nodes takes 2*Latency more.
	Latency time.Duration
	// Loss is the probability that a gossip (UDP) packet is lost, each
	// way; in real mode a TCP chunk is then held back as a retransmission
	// would (200 ms). In-process it applies to gossip only.
	Loss float64
	// Bandwidth is the most bytes per second the link carries each way
	// (everything between the two nodes: connections and gossip); 0 for no
	// limit. A token bucket of 1/16 s of it (at least 1,500 bytes) lets
	// bursts through; a sender faster than the link is held back, and
	// gossip packets that would queue more than 250 ms are dropped. Real
	// mode: internal/faultproxy; in-process: p2ptest.SetBandwidth, on the
	// bubble's fake clock.
	Bandwidth int
}

// Link names the two nodes (indexes into Names) of a degraded link.
type Link struct {
	A, B   int
	Faults LinkFaults
}

// Options configure a Cluster; the zero value is valid.
type Options struct {
	// Cookie is the cluster's cookie; default "nodal-integration".
	Cookie string
	// Services are attached to every node at each start (in-process); see
	// Service. Nil means DefaultServices.
	Services []Service
	// Timeout bounds every wait of the harness (a node's start, Eventually,
	// WaitMesh, an operation without a deadline of its own). Default 60 s
	// (fake time in a synctest bubble; real time in real mode).
	Timeout time.Duration
	// Seed seeds the in-process network's losses and keys, and Chaos.
	// Default 1.
	Seed int64
	// Links are degraded from the start (latency, loss, bandwidth);
	// SetLinkFaults changes them later. In real mode each such link runs
	// through a user-space proxy (internal/faultproxy) with a listener in
	// front of each of its nodes, so only the links named here can be
	// degraded.
	Links []Link
	// Binary is the path of a built cmd/node for real mode; empty builds
	// it (go build github.com/nodal-go/nodal/cmd/node) into the test's
	// temporary directory.
	Binary string
}

// Cluster is a set of named nodes under test and the faults between them,
// with the same methods in both modes, so a test body written once runs
// in-process (NewCluster) and for real (NewRealCluster). Nodes are named
// n1@IP, n2@IP, ...; Names lists them. Methods that change the cluster
// (faults, kills, restarts) fail the test when the harness cannot do
// them; methods that ask a node for something return an error, an
// *OpError, since a failure may be what the test checks. A Cluster is
// safe for concurrent use. It is closed (every node stopped, every
// namespace, bridge and rule removed) when the test ends.
type Cluster struct {
	t     TB
	mode  Mode
	opts  Options
	b     backend
	names []string

	ops     chan struct{} // the ops lock (lock, unlock)
	mu      sync.Mutex
	blocked map[[2]string]bool // directed: {from, to}
	frozen  map[string]bool
	down    map[string]bool // killed or stopped, not started since
	links   map[[2]string]LinkFaults

	closeOnce sync.Once
}

// backend is one mode's way of running nodes; Cluster checks names and
// state before it calls one.
type backend interface {
	start(ctx context.Context, name string, seeds []string) error
	kill(name string) error
	stop(ctx context.Context, name string) error
	freeze(name string) error
	thaw(name string) error
	// apply makes the network match f (cuts, freezes, link faults).
	apply(f faults) error
	gossipAddr(name string) string
	peers(ctx context.Context, name string) ([]string, error)
	incarnation(ctx context.Context, name string) (uint64, error)
	spawnEcho(ctx context.Context, name, register string) (nodal.Pid, error)
	send(ctx context.Context, from string, to nodal.Pid, text string) error
	call(ctx context.Context, from string, to nodal.Pid, text string) (string, error)
	monitor(ctx context.Context, from string, target nodal.Pid) (watchBackend, error)
	rpc(ctx context.Context, from, to, fn string, args json.RawMessage) (json.RawMessage, error)
	join(ctx context.Context, name string, seeds []string) error
	ping(ctx context.Context, from, to string) (time.Duration, error)
	node(name string) *nodal.Node
	service(name, service string) any
	close()
}

// settler is a backend with work to finish after apply, without locks.
type settler interface{ settle() }

// faults is what the network should do now.
type faults struct {
	blocked map[[2]string]bool
	frozen  map[string]bool
	links   map[[2]string]LinkFaults
}

// watchBackend reads what a monitor saw.
type watchBackend interface {
	status(ctx context.Context) (watchState, error)
}

type watchState struct {
	down   bool
	reason error
	at     time.Time
}

func (o Options) withDefaults() Options {
	if o.Cookie == "" {
		o.Cookie = "nodal-integration"
	}
	if o.Services == nil {
		o.Services = DefaultServices()
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	return o
}

// startCluster starts n nodes named by name(i) on b: the first alone, each
// next one joining those before it, then waits for the full mesh.
func startCluster(t TB, mode Mode, b backend, names []string, opts Options) *Cluster {
	t.Helper()
	c := &Cluster{
		t: t, mode: mode, opts: opts, b: b, names: names, ops: make(chan struct{}, 1),
		blocked: map[[2]string]bool{}, frozen: map[string]bool{}, down: map[string]bool{}, links: map[[2]string]LinkFaults{},
	}
	for _, l := range opts.Links {
		if l.A < 0 || l.A >= len(names) || l.B < 0 || l.B >= len(names) || l.A == l.B {
			t.Fatalf("integration: bad link %d-%d in a cluster of %d", l.A, l.B, len(names))
		}
		c.links[pairKey(names[l.A], names[l.B])] = l.Faults
	}
	t.Cleanup(c.Close)
	if err := b.apply(c.faultsLocked()); err != nil {
		t.Fatalf("integration: set up the network: %v", err)
	}
	for i, name := range names {
		var seeds []string
		for _, prev := range names[:i] {
			seeds = append(seeds, b.gossipAddr(prev))
		}
		ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
		err := b.start(ctx, name, seeds)
		cancel()
		if err != nil {
			t.Fatalf("integration: start %s: %v", name, err)
		}
	}
	// Link faults and one-way cuts in-process act on the links of running
	// nodes.
	c.mu.Lock()
	f := c.faultsLocked()
	c.mu.Unlock()
	if err := b.apply(f); err != nil {
		t.Fatalf("integration: set up the network: %v", err)
	}
	d := c.WaitMesh()
	c.Logf("cluster of %d nodes (%s) up and meshed in %v", len(names), mode, d.Round(time.Millisecond))
	return c
}

// Close stops every node and removes what the harness made (in real
// mode: processes, namespaces, links, rules, proxies). It runs when the
// test ends; call it earlier in a test that checks for leaked goroutines.
// It is idempotent.
func (c *Cluster) Close() {
	c.closeOnce.Do(c.b.close)
}

// Mode says how the nodes run.
func (c *Cluster) Mode() Mode { return c.mode }

// Names returns the node names, n1@IP first.
func (c *Cluster) Names() []string { return slices.Clone(c.names) }

// Name returns the name of node i (0-based).
func (c *Cluster) Name(i int) string { return c.names[i] }

// Logf logs through the test, prefixed with the mode.
func (c *Cluster) Logf(format string, args ...any) {
	c.t.Helper()
	c.t.Logf("["+c.mode.String()+"] "+format, args...)
}

// Node returns the *nodal.Node running as name in-process, for what the
// common methods do not cover; nil in real mode or for a node not running.
func (c *Cluster) Node(name string) *nodal.Node { return c.b.node(name) }

// Service returns what Service.Attach returned for service on node name's
// current start (in-process); nil in real mode.
func (c *Cluster) Service(name, service string) any { return c.b.service(name, service) }

func (c *Cluster) check(names ...string) {
	c.t.Helper()
	for _, n := range names {
		if !slices.Contains(c.names, n) {
			c.t.Fatalf("%v: %q (nodes: %v)", ErrUnknownNode, n, c.names)
		}
	}
}

// faultsLocked copies the fault state for backend.apply. Callers hold mu.
func (c *Cluster) faultsLocked() faults {
	f := faults{blocked: map[[2]string]bool{}, frozen: map[string]bool{}, links: map[[2]string]LinkFaults{}}
	for k, v := range c.blocked {
		f.blocked[k] = v
	}
	for k, v := range c.frozen {
		f.frozen[k] = v
	}
	for k, v := range c.links {
		f.links[k] = v
	}
	return f
}

// lock and unlock serialise the fault and lifecycle methods, which hold
// the lock across the backend's work (a node's stop, iptables). It is a
// channel, not a mutex, so that in a synctest bubble a goroutine waiting
// for it is durably blocked and the fake clock goes on; mu only guards the
// state for a moment and is never held across the backend's work.
func (c *Cluster) lock()   { c.ops <- struct{}{} }
func (c *Cluster) unlock() { <-c.ops }

// update changes the fault state with edit, under mu.
func (c *Cluster) update(edit func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	edit()
}

// apply makes the network match the fault state and logs what. Callers
// hold the ops lock.
func (c *Cluster) apply(what string) {
	c.t.Helper()
	c.mu.Lock()
	f := c.faultsLocked()
	c.mu.Unlock()
	if err := c.b.apply(f); err != nil {
		c.t.Fatalf("integration: %s: %v", what, err)
	}
	if s, ok := c.b.(settler); ok {
		s.settle()
	}
	c.Logf("%s", what)
}

// Partition splits the cluster into groups: every node of one group is
// cut, both ways, from every node of the others. Nodes named in no group
// form one more group together. Cuts add to those already made; Heal
// lifts them all.
func (c *Cluster) Partition(groups ...[]string) {
	c.t.Helper()
	group := map[string]int{}
	for i, g := range groups {
		c.check(g...)
		for _, n := range g {
			group[n] = i + 1
		}
	}
	c.lock()
	defer c.unlock()
	c.update(func() {
		for _, a := range c.names {
			for _, b := range c.names {
				if a != b && group[a] != group[b] {
					c.blocked[[2]string{a, b}] = true
				}
			}
		}
	})
	var parts []string
	for _, g := range groups {
		parts = append(parts, strings.Join(g, " "))
	}
	c.apply("partition " + strings.Join(parts, " | "))
}

// Isolate cuts node from every other node, both ways.
func (c *Cluster) Isolate(node string) {
	c.t.Helper()
	c.check(node)
	c.lock()
	defer c.unlock()
	c.update(func() {
		for _, o := range c.names {
			if o != node {
				c.blocked[[2]string{node, o}] = true
				c.blocked[[2]string{o, node}] = true
			}
		}
	})
	c.apply("isolate " + node)
}

// Cut cuts the link between a and b: both ways, or with OneWay only the
// packets from a to b (a still hears b; b no longer hears a). A Direction
// other than OneWay is BothWays.
func (c *Cluster) Cut(a, b string, dir Direction) {
	c.t.Helper()
	c.check(a, b)
	if a == b {
		c.t.Fatalf("integration: cut %s from itself", a)
	}
	c.lock()
	defer c.unlock()
	what := "cut " + a + " -> " + b
	if dir != OneWay {
		what = "cut " + a + " <-> " + b
	}
	c.update(func() {
		c.blocked[[2]string{a, b}] = true
		if dir != OneWay {
			c.blocked[[2]string{b, a}] = true
		}
	})
	c.apply(what)
}

// Heal lifts every cut. Unless a service reconnects the cluster by itself
// (Service.Reconnects, heal/), every running node then joins the others,
// as heal/ would: a healed network restores no membership on its own.
func (c *Cluster) Heal() {
	c.t.Helper()
	c.lock()
	defer c.unlock()
	c.update(func() { clear(c.blocked) })
	c.apply("heal")
	c.reconnect()
}

// SetLinkFaults changes the faults of a link named in Options.Links; a
// zero LinkFaults makes it clean again.
func (c *Cluster) SetLinkFaults(a, b string, f LinkFaults) {
	c.t.Helper()
	c.check(a, b)
	k := pairKey(a, b)
	c.lock()
	defer c.unlock()
	c.mu.Lock()
	_, ok := c.links[k]
	if ok {
		c.links[k] = f
	}
	c.mu.Unlock()
	if !ok {
		c.t.Fatalf("integration: link %s-%s is not in Options.Links", a, b)
	}
	c.apply(fmt.Sprintf("link %s-%s: latency %v, loss %v, bandwidth %d B/s", a, b, f.Latency, f.Loss, f.Bandwidth))
}

// reconnect joins every running node to the others' gossip addresses,
// unless a service does that by itself. Callers hold the ops lock.
func (c *Cluster) reconnect() {
	c.t.Helper()
	if reconnects(c.opts.Services) {
		return
	}
	c.mu.Lock()
	seedsOf := map[string][]string{}
	var live []string
	for _, n := range c.names {
		if c.down[n] || c.frozen[n] {
			continue
		}
		live = append(live, n)
		for _, o := range c.names {
			if o != n && c.reachableLocked(n, o) {
				seedsOf[n] = append(seedsOf[n], c.b.gossipAddr(o))
			}
		}
	}
	c.mu.Unlock()
	for _, n := range live {
		seeds := seedsOf[n]
		if len(seeds) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
		if err := c.b.join(ctx, n, seeds); err != nil {
			c.Logf("rejoin %s: %v", n, err)
		}
		cancel()
	}
}

// reachableLocked reports whether o runs, is not frozen, and no cut
// stands between a and o either way. Callers hold mu.
func (c *Cluster) reachableLocked(a, o string) bool {
	return !c.down[o] && !c.frozen[o] && !c.blocked[[2]string{a, o}] && !c.blocked[[2]string{o, a}]
}

// state reports whether node is down (killed or stopped) and frozen.
func (c *Cluster) state(node string) (down, frozen bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.down[node], c.frozen[node]
}

// Kill kills node at once (SIGKILL in real mode): no goodbye, its
// connections drop, the others' failure detection notices.
func (c *Cluster) Kill(node string) {
	c.t.Helper()
	c.check(node)
	c.lock()
	defer c.unlock()
	c.kill(node)
}

// kill is Kill with the ops lock held.
func (c *Cluster) kill(node string) {
	c.t.Helper()
	if down, _ := c.state(node); down {
		c.t.Fatalf("integration: kill %s: %v", node, ErrNotRunning)
	}
	// Down first: questions to the node fail from now on instead of
	// reaching a node being stopped.
	c.update(func() { c.down[node] = true; delete(c.frozen, node) })
	if err := c.b.kill(node); err != nil {
		c.t.Fatalf("integration: kill %s: %v", node, err)
	}
	c.apply("kill " + node)
}

// Stop stops node gracefully (SIGTERM in real mode): it leaves the
// cluster.
func (c *Cluster) Stop(node string) {
	c.t.Helper()
	c.check(node)
	c.lock()
	defer c.unlock()
	if down, frozen := c.state(node); down || frozen {
		c.t.Fatalf("integration: stop %s: %v", node, ErrNotRunning)
	}
	c.update(func() { c.down[node] = true })
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
	defer cancel()
	if err := c.b.stop(ctx, node); err != nil {
		c.t.Fatalf("integration: stop %s: %v", node, err)
	}
	c.Logf("stop %s", node)
}

// Restart starts node again with a new incarnation, joining the running
// nodes it can reach; a running node is killed first. It returns once the
// node is up (not yet meshed: see WaitMesh).
func (c *Cluster) Restart(node string) {
	c.t.Helper()
	c.check(node)
	c.lock()
	defer c.unlock()
	if down, _ := c.state(node); !down {
		c.kill(node)
	}
	// Seeds are the running nodes it can reach; with none it starts
	// alone, and Heal joins it to the others.
	var seeds []string
	c.mu.Lock()
	for _, o := range c.names {
		if o != node && c.reachableLocked(node, o) {
			seeds = append(seeds, c.b.gossipAddr(o))
		}
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
	defer cancel()
	if err := c.b.start(ctx, node, seeds); err != nil {
		c.t.Fatalf("integration: restart %s: %v", node, err)
	}
	c.update(func() { delete(c.down, node) })
	// A restarted node is under the faults of its name.
	c.apply("restart " + node)
}

// Freeze stops node without killing it (SIGSTOP in real mode): its
// connections stay open while it answers nothing, as a host lost to the
// network or a long GC pause looks. In-process the node's gossip goes
// silent both ways while its connections stay open (p2ptest's model of a
// frozen node); its processes keep running.
func (c *Cluster) Freeze(node string) {
	c.t.Helper()
	c.check(node)
	c.lock()
	defer c.unlock()
	if down, frozen := c.state(node); down || frozen {
		c.t.Fatalf("integration: freeze %s: %v", node, ErrNotRunning)
	}
	c.update(func() { c.frozen[node] = true })
	if err := c.b.freeze(node); err != nil {
		c.t.Fatalf("integration: freeze %s: %v", node, err)
	}
	c.apply("freeze " + node)
}

// Thaw resumes a frozen node (SIGCONT) and, unless a service reconnects
// by itself, joins the running nodes to each other again, as after Heal.
func (c *Cluster) Thaw(node string) {
	c.t.Helper()
	c.check(node)
	c.lock()
	defer c.unlock()
	if _, frozen := c.state(node); !frozen {
		c.t.Fatalf("integration: thaw %s: not frozen", node)
	}
	if err := c.b.thaw(node); err != nil {
		c.t.Fatalf("integration: thaw %s: %v", node, err)
	}
	c.update(func() { delete(c.frozen, node) })
	c.apply("thaw " + node)
	c.reconnect()
}

// Running returns the nodes that are neither killed, stopped nor frozen.
func (c *Cluster) Running() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, n := range c.names {
		if !c.down[n] && !c.frozen[n] {
			out = append(out, n)
		}
	}
	return out
}

// opCtx bounds an operation by the cluster's Timeout when ctx has no
// deadline.
func (c *Cluster) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.opts.Timeout)
}

func (c *Cluster) ready(op, node string) error {
	if !slices.Contains(c.names, node) {
		return &OpError{Node: node, Op: op, Err: ErrUnknownNode}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down[node] || c.frozen[node] {
		return &OpError{Node: node, Op: op, Err: ErrNotRunning}
	}
	return nil
}

func wrap(op, node string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(*OpError); ok {
		return err
	}
	return &OpError{Node: node, Op: op, Err: err}
}

// Peers returns the nodes node is connected to (visible ones, itself
// excluded), sorted.
func (c *Cluster) Peers(ctx context.Context, node string) ([]string, error) {
	if err := c.ready("peers", node); err != nil {
		return nil, err
	}
	ctx, cancel := c.opCtx(ctx)
	defer cancel()
	p, err := c.b.peers(ctx, node)
	return p, wrap("peers", node, err)
}

// Incarnation returns node's current incarnation (its start's creation).
func (c *Cluster) Incarnation(ctx context.Context, node string) (uint64, error) {
	if err := c.ready("incarnation", node); err != nil {
		return 0, err
	}
	ctx, cancel := c.opCtx(ctx)
	defer cancel()
	inc, err := c.b.incarnation(ctx, node)
	return inc, wrap("incarnation", node, err)
}

// SpawnEcho starts an echo process on node, registered under register
// unless it is empty: it answers a call with the text it was given (the
// `node` binary's echo behaviour).
func (c *Cluster) SpawnEcho(ctx context.Context, node, register string) (nodal.Pid, error) {
	if err := c.ready("spawn", node); err != nil {
		return nodal.Pid{}, err
	}
	ctx, cancel := c.opCtx(ctx)
	defer cancel()
	pid, err := c.b.spawnEcho(ctx, node, register)
	return pid, wrap("spawn", node, err)
}

// Send sends text to the process to from node from.
func (c *Cluster) Send(ctx context.Context, from string, to nodal.Pid, text string) error {
	if err := c.ready("send", from); err != nil {
		return err
	}
	ctx, cancel := c.opCtx(ctx)
	defer cancel()
	return wrap("send", from, c.b.send(ctx, from, to, text))
}

// Call calls the process to (an echo) from node from with text and
// returns the text of its reply.
func (c *Cluster) Call(ctx context.Context, from string, to nodal.Pid, text string) (string, error) {
	if err := c.ready("call", from); err != nil {
		return "", err
	}
	ctx, cancel := c.opCtx(ctx)
	defer cancel()
	r, err := c.b.call(ctx, from, to, text)
	return r, wrap("call", from, err)
}

// RPC calls the rpc function fn on node to from node from, with args
// encoded as JSON (nil for none), and returns its result as JSON: rpc's
// CallJSON in-process, `node ctl rpc` in real mode. Every node exposes
// rpc's built-ins (rpc.echo, node.info, ...).
func (c *Cluster) RPC(ctx context.Context, from, to, fn string, args any) (json.RawMessage, error) {
	if err := c.ready("rpc", from); err != nil {
		return nil, err
	}
	var raw json.RawMessage
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			return nil, &OpError{Node: from, Op: "rpc", Err: err}
		}
		raw = b
	}
	ctx, cancel := c.opCtx(ctx)
	defer cancel()
	out, err := c.b.rpc(ctx, from, to, fn, raw)
	return out, wrap("rpc", from, err)
}

// Ping measures a round trip from node from to node to (Node.Ping,
// `node ctl ping`), connecting first if needed.
func (c *Cluster) Ping(ctx context.Context, from, to string) (time.Duration, error) {
	if err := c.ready("ping", from); err != nil {
		return 0, err
	}
	ctx, cancel := c.opCtx(ctx)
	defer cancel()
	d, err := c.b.ping(ctx, from, to)
	return d, wrap("ping", from, err)
}

// Watch is a monitor that a process on one node holds on a process of
// another (or the same) node, made by Monitor.
type Watch struct {
	c      *Cluster
	From   string    // the node of the monitoring process
	Target nodal.Pid // the monitored process
	b      watchBackend
}

// Monitor starts a process on node from that monitors target, and returns
// once the monitor has reached target's node: a later fault is seen by
// it.
func (c *Cluster) Monitor(ctx context.Context, from string, target nodal.Pid) (*Watch, error) {
	if err := c.ready("monitor", from); err != nil {
		return nil, err
	}
	ctx, cancel := c.opCtx(ctx)
	defer cancel()
	wb, err := c.b.monitor(ctx, from, target)
	if err != nil {
		return nil, wrap("monitor", from, err)
	}
	return &Watch{c: c, From: from, Target: target, b: wb}, nil
}

// Down reports whether the monitor fired, with the reason of its Down
// and when it arrived.
func (w *Watch) Down(ctx context.Context) (fired bool, reason error, at time.Time, err error) {
	if err := w.c.ready("monitored", w.From); err != nil {
		return false, nil, time.Time{}, err
	}
	ctx, cancel := w.c.opCtx(ctx)
	defer cancel()
	st, err := w.b.status(ctx)
	if err != nil {
		return false, nil, time.Time{}, wrap("monitored", w.From, err)
	}
	return st.down, st.reason, st.at, nil
}

// WaitDown waits, up to the cluster's Timeout, for the monitor to fire,
// and returns its reason and the time from since to its Down.
func (w *Watch) WaitDown(since time.Time) (reason error, took time.Duration) {
	w.c.t.Helper()
	w.c.Eventually(func() bool {
		fired, r, at, err := w.Down(context.Background())
		if fired {
			reason, took = r, at.Sub(since)
		}
		return err == nil && fired
	}, "the monitor on %s of %v to fire", w.From, w.Target)
	return reason, took
}

// Eventually checks cond until it holds and fails the test if it still
// does not after the cluster's Timeout; it returns how long that took.
// In-process under synctest the wait is fake time. It never sleeps
// longer than a poll interval between checks.
func (c *Cluster) Eventually(cond func() bool, format string, args ...any) time.Duration {
	c.t.Helper()
	poll := 50 * time.Millisecond
	if c.mode == Real {
		poll = 100 * time.Millisecond
	}
	start := time.Now()
	deadline := start.Add(c.opts.Timeout)
	for !cond() {
		if !time.Now().Before(deadline) {
			c.t.Fatalf("integration: timed out after %v waiting for "+format, append([]any{c.opts.Timeout}, args...)...)
		}
		time.Sleep(poll)
	}
	return time.Since(start)
}

// Sees reports whether node's peers are exactly want (itself excluded).
func (c *Cluster) Sees(node string, want ...string) bool {
	_, ok := c.sees(node, want)
	return ok
}

// sees returns what node sees (its peers, or the error that hid them)
// and whether that is exactly want, itself excluded.
func (c *Cluster) sees(node string, want []string) (string, bool) {
	got, err := c.Peers(context.Background(), node)
	if err != nil {
		return err.Error(), false
	}
	want = slices.DeleteFunc(slices.Clone(want), func(s string) bool { return s == node })
	slices.Sort(want)
	return fmt.Sprint(got), slices.Equal(got, want)
}

// WaitMesh waits until each of nodes (default: every running node) is
// connected to exactly the others of nodes, and returns how long that
// took. On a timeout it says what each node that did not see the mesh
// saw last.
func (c *Cluster) WaitMesh(nodes ...string) time.Duration {
	c.t.Helper()
	if len(nodes) == 0 {
		nodes = c.Running()
	}
	c.check(nodes...)
	var last lastSeen
	return c.Eventually(func() bool {
		last = last[:0]
		for _, n := range nodes {
			if got, ok := c.sees(n, nodes); !ok {
				last = append(last, n+": "+got)
			}
		}
		return len(last) == 0
	}, "%v to see each other and no one else; last seen: %v", nodes, &last)
}

// lastSeen is what WaitMesh's last poll found amiss. The failure message
// formats it when it is printed, after the polls: hence a pointer.
type lastSeen []string

func (l *lastSeen) String() string { return strings.Join(*l, "; ") }

func pairKey(a, b string) [2]string {
	if b < a {
		a, b = b, a
	}
	return [2]string{a, b}
}

// TB is the part of testing.TB the harness uses: *testing.T and
// *testing.B satisfy it, and so can a program's own type (Example does),
// since testing.TB itself cannot be implemented outside package testing.
type TB interface {
	Helper()
	Cleanup(func())
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
	Skip(args ...any)
	Skipf(format string, args ...any)
	Failed() bool
	TempDir() string
}
