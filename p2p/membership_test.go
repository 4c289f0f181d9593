package p2p

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nodal-go/nodal/p2p/p2ptest"
	"github.com/stretchr/testify/require"
)

// memberSeen is a member event and whether a connection to the member
// was up when it came.
type memberSeen struct {
	MemberEvent
	connUp bool
}

// gossipGot is one state or broadcast received, with its sender.
type gossipGot struct {
	From string
	Inc  uint64
	Data string
	Join bool
}

// fullRecorder is a recorder that also implements MemberHandler and
// GossipHandler, checking that member events never overlap.
type fullRecorder struct {
	*recorder
	name     string
	inFlight atomic.Int32

	mu     sync.Mutex
	events []memberSeen
	states []gossipGot
	msgs   []gossipGot
}

var (
	_ MemberHandler = (*fullRecorder)(nil)
	_ GossipHandler = (*fullRecorder)(nil)
)

func (r *fullRecorder) MemberEvent(ev MemberEvent) {
	if r.inFlight.Add(1) != 1 {
		r.recorder.mu.Lock()
		r.recorder.errs = append(r.recorder.errs, "concurrent MemberEvent calls")
		r.recorder.mu.Unlock()
	}
	defer r.inFlight.Add(-1)
	up := r.recorder.isUp(ev.Member.Name)
	time.Sleep(time.Millisecond) // widen the window for an overlapping call
	r.mu.Lock()
	r.events = append(r.events, memberSeen{ev, up})
	r.mu.Unlock()
}

func (r *fullRecorder) LocalState(join bool) []byte { return []byte("state of " + r.name) }

func (r *fullRecorder) MergeRemoteState(from string, inc uint64, state []byte, join bool) {
	r.mu.Lock()
	r.states = append(r.states, gossipGot{from, inc, string(state), join})
	r.mu.Unlock()
}

func (r *fullRecorder) NotifyMsg(from string, inc uint64, msg []byte) {
	r.mu.Lock()
	r.msgs = append(r.msgs, gossipGot{From: from, Inc: inc, Data: string(msg)})
	r.mu.Unlock()
}

// eventsOf returns the member events about node, in order.
func (r *fullRecorder) eventsOf(node string) []memberSeen {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []memberSeen
	for _, e := range r.events {
		if e.Member.Name == node {
			out = append(out, e)
		}
	}
	return out
}

func (r *fullRecorder) lastEvent(node string) (memberSeen, bool) {
	evs := r.eventsOf(node)
	if len(evs) == 0 {
		return memberSeen{}, false
	}
	return evs[len(evs)-1], true
}

func (r *fullRecorder) hasEvent(node string, k MemberEventKind) bool {
	for _, e := range r.eventsOf(node) {
		if e.Kind == k {
			return true
		}
	}
	return false
}

func (r *fullRecorder) gotState(from string) (gossipGot, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.states {
		if s.From == from {
			return s, true
		}
	}
	return gossipGot{}, false
}

func (r *fullRecorder) msgsFrom(from string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.msgs {
		if m.From == from {
			out = append(out, m.Data)
		}
	}
	return out
}

type fullNode struct {
	*simNode
	full *fullRecorder
}

func startFull(t *testing.T, cfg Config) *fullNode {
	t.Helper()
	fr := &fullRecorder{recorder: newRecorder(), name: cfg.Name}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := Start(ctx, cfg, fr)
	require.NoError(t, err)
	return &fullNode{simNode: &simNode{Host: h, rec: fr.recorder}, full: fr}
}

func startFullCluster(t *testing.T, net *p2ptest.Network, n int) []*fullNode {
	t.Helper()
	var nodes []*fullNode
	for i := range n {
		var seeds []string
		if i > 0 {
			seeds = []string{nodes[0].GossipAddr()}
		}
		nodes = append(nodes, startFull(t, simConfig(net, fmt.Sprintf("n%02d@127.0.0.1", i), seeds...)))
	}
	return nodes
}

func sims(nodes []*fullNode) []*simNode {
	var out []*simNode
	for _, n := range nodes {
		out = append(out, n.simNode)
	}
	return out
}

