package heal

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/internal/wire"
	"github.com/nodal-go/nodal/p2p/p2ptest"
)

const testCookie = "heal-test-cookie"

// member is one node of a test cluster with its heal service, its set
// service (the test's reconciler) and its events.
type member struct {
	n   *nodal.Node
	h   *Heal
	set *setService
	sub *Subscription

	mu     sync.Mutex
	events []Event
	done   chan struct{}
}

func (m *member) name() string { return m.n.Name() }

// collect keeps m's events until the subscription closes.
func (m *member) collect() {
	defer close(m.done)
	for ev := range m.sub.Events() {
		m.mu.Lock()
		m.events = append(m.events, ev)
		m.mu.Unlock()
	}
}

// healed returns m's Healed events so far.
func (m *member) healed() []Healed {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Healed
	for _, ev := range m.events {
		if h, ok := ev.(Healed); ok {
			out = append(out, h)
		}
	}
	return out
}

// count returns how many of m's events satisfy f.
func (m *member) count(f func(Event) bool) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, ev := range m.events {
		if f(ev) {
			n++
		}
	}
	return n
}

// all returns m's events so far.
func (m *member) all() []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Event(nil), m.events...)
}

func isDetected(ev Event) bool { _, ok := ev.(PartitionDetected); return ok }

// startMember starts one node on net with heal (cfg) and the set service.
func startMember(t *testing.T, net *p2ptest.Network, name string, seeds []string, cfg Config) *member {
	t.Helper()
	n, err := startNode(net, name, seeds)
	require.NoError(t, err, "start %s", name)
	return withHeal(t, n, cfg)
}

func startNode(net *p2ptest.Network, name string, seeds []string) (*nodal.Node, error) {
	nc := nodal.DefaultLocalConfig(name, testCookie)
	nc.P2P.Network = net
	nc.Stdout = io.Discard
	nc.Seeds = seeds
	return nodal.Start(context.Background(), nc)
}

// withHeal attaches the set service and heal (cfg) to n.
func withHeal(t *testing.T, n *nodal.Node, cfg Config) *member {
	t.Helper()
	set, err := newSetService(n)
	require.NoError(t, err)
	h, err := New(n, cfg)
	require.NoError(t, err)
	require.NoError(t, h.AddReconciler("set", set))
	m := &member{n: n, h: h, set: set, sub: h.Subscribe(1024), done: make(chan struct{})}
	go m.collect()
	return m
}

// startCluster starts names on net, each with cfg (mod may adjust it per
// node), and waits until every heal view is whole.
func startCluster(t *testing.T, net *p2ptest.Network, cfg Config, mod func(i int, c *Config), names ...string) []*member {
	t.Helper()
	var ms []*member
	var seeds []string
	for i, name := range names {
		c := cfg
		if mod != nil {
			mod(i, &c)
		}
		m := startMember(t, net, name, seeds, c)
		ms = append(ms, m)
		if seeds == nil {
			seeds = []string{m.n.GossipAddr()}
		}
	}
	waitWhole(t, ms, 60*time.Second)
	return ms
}

// whole: every node reaches every other and none is syncing.
func whole(ms []*member) bool {
	for _, m := range ms {
		v := m.h.View()
		if len(v.Reachable) != len(ms) || len(v.Unreachable) != 0 || v.Partitioned || v.Syncing {
			return false
		}
	}
	return true
}

func waitWhole(t testing.TB, ms []*member, timeout time.Duration) time.Duration {
	t.Helper()
	return p2ptest.Eventually(t, timeout, func() bool { return whole(ms) }, "every view whole: %v", views(ms))
}

func views(ms []*member) string {
	s := ""
	for _, m := range ms {
		v := m.h.View()
		s += fmt.Sprintf("\n  %s reach=%v lost=%v partitioned=%v syncing=%v", m.name(), v.Reachable, v.UnreachableNames(), v.Partitioned, v.Syncing)
	}
	return s
}

func names(ms []*member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.name())
	}
	return out
}

// stopCluster stops every node, waits for the collectors and lets
// memberlist's probe goroutines end (in a bubble).
func stopCluster(ms []*member) {
	for _, m := range ms {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = m.n.Stop(ctx)
		cancel()
		<-m.done
	}
	time.Sleep(10 * time.Second)
}

