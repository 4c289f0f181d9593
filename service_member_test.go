package nodal

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal/internal/wire"
	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// memberRec is a MemberWatcher and GossipService that records what it gets.
type memberRec struct {
	*recService
	self    string
	mmu     sync.Mutex
	members []MemberEvent
	states  map[NodeRef]string // last state merged, by sender
	casts   map[NodeRef][]string
}

func newMemberRec(self string) *memberRec {
	return &memberRec{recService: newRecService(), self: self, states: map[NodeRef]string{}, casts: map[NodeRef][]string{}}
}

func (m *memberRec) MemberEvent(ev MemberEvent) {
	m.mmu.Lock()
	m.members = append(m.members, ev)
	m.mmu.Unlock()
}

func (m *memberRec) LocalState(bool) []byte { return []byte("state of " + m.self) }

func (m *memberRec) MergeRemoteState(from NodeRef, st []byte, _ bool) {
	m.mmu.Lock()
	m.states[from] = string(st)
	m.mmu.Unlock()
}

func (m *memberRec) HandleBroadcast(from NodeRef, msg []byte) {
	m.mmu.Lock()
	m.casts[from] = append(m.casts[from], string(msg))
	m.mmu.Unlock()
}

func (m *memberRec) eventsOf(node string) []MemberEvent {
	m.mmu.Lock()
	defer m.mmu.Unlock()
	var out []MemberEvent
	for _, e := range m.members {
		if e.Member.Name == node {
			out = append(out, e)
		}
	}
	return out
}

func (m *memberRec) has(node string, k MemberEventKind) bool {
	return slices.ContainsFunc(m.eventsOf(node), func(e MemberEvent) bool { return e.Kind == k })
}

func (m *memberRec) last(node string) MemberEvent {
	ev := m.eventsOf(node)
	return ev[len(ev)-1]
}

func startSimNode(t *testing.T, net *p2ptest.Network, name string, mod func(*Config)) *Node {
	t.Helper()
	cfg := DefaultLocalConfig(name, testCookie)
	cfg.P2P.Network = net
	cfg.Stdout = &distBuffer{}
	if mod != nil {
		mod(&cfg)
	}
	n, err := Start(context.Background(), cfg)
	require.NoError(t, err, "start %s", name)
	return n
}

// Membership events come whether or not a connection is open, with their
// reasons as root sentinels: left (graceful stop), failed (cut off, with no
// connection open), replaced (a restart faster than failure detection).
func TestServiceMemberEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New(p2ptest.WithSeed(1))
		defer net.Close()
		nodes := startSimCluster(t, net, "a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3", "d@10.0.0.4")
		a, b, c, d := nodes[0], nodes[1], nodes[2], nodes[3]
		w := newMemberRec(a.Name())
		require.NoError(t, a.AttachService("watch", w))
		for _, n := range nodes[1:] {
			require.True(t, w.has(n.Name(), MemberJoined), "late attach: %s reported joined", n.Name())
		}
		require.Len(t, a.Members(), 3)

		// c leaves gracefully.
		stopSimNode(c)
		p2ptest.Eventually(t, 30*time.Second, func() bool { return w.has(c.Name(), MemberLeft) }, "c left")
		require.ErrorIs(t, w.last(c.Name()).Reason, ErrNodeLeft)

		// d fails while a has no connection to it.
		require.NoError(t, a.Disconnect(d.Name()))
		synctest.Wait()
		require.NotContains(t, a.Nodes(), d.Name(), "a not connected to d")
		net.Isolate(d.Name())
		p2ptest.Eventually(t, 60*time.Second, func() bool { return w.has(d.Name(), MemberFailed) }, "d failed")
		require.ErrorIs(t, w.last(d.Name()).Reason, ErrNodeFailed)
		require.Equal(t, MemberStateFailed, w.last(d.Name()).Member.State)
		require.False(t, errors.Is(w.last(d.Name()).Reason, ErrNodeLeft))

		// b crashes (its leave cannot get out) and restarts at once on the
		// same gossip address: a new incarnation replaces the old one.
		bName, bGossip, oldInc := b.Name(), b.GossipAddr(), b.Incarnation()
		net.Isolate(bName)
		stopSimNode(b)
		net.Heal()
		b2 := startSimNode(t, net, bName, func(c *Config) { c.GossipAddr = bGossip; c.Seeds = []string{a.GossipAddr()} })
		p2ptest.Eventually(t, 30*time.Second, func() bool {
			return slices.ContainsFunc(a.Members(), func(m Member) bool { return m.Name == bName && m.Incarnation == b2.Incarnation() })
		}, "a sees b's new start")
		// Events are delivered after memberlist's state changed (Members):
		// wait for the one of the new start.
		p2ptest.Eventually(t, 30*time.Second, func() bool {
			return w.last(bName).Member.Incarnation == b2.Incarnation()
		}, "a's watcher told of b's new start: %v", w.eventsOf(bName))
		ev := w.last(bName)
		if ev.Kind == MemberReplaced {
			require.Equal(t, oldInc, ev.OldIncarnation)
			require.ErrorIs(t, ev.Reason, ErrNodeReplaced)
		} else {
			// failure detection was faster than the restart: failed, then joined
			require.Equal(t, MemberJoined, ev.Kind, "events of b: %v", w.eventsOf(bName))
			require.True(t, w.has(bName, MemberFailed), "events of b: %v", w.eventsOf(bName))
		}
		require.Equal(t, b2.Incarnation(), ev.Member.Incarnation)
		stopSimNodes([]*Node{a, b2, d})
	})
}