// Every member is reported Joined on every other; a graceful Stop is
// reported Left (ErrLeft) and a crash Failed (ErrFailureDetected), on
// members with or without a connection to it.
func TestMemberEventsJoinedLeftFailed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New()
		defer net.Close()
		nodes := startFullCluster(t, net, 4)
		p2ptest.Eventually(t, 60*time.Second, func() bool { return meshed(sims(nodes)) })
		for _, n := range nodes {
			for _, o := range nodes {
				if n == o {
					continue
				}
				p2ptest.Eventually(t, 10*time.Second, func() bool { return n.full.hasEvent(o.Self().Name, MemberJoined) })
				ev := n.full.eventsOf(o.Self().Name)[0]
				require.Equal(t, MemberJoined, ev.Kind, "the first event is the join")
				require.Equal(t, o.Self().Incarnation, ev.Member.Incarnation)
				require.Equal(t, o.Self().ID, ev.Member.ID)
				require.Equal(t, o.GossipAddr(), ev.Member.GossipAddr)
				require.Equal(t, StateAlive, ev.Member.State)
				require.NoError(t, ev.Reason)
			}
		}
		a, b, c, d := nodes[0], nodes[1], nodes[2], nodes[3]
		cName, dName := c.Self().Name, d.Self().Name

		stopSim(t, c.simNode)
		for _, n := range []*fullNode{a, b, d} {
			p2ptest.Eventually(t, 30*time.Second, func() bool {
				e, ok := n.full.lastEvent(cName)
				return ok && e.Kind != MemberJoined
			}, "%s hears of c's leave", n.Self().Name)
			e, _ := n.full.lastEvent(cName)
			require.Equal(t, MemberLeft, e.Kind, "%v", e)
			require.ErrorIs(t, e.Reason, ErrLeft)
			require.Equal(t, StateLeft, e.Member.State)
			require.Equal(t, "left", e.Kind.String())
			require.NotContains(t, memberNames(n.Members()), cName)
		}

		d.crash(t)
		for _, n := range []*fullNode{a, b} {
			p2ptest.Eventually(t, 60*time.Second, func() bool {
				e, ok := n.full.lastEvent(dName)
				return ok && e.Kind != MemberJoined
			}, "%s hears of d's failure", n.Self().Name)
			e, _ := n.full.lastEvent(dName)
			require.Equal(t, MemberFailed, e.Kind, "%v", e)
			require.ErrorIs(t, e.Reason, ErrFailureDetected)
			require.Equal(t, StateFailed, e.Member.State)
			require.Equal(t, d.Self().Incarnation, e.Member.Incarnation)
			require.Len(t, n.full.eventsOf(dName), 2, "joined, failed")
		}
		stopSim(t, a.simNode, b.simNode)
		settle()
	})
}

// A member that fails while no connection to it is open (its connection
// broke first, in a partition) is still reported, by failure detection.
func TestMemberFailsWithoutConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New()
		defer net.Close()
		nodes := startFullCluster(t, net, 3)
		p2ptest.Eventually(t, 60*time.Second, func() bool { return meshed(sims(nodes)) })
		a, c := nodes[0], nodes[2]
		cName := c.Self().Name
		net.Isolate(cName)
		p2ptest.Eventually(t, 10*time.Second, func() bool { return !a.rec.isUp(cName) }, "connection down")
		require.ErrorIs(t, a.rec.downs(cName)[0], ErrConnClosed, "the connection broke before any failure was known")
		p2ptest.Eventually(t, 60*time.Second, func() bool { return a.full.hasEvent(cName, MemberFailed) }, "failure reported")
		e, _ := a.full.lastEvent(cName)
		require.False(t, e.connUp, "no connection was open when the failure was reported")
		require.ErrorIs(t, e.Reason, ErrFailureDetected)
		net.Heal()
		stopSim(t, sims(nodes)...)
		settle()
	})
}

