package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing/synctest"
	"time"

	"github.com/nodal-go/nodal/internal/echo"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/p2p/p2ptest"
	"github.com/nodal-go/nodal/rpc"
)

// NewCluster starts n nodes in the test process on a p2ptest network,
// n1@10.0.0.1 to nN@10.0.0.N, each with opts.Services attached, and waits
// until each sees all the others. No privileges are needed. Call it
// inside a testing/synctest bubble (synctest.Test) to run on a fake
// clock: failure detection, timeouts and Eventually then cost no real
// time; outside one it runs on the real clock. The cluster is closed when
// the test ends.
func NewCluster(t TB, n int, opts Options) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("integration: a cluster needs at least one node, not %d", n)
	}
	opts = opts.withDefaults()
	b := &simBackend{
		t: t, opts: opts,
		net:     p2ptest.New(p2ptest.WithSeed(opts.Seed)),
		nodes:   map[string]*simNode{},
		drops:   map[[2]string]float64{},
		cuts:    map[[2]string]bool{},
		oneWay:  map[[2]string][2]peer.ID{},
		severed: map[[2]string][2]peer.ID{},
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("n%d@10.0.0.%d", i+1, i+1)
	}
	return startCluster(t, InProcess, b, names, opts)
}

// simBackend runs nodes on a p2ptest network.
type simBackend struct {
	t    TB
	opts Options
	net  *p2ptest.Network

	mu      sync.Mutex
	nodes   map[string]*simNode
	stopped []*nodal.Node
	dirty   bool // the network's table has something of ours that apply must clear (a kill's isolation)

	// What apply has put in the network's table.
	cuts   map[[2]string]bool       // symmetric cuts, key sorted
	drops  map[[2]string]float64    // directed gossip drop rates
	oneWay map[[2]string][2]peer.ID // libp2p links unlinked for a one-way cut (key sorted), with the peers unlinked

	// Pairs settle disconnected (key sorted, with their peers), until
	// settle connects them again.
	severed map[[2]string][2]peer.ID
}

type simNode struct {
	n        *nodal.Node
	services map[string]any
}

func (b *simBackend) get(name string) (*simNode, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	sn, ok := b.nodes[name]
	if !ok {
		return nil, ErrNotRunning
	}
	return sn, nil
}

func (b *simBackend) start(ctx context.Context, name string, seeds []string) error {
	cfg := nodal.DefaultLocalConfig(name, b.opts.Cookie)
	cfg.P2P.Network = b.net
	// Fixed addresses, as a real node restarted on its host binds the
	// same ones (and the others recognise it as the same member).
	host := name[strings.LastIndexByte(name, '@')+1:]
	cfg.ListenAddr, cfg.GossipAddr = host+":4370", host+":7946"
	cfg.Seeds = seeds
	cfg.Stdout = io.Discard
	n, err := nodal.Start(ctx, cfg)
	if err != nil {
		return err
	}
	sn := &simNode{n: n, services: map[string]any{}}
	err = n.RegisterBehaviour("echo", echo.Behaviour)
	for _, s := range b.opts.Services {
		if err != nil {
			break
		}
		var v any
		v, err = s.Attach(n, sn.services)
		if err != nil {
			err = fmt.Errorf("attach %s: %w", s.Name, err)
		}
		sn.services[s.Name] = v
	}
	if err != nil {
		stopNode(n)
		return err
	}
	b.mu.Lock()
	b.nodes[name] = sn
	b.mu.Unlock()
	return nil
}

// kill crashes a node: it is cut from everyone first, so that nothing of
// its stop (a leave, a goodbye on its connections) gets out, as with a
// SIGKILL; the next apply lifts the cut.
func (b *simBackend) kill(name string) error {
	sn, err := b.get(name)
	if err != nil {
		return err
	}
	b.net.Isolate(name)
	b.mu.Lock()
	b.dirty = true
	delete(b.nodes, name)
	b.stopped = append(b.stopped, sn.n)
	b.mu.Unlock()
	stopNode(sn.n)
	return nil
}

func (b *simBackend) stop(ctx context.Context, name string) error {
	sn, err := b.get(name)
	if err != nil {
		return err
	}
	b.mu.Lock()
	delete(b.nodes, name)
	b.stopped = append(b.stopped, sn.n)
	b.mu.Unlock()
	return sn.n.Stop(ctx)
}