// setService is the tests' reconciler: a replicated set of key → value
// entries on the root's service layer. Sync pushes this node's entries to
// each peer, which answers with what it has that they lack (a key with two values resolves to the
// smaller: a conflict). Sync pulls: it sends this node's entries to each
// peer, which answers with what this node lacks, and merges the answer.
type setService struct {
	n *nodal.Node

	mu      sync.Mutex
	entries map[string]string
	waiting map[uint64]chan []byte
	nextID  uint64
	syncs   int
}

const setName = "testset"

func newSetService(n *nodal.Node) (*setService, error) {
	s := &setService{n: n, entries: map[string]string{}, waiting: map[uint64]chan []byte{}}
	return s, n.AttachService(setName, s)
}

// put sets k to v here and pushes it to the connected nodes (the eager
// path: what a split cuts off, only Sync brings over).
func (s *setService) put(k, v string) {
	s.mu.Lock()
	s.entries[k] = v
	s.mu.Unlock()
	for _, node := range s.n.Nodes() {
		_ = s.n.TrySendService(node, setName, encodeEntries('E', 0, map[string]string{k: v}))
	}
}

func (s *setService) snapshot() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.entries)
}

func (s *setService) syncCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.syncs
}

func encodeEntries(kind byte, id uint64, es map[string]string) []byte {
	b := wire.AppendUvarint([]byte{kind}, id)
	b = wire.AppendUvarint(b, uint64(len(es)))
	for _, k := range slices.Sorted(maps.Keys(es)) {
		b = wire.AppendString(wire.AppendString(b, k), es[k])
	}
	return b
}

func decodeEntries(b []byte) (kind byte, id uint64, es map[string]string, err error) {
	d := wire.NewDecoder(b)
	kind, id = d.Byte(), d.Uvarint()
	n := d.Count(2)
	es = map[string]string{}
	for i := 0; i < n && d.Err() == nil; i++ {
		k := d.Str()
		es[k] = d.Str()
	}
	return kind, id, es, d.Done()
}

// lackOf returns the entries of this node that es lacks or holds another
// value for.
func (s *setService) lackOf(es map[string]string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for k, v := range s.entries {
		if es[k] != v {
			out[k] = v
		}
	}
	return out
}

// merge takes in es; it returns the entries taken and the conflicts
// resolved.
func (s *setService) merge(es map[string]string) (taken, conflicts uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range es {
		mine, ok := s.entries[k]
		switch {
		case !ok:
			s.entries[k] = v
			taken++
		case mine != v:
			conflicts++
			if v < mine {
				s.entries[k] = v
				taken++
			}
		}
	}
	return taken, conflicts
}

// HandleFrame implements nodal.Service: 'E' an eager update, 'Q' a pull
// (answer with what the sender lacks), 'R' the answer to this node's pull.
func (s *setService) HandleFrame(from nodal.NodeRef, data []byte) {
	kind, id, es, err := decodeEntries(data)
	if err != nil {
		return
	}
	switch kind {
	case 'E':
		s.merge(es)
	case 'Q':
		_ = s.n.TrySendService(from.Name, setName, encodeEntries('R', id, s.lackOf(es)))
	case 'R':
		s.mu.Lock()
		ch := s.waiting[id]
		s.mu.Unlock()
		if ch != nil {
			select {
			case ch <- data:
			default:
			}
		}
	}
}

func (s *setService) NodeUp(nodal.NodeRef)          {}
func (s *setService) NodeDown(nodal.NodeRef, error) {}

// Sync implements Reconciler.
func (s *setService) Sync(ctx context.Context, peers []string) (Exchange, error) {
	var x Exchange
	s.mu.Lock()
	s.syncs++
	s.mu.Unlock()
	for _, p := range peers {
		s.mu.Lock()
		s.nextID++
		id := s.nextID
		ch := make(chan []byte, 1)
		s.waiting[id] = ch
		push := encodeEntries('Q', id, s.entries)
		s.mu.Unlock()
		err := s.n.SendService(ctx, p, setName, push)
		var reply []byte
		if err == nil {
			select {
			case reply = <-ch:
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
		s.mu.Lock()
		delete(s.waiting, id)
		s.mu.Unlock()
		if err != nil {
			return x, fmt.Errorf("sync with %s: %w", p, err)
		}
		_, _, es, err := decodeEntries(reply)
		if err != nil {
			return x, err
		}
		taken, conflicts := s.merge(es)
		x = x.Add(Exchange{Bytes: uint64(len(push) + len(reply)), Entries: taken, Conflicts: conflicts})
	}
	return x, nil
}