// A GossipService's push/pull state reaches every member, named with its
// sender; a broadcast reaches every other member; a member advertises its
// services.
func TestServiceGossipStateAndBroadcast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New(p2ptest.WithSeed(1))
		defer net.Close()
		nodes := startSimCluster(t, net, "a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3")
		defer stopSimNodes(nodes)
		recs := map[string]*memberRec{}
		for _, n := range nodes {
			recs[n.Name()] = newMemberRec(n.Name())
			require.NoError(t, n.AttachService("gossip", recs[n.Name()]))
		}
		ref := func(n *Node) NodeRef { return NodeRef{Name: n.Name(), Incarnation: n.Incarnation()} }
		p2ptest.Eventually(t, 5*time.Minute, func() bool {
			for _, n := range nodes {
				r := recs[n.Name()]
				r.mmu.Lock()
				for _, o := range nodes {
					if o != n && r.states[ref(o)] != "state of "+o.Name() {
						r.mmu.Unlock()
						return false
					}
				}
				r.mmu.Unlock()
			}
			return true
		}, "every node merged every other node's state")

		// Broadcasts are best effort (a few retransmissions to random
		// members): say it again, under the same key, until both heard it.
		last := time.Time{}
		p2ptest.Eventually(t, 60*time.Second, func() bool {
			if time.Since(last) > 5*time.Second {
				require.NoError(t, nodes[0].BroadcastService("gossip", "k", []byte("hello")))
				last = time.Now()
			}
			for _, n := range nodes[1:] {
				r := recs[n.Name()]
				r.mmu.Lock()
				ok := slices.Contains(r.casts[ref(nodes[0])], "hello")
				r.mmu.Unlock()
				if !ok {
					return false
				}
			}
			return true
		}, "broadcast reached b and c")
		require.ErrorIs(t, nodes[0].BroadcastService("gossip", "k", make([]byte, MaxServiceBroadcast)), ErrBroadcastTooLarge)

		p2ptest.Eventually(t, 60*time.Second, func() bool {
			for _, m := range nodes[1].Members() {
				if !slices.Equal(m.Services, []string{"gossip"}) {
					return false
				}
			}
			return true
		}, "members advertise their services")
	})
}

// A malformed push/pull state is dropped and counted; it never panics.
func FuzzServiceGossipState(f *testing.F) {
	f.Add(wire.AppendBytes(appendString(nil, "svc"), []byte("state")))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		total := 0
		_ = decodeGossipState(b, func(name string, st []byte) { total += len(name) + len(st) })
		if total > len(b) {
			t.Fatalf("decoded %d bytes from %d", total, len(b))
		}
	})
}

// Join reaches members lost to a partition once the network is back
// (memberlist alone never reconnects two sides that declared each other
// dead); a hidden or local-only node cannot join.
func TestNodeJoinReconnectsLostMembers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New(p2ptest.WithSeed(1))
		defer net.Close()
		nodes := startSimCluster(t, net, "a@10.0.0.1", "b@10.0.0.2")
		defer stopSimNodes(nodes)
		a, b := nodes[0], nodes[1]
		net.Partition(a.Name(), b.Name())
		p2ptest.Eventually(t, 60*time.Second, func() bool { return len(a.Members()) == 0 && len(b.Members()) == 0 }, "each side declared the other dead")
		// Past memberlist's gossip to the dead, nothing rejoins by itself.
		time.Sleep(5 * time.Minute)
		net.Heal()
		time.Sleep(2 * time.Minute)
		require.Empty(t, a.Members(), "rejoined without Join")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, a.Join(ctx, b.GossipAddr()))
		p2ptest.Eventually(t, 60*time.Second, func() bool {
			return len(a.Members()) == 1 && len(b.Members()) == 1
		}, "members again")

		local, err := Start(context.Background(), Config{})
		require.NoError(t, err)
		defer stopSimNode(local)
		require.ErrorIs(t, local.Join(ctx, b.GossipAddr()), ErrNotDistributed)
		require.ErrorIs(t, a.Join(ctx), ErrBadOption)
	})
}