// freeze and thaw need nothing but apply's drops (f.frozen).
func (b *simBackend) freeze(string) error { return nil }
func (b *simBackend) thaw(string) error   { return nil }

// apply brings the p2ptest table in line with f. Symmetric cuts are
// p2ptest partitions, which only Heal removes; one-way cuts are a gossip
// drop of rate 1 that way plus the libp2p link unlinked (a TCP connection
// cannot live when one direction's packets are lost); a frozen node's
// gossip is dropped both ways with its libp2p links kept; link faults set
// the mocknet links' latency, a gossip loss rate and p2ptest's bandwidth
// limit each way.
func (b *simBackend) apply(f faults) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	sym := map[[2]string]bool{}
	for k := range f.blocked {
		if f.blocked[[2]string{k[1], k[0]}] {
			sym[pairKey(k[0], k[1])] = true
		}
	}
	removed := b.dirty
	for k := range b.cuts {
		if !sym[k] {
			removed = true
		}
	}
	if removed {
		b.net.Heal()
		clear(b.cuts)
		clear(b.drops)
		b.dirty = false
	}
	var keys [][2]string
	for k := range sym {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, cmpPair)
	for _, k := range keys {
		if !b.cuts[k] {
			b.net.Partition(k[0], k[1])
			b.cuts[k] = true
		}
	}

	// Gossip drop rates, directed.
	want := map[[2]string]float64{}
	for k, lf := range f.links {
		if lf.Loss > 0 {
			want[k], want[[2]string{k[1], k[0]}] = lf.Loss, lf.Loss
		}
	}
	for k := range f.blocked {
		if !sym[pairKey(k[0], k[1])] {
			want[k] = 1
		}
	}
	for x := range f.frozen {
		for o := range b.nodes {
			if o != x {
				want[[2]string{x, o}], want[[2]string{o, x}] = 1, 1
			}
		}
	}
	var dk [][2]string
	for k := range want {
		dk = append(dk, k)
	}
	for k := range b.drops {
		if _, ok := want[k]; !ok {
			dk = append(dk, k)
		}
	}
	slices.SortFunc(dk, cmpPair)
	for _, k := range dk {
		if b.drops[k] != want[k] {
			b.net.Drop(k[0], k[1], want[k])
		}
		if want[k] == 0 {
			delete(b.drops, k)
		} else {
			b.drops[k] = want[k]
		}
	}

	// libp2p links of one-way cuts.
	mn := b.net.Mocknet()
	oneWay := map[[2]string]bool{}
	for k := range f.blocked {
		if pk := pairKey(k[0], k[1]); !sym[pk] {
			oneWay[pk] = true
		}
	}
	for k, ids := range b.oneWay {
		cur, ok := b.peerIDs(k)
		switch {
		case sym[k]:
			delete(b.oneWay, k) // a partition now; p2ptest relinks it at Heal
		case !ok || cur != ids:
			delete(b.oneWay, k) // a node restarted or stopped: its old links are gone
		case !oneWay[k]:
			if _, err := mn.LinkPeers(ids[0], ids[1]); err != nil {
				return fmt.Errorf("relink %s and %s: %w", k[0], k[1], err)
			}
			delete(b.oneWay, k)
		}
	}
	for k := range oneWay {
		if _, done := b.oneWay[k]; done {
			continue
		}
		ids, ok := b.peerIDs(k)
		if !ok {
			continue // applied when both run (apply runs after every start)
		}
		// As p2ptest's Partition does: unlink, then close the peer on both
		// hosts.
		_ = mn.UnlinkPeers(ids[0], ids[1])
		for i, id := range ids {
			if nw := mn.Net(id); nw != nil {
				_ = nw.ClosePeer(ids[1-i])
			}
		}
		b.oneWay[k] = ids
	}

	// Latency of degraded links, on every link between their hosts (a
	// heal or a restart makes new ones).
	for k, lf := range f.links {
		if ids, ok := b.peerIDs(k); ok {
			for _, l := range mn.LinksBetweenPeers(ids[0], ids[1]) {
				o := l.Options()
				o.Latency = lf.Latency
				l.SetOptions(o)
			}
		}
		// Bandwidth each way, by node name: p2ptest keeps it across
		// restarts and heals.
		for _, d := range [][2]string{k, {k[1], k[0]}} {
			if b.net.Bandwidth(d[0], d[1]) != lf.Bandwidth {
				b.net.SetBandwidth(d[0], d[1], lf.Bandwidth)
			}
		}
	}
	return nil
}