// A crash and a quick restart on the same gossip address (a new
// incarnation taking the name before the old one was declared dead) is
// reported Replaced, with both incarnations.
func TestMemberReplaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New()
		defer net.Close()
		nodes := startFullCluster(t, net, 3)
		p2ptest.Eventually(t, 60*time.Second, func() bool { return meshed(sims(nodes)) })
		a, b, c := nodes[0], nodes[1], nodes[2]
		bName, bGossip, oldInc := b.Self().Name, b.GossipAddr(), b.Self().Incarnation
		b.crash(t)
		cfg := simConfig(net, bName, a.GossipAddr())
		cfg.GossipAddr = bGossip
		b2 := startFull(t, cfg)
		for _, n := range []*fullNode{a, c} {
			p2ptest.Eventually(t, 30*time.Second, func() bool { return n.full.hasEvent(bName, MemberReplaced) }, "%s sees b replaced", n.Self().Name)
			var kinds []MemberEventKind
			for _, e := range n.full.eventsOf(bName) {
				kinds = append(kinds, e.Kind)
				if e.Kind == MemberReplaced {
					require.Equal(t, oldInc, e.OldIncarnation)
					require.Equal(t, b2.Self().Incarnation, e.Member.Incarnation)
					require.ErrorIs(t, e.Reason, ErrReplaced)
					require.Contains(t, e.String(), "replaced")
				}
			}
			require.Equal(t, []MemberEventKind{MemberJoined, MemberReplaced}, kinds)
		}
		stopSim(t, a.simNode, c.simNode, b2.simNode)
		settle()
	})
}

// Hidden nodes never produce member events.
func TestHiddenNodeNoMemberEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New()
		defer net.Close()
		nodes := startFullCluster(t, net, 2)
		p2ptest.Eventually(t, 60*time.Second, func() bool { return meshed(sims(nodes)) })
		cfg := simConfig(net, "ctl@127.0.0.1")
		cfg.Hidden = true
		ctl := startFull(t, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := ctl.ConnectAddr(ctx, nodes[0].ListenAddrs()[0])
		require.NoError(t, err)
		p2ptest.Eventually(t, 10*time.Second, func() bool { return nodes[0].rec.isUp("ctl@127.0.0.1") })
		time.Sleep(30 * time.Second) // gossip rounds: a member event would have come
		stopSim(t, ctl.simNode)
		time.Sleep(30 * time.Second)
		for _, n := range nodes {
			require.Empty(t, n.full.eventsOf("ctl@127.0.0.1"))
		}
		ctl.full.mu.Lock()
		require.Empty(t, ctl.full.events, "a hidden node reports no members")
		ctl.full.mu.Unlock()
		require.ErrorIs(t, ctl.Broadcast("k", []byte("x")), ErrInvalidConfig)
		require.ErrorIs(t, ctl.SetTags(ctx, map[string]string{"a": "b"}), ErrInvalidConfig)
		stopSim(t, sims(nodes)...)
		settle()
	})
}

// Push/pull state reaches every member, naming its sender.
func TestGossipState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New()
		defer net.Close()
		nodes := startFullCluster(t, net, 4)
		p2ptest.Eventually(t, 60*time.Second, func() bool { return meshed(sims(nodes)) })
		p2ptest.Eventually(t, 300*time.Second, func() bool {
			for _, n := range nodes {
				for _, o := range nodes {
					if n == o {
						continue
					}
					if _, ok := n.full.gotState(o.Self().Name); !ok {
						return false
					}
				}
			}
			return true
		}, "every state everywhere")
		for _, n := range nodes {
			for _, o := range nodes {
				if n == o {
					continue
				}
				s, _ := n.full.gotState(o.Self().Name)
				require.Equal(t, "state of "+o.Self().Name, s.Data)
				require.Equal(t, o.Self().Incarnation, s.Inc)
			}
			_, own := n.full.gotState(n.Self().Name)
			require.False(t, own, "a node never merges its own state")
		}
		stopSim(t, sims(nodes)...)
		settle()
	})
}