// settle finishes what apply began: a mocknet stream opened while its
// connection closes is never reset (go-libp2p v0.51.0), and a node
// reading it would keep listing a peer it has no connection to, which
// nothing else corrects when both stay members (each hears the other
// through a third node, as with a one-way cut). So the nodes of a pair
// cut one way drop each other's connection themselves until neither
// lists the other.
//
// Such a drop is a Disconnect, which the full mesh does not redial (a
// lost connection it does). So once the cut is lifted, and neither node
// has restarted since, settle connects the pair again, as the mesh would
// have after a real loss. It runs without locks: it waits.
func (b *simBackend) settle() {
	type pair struct {
		k    [2]string
		ids  [2]peer.ID
		a, b *nodal.Node
	}
	b.mu.Lock()
	var cut, lifted []pair
	for k, ids := range b.oneWay {
		if na, nb := b.nodes[k[0]], b.nodes[k[1]]; na != nil && nb != nil {
			cut = append(cut, pair{k, ids, na.n, nb.n})
		}
	}
	for k, ids := range b.severed {
		cur, ok := b.peerIDs(k)
		switch _, one := b.oneWay[k]; {
		case !ok || cur != ids:
			delete(b.severed, k) // a restarted node meshes by itself
		case !one && !b.cuts[k]:
			lifted = append(lifted, pair{k, ids, b.nodes[k[0]].n, b.nodes[k[1]].n})
		}
	}
	b.mu.Unlock()
	for _, p := range cut {
		for range 100 {
			if !slices.Contains(p.a.Nodes(), p.b.Name()) && !slices.Contains(p.b.Nodes(), p.a.Name()) {
				break
			}
			b.mu.Lock()
			b.severed[p.k] = p.ids
			b.mu.Unlock()
			_ = p.a.Disconnect(p.b.Name())
			_ = p.b.Disconnect(p.a.Name())
			time.Sleep(p2ptest.PollInterval)
		}
	}
	for _, p := range lifted {
		ctx, cancel := context.WithTimeout(context.Background(), min(b.opts.Timeout, 5*time.Second))
		err := p.a.Connect(ctx, p.b.Name())
		cancel()
		if err != nil {
			continue // a later settle tries again (this one ran before a restart or a new cut)
		}
		b.mu.Lock()
		if b.severed[p.k] == p.ids {
			delete(b.severed, p.k)
		}
		b.mu.Unlock()
	}
}

// peerIDs returns the peer IDs of the running nodes of pair k. Callers
// hold mu.
func (b *simBackend) peerIDs(k [2]string) ([2]peer.ID, bool) {
	if b.nodes[k[0]] == nil || b.nodes[k[1]] == nil {
		return [2]peer.ID{}, false
	}
	a, okA := b.net.PeerID(k[0])
	c, okC := b.net.PeerID(k[1])
	return [2]peer.ID{a, c}, okA && okC
}

func cmpPair(a, b [2]string) int {
	if a[0] != b[0] {
		if a[0] < b[0] {
			return -1
		}
		return 1
	}
	if a[1] < b[1] {
		return -1
	}
	if a[1] > b[1] {
		return 1
	}
	return 0
}

func (b *simBackend) gossipAddr(name string) string {
	if sn, err := b.get(name); err == nil {
		return sn.n.GossipAddr()
	}
	addr, _ := b.net.GossipAddr(name)
	return addr
}

func (b *simBackend) peers(_ context.Context, name string) ([]string, error) {
	// Such a stream can also open after apply's settle, in the window
	// where the nodes redial each other: settle again before reading
	// (nothing to do unless a pair cut one way lists each other).
	b.settle()
	sn, err := b.get(name)
	if err != nil {
		return nil, err
	}
	p := sn.n.Nodes()
	slices.Sort(p)
	return p, nil
}

func (b *simBackend) incarnation(_ context.Context, name string) (uint64, error) {
	sn, err := b.get(name)
	if err != nil {
		return 0, err
	}
	return sn.n.Incarnation(), nil
}

func (b *simBackend) spawnEcho(_ context.Context, name, register string) (nodal.Pid, error) {
	sn, err := b.get(name)
	if err != nil {
		return nodal.Pid{}, err
	}
	var opts []nodal.SpawnOption
	if register != "" {
		opts = append(opts, nodal.WithName(register))
	}
	return sn.n.Spawn(func(p *nodal.Process) error { return echo.Behaviour(p, nil) }, opts...)
}

func (b *simBackend) send(_ context.Context, from string, to nodal.Pid, text string) error {
	sn, err := b.get(from)
	if err != nil {
		return err
	}
	return sn.n.Send(to, text)
}

func (b *simBackend) call(ctx context.Context, from string, to nodal.Pid, text string) (string, error) {
	sn, err := b.get(from)
	if err != nil {
		return "", err
	}
	v, err := sn.n.Call(ctx, to, text)
	if err != nil {
		return "", err
	}
	if r, ok := v.(echo.Reply); ok {
		return r.Text, nil
	}
	return echo.Text(v), nil
}

func (b *simBackend) rpc(ctx context.Context, from, to, fn string, args json.RawMessage) (json.RawMessage, error) {
	sn, err := b.get(from)
	if err != nil {
		return nil, err
	}
	r, ok := sn.services[rpc.ServiceName].(*rpc.RPC)
	if !ok {
		return nil, errors.New("no rpc service attached (Options.Services)")
	}
	return r.CallJSON(ctx, to, fn, args)
}

func (b *simBackend) join(ctx context.Context, name string, seeds []string) error {
	sn, err := b.get(name)
	if err != nil {
		return err
	}
	return sn.n.Join(ctx, seeds...)
}

func (b *simBackend) ping(ctx context.Context, from, to string) (time.Duration, error) {
	sn, err := b.get(from)
	if err != nil {
		return 0, err
	}
	return sn.n.Ping(ctx, to)
}

// simWatch is what a watcher process on an in-process node saw.
type simWatch struct {
	mu sync.Mutex
	st watchState
}

func (w *simWatch) status(context.Context) (watchState, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.st, nil
}

func (b *simBackend) monitor(ctx context.Context, from string, target nodal.Pid) (watchBackend, error) {
	sn, err := b.get(from)
	if err != nil {
		return nil, err
	}
	w := &simWatch{}
	armed := make(chan error, 1)
	_, err = sn.n.Spawn(func(p *nodal.Process) error {
		ref := p.Monitor(target)
		armed <- monitorBarrier(ctx, p, target)
		m, err := p.ReceiveMatch(p.Context(), func(m any) bool { d, ok := m.(nodal.Down); return ok && d.Ref == ref })
		if err != nil {
			return nil // the node stops
		}
		w.mu.Lock()
		w.st = watchState{down: true, reason: m.(nodal.Down).Reason, at: time.Now()}
		w.mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	select {
	case err := <-armed:
		if err != nil {
			return nil, err
		}
	case <-ctx.Done():
		return nil, fmt.Errorf("monitor %v: %w", target, ctx.Err())
	}
	return w, nil
}

func (b *simBackend) node(name string) *nodal.Node {
	if sn, err := b.get(name); err == nil {
		return sn.n
	}
	return nil
}

func (b *simBackend) service(name, service string) any {
	if sn, err := b.get(name); err == nil {
		return sn.services[service]
	}
	return nil
}

func (b *simBackend) close() {
	b.mu.Lock()
	var running []*nodal.Node
	for _, sn := range b.nodes {
		running = append(running, sn.n)
	}
	clear(b.nodes)
	b.mu.Unlock()
	// One after the other: nodes leaving at once wait on each other's
	// goodbyes.
	slices.SortFunc(running, func(a, b *nodal.Node) int { return strings.Compare(a.Name(), b.Name()) })
	for _, n := range running {
		stopNode(n)
	}
	if inBubble() {
		// memberlist's probe goroutines end a few (fake) seconds after
		// Shutdown; the bubble must not end before them (p2ptest duty 2).
		time.Sleep(10 * time.Second)
	}
	_ = b.net.Close()
}

// stopNode stops n, bounded by 10 s.
func stopNode(n *nodal.Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = n.Stop(ctx)
}

// inBubble reports whether the caller runs in a testing/synctest bubble
// (synctest.Wait panics outside one).
func inBubble() (in bool) {
	defer func() {
		if recover() != nil {
			in = false
		}
	}()
	synctest.Wait()
	return true
}