// A broadcast reaches every member with its sender; a newer one with the
// same key replaces an older one still queued.
func TestBroadcast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New()
		defer net.Close()
		nodes := startFullCluster(t, net, 4)
		p2ptest.Eventually(t, 60*time.Second, func() bool { return meshed(sims(nodes)) })
		a := nodes[0]
		aName := a.Self().Name
		// Hold a's packets while both are queued, so the older one cannot
		// leave before the newer one replaces it.
		for _, o := range nodes[1:] {
			net.Drop(aName, o.Self().Name, 0.9999)
		}
		require.NoError(t, a.Broadcast("svc", []byte("old")))
		require.NoError(t, a.Broadcast("svc", []byte("new")))
		require.NoError(t, a.Broadcast("other", []byte("kept")))
		require.Equal(t, 2, a.broadcasts.NumQueued())
		for _, o := range nodes[1:] {
			net.Drop(aName, o.Self().Name, 0)
		}
		p2ptest.Eventually(t, 60*time.Second, func() bool {
			for _, o := range nodes[1:] {
				got := o.full.msgsFrom(aName)
				if !slices.Contains(got, "new") || !slices.Contains(got, "kept") {
					return false
				}
			}
			return true
		}, "broadcasts everywhere")
		for _, o := range nodes[1:] {
			require.NotContains(t, o.full.msgsFrom(aName), "old", "replaced by the newer broadcast with its key")
			o.full.mu.Lock()
			for _, m := range o.full.msgs {
				require.Equal(t, a.Self().Incarnation, m.Inc)
			}
			o.full.mu.Unlock()
		}
		require.Empty(t, a.full.msgsFrom(aName), "no broadcast to oneself")
		require.ErrorIs(t, a.Broadcast("big", make([]byte, MaxBroadcastSize+1)), ErrBroadcastTooLarge)
		require.NoError(t, a.Broadcast("max", make([]byte, MaxBroadcastSize)))
		stopSim(t, sims(nodes)...)
		settle()
	})
}

// Tags are visible on other members and follow SetTags; too large tags
// are refused and change nothing.
func TestTags(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New()
		defer net.Close()
		cfg := simConfig(net, "n00@127.0.0.1")
		cfg.Tags = map[string]string{"svc": "registry"}
		a := startFull(t, cfg)
		b := startFull(t, simConfig(net, "n01@127.0.0.1", a.GossipAddr()))
		c := startFull(t, simConfig(net, "n02@127.0.0.1", a.GossipAddr()))
		nodes := []*fullNode{a, b, c}
		p2ptest.Eventually(t, 60*time.Second, func() bool { return meshed(sims(nodes)) })
		tagsOn := func(n *fullNode, name string) map[string]string {
			for _, m := range n.Members() {
				if m.Name == name {
					return m.Tags
				}
			}
			return nil
		}
		for _, n := range nodes {
			require.Equal(t, map[string]string{"svc": "registry"}, tagsOn(n, a.Self().Name), "on %s", n.Self().Name)
			require.Nil(t, tagsOn(n, b.Self().Name))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		want := map[string]string{"svc": "registry,groups", "zone": "eu-1"}
		require.NoError(t, a.SetTags(ctx, want))
		for _, n := range nodes[1:] {
			p2ptest.Eventually(t, 30*time.Second, func() bool { return fmt.Sprint(tagsOn(n, a.Self().Name)) == fmt.Sprint(want) }, "updated tags on %s", n.Self().Name)
			e, ok := n.full.lastEvent(a.Self().Name)
			require.True(t, ok)
			require.Equal(t, MemberUpdated, e.Kind)
			require.Equal(t, want, e.Member.Tags)
		}
		big := map[string]string{"k": string(make([]byte, MaxTagsSize))}
		require.ErrorIs(t, a.SetTags(ctx, big), ErrTagsTooLarge)
		require.ErrorIs(t, a.SetTags(ctx, map[string]string{"": "x"}), ErrInvalidTags)
		require.Equal(t, want, tagsOn(a, a.Self().Name), "a refused SetTags changes nothing")
		time.Sleep(5 * time.Second)
		require.Equal(t, want, tagsOn(b, a.Self().Name))
		bad := simConfig(net, "n09@127.0.0.1")
		bad.Tags = big
		require.ErrorIs(t, bad.Validate(), ErrInvalidConfig)
		require.ErrorIs(t, bad.Validate(), ErrTagsTooLarge)
		stopSim(t, sims(nodes)...)
		settle()
	})
}
