package nodal

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// recService records what a Service is told, in order.
type recService struct {
	mu      sync.Mutex
	events  []string
	frames  map[string][][]byte // by sender name
	onFrame func(from NodeRef, data []byte)
	stop    func(ctx context.Context) error
}

func newRecService() *recService { return &recService{frames: map[string][][]byte{}} }

func (s *recService) add(ev string) {
	s.mu.Lock()
	s.events = append(s.events, ev)
	s.mu.Unlock()
}

func (s *recService) HandleFrame(from NodeRef, data []byte) {
	s.mu.Lock()
	s.events = append(s.events, "frame "+from.String())
	s.frames[from.Name] = append(s.frames[from.Name], data)
	f := s.onFrame
	s.mu.Unlock()
	if f != nil {
		f(from, data)
	}
}
func (s *recService) NodeUp(node NodeRef)              { s.add("up " + node.String()) }
func (s *recService) NodeDown(node NodeRef, err error) { s.add("down " + node.String()) }
func (s *recService) snapshot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}
func (s *recService) count(prefix string) int {
	n := 0
	for _, e := range s.snapshot() {
		if len(e) >= len(prefix) && e[:len(prefix)] == prefix {
			n++
		}
	}
	return n
}

// stoppingService is a recService with a stop hook.
type stoppingService struct{ *recService }

func (s stoppingService) Stop(ctx context.Context) error { return s.stop(ctx) }

// checkConnectionOrder checks net_kernel's order in a service's events: per
// NodeRef, up, then frames, then down; and a node's next incarnation comes
// up only after the previous one went down.
func checkConnectionOrder(t *testing.T, events []string) {
	t.Helper()
	state := map[string]string{}  // NodeRef -> "up" | "down"
	lastOf := map[string]string{} // node name -> current NodeRef
	for i, e := range events {
		var kind, ref string
		_, err := fmt.Sscanf(e, "%s %s", &kind, &ref)
		require.NoError(t, err)
		name := ref[:len(ref)-len(ref[indexHash(ref):])]
		switch kind {
		case "up":
			require.NotEqual(t, "up", state[ref], "event %d: second up of %s", i, ref)
			if prev, ok := lastOf[name]; ok && prev != ref {
				require.Equal(t, "down", state[prev], "event %d: %s up before %s went down", i, ref, prev)
			}
			state[ref], lastOf[name] = "up", ref
		case "frame":
			require.Equal(t, "up", state[ref], "event %d: frame of %s outside up..down: %v", i, ref, events)
		case "down":
			require.Equal(t, "up", state[ref], "event %d: down of %s without up", i, ref)
			state[ref] = "down"
		}
	}
}

func indexHash(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '#' {
			return i
		}
	}
	return len(s)
}

// Up before the first frame of a connection, down after its last, and the
// down of an old connection before the up of a new one — with frames in
// flight while the sender restarts with a new incarnation.
func TestServiceEventOrderWithFramesInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New(p2ptest.WithSeed(1))
		defer net.Close()
		nodes := startSimCluster(t, net, "a@10.0.0.1", "b@10.0.0.2")
		a, b := nodes[0], nodes[1]
		rec := newRecService()
		require.NoError(t, a.AttachService("rec", rec))
		require.Equal(t, 1, rec.count("up "), "late attach gets the connected node first")

		send := func(n *Node, count int) {
			for i := range count {
				if err := n.TrySendService(a.Name(), "rec", []byte{byte(i)}); err != nil {
					return // the connection went down under us
				}
			}
		}
		send(b, 200)
		oldInc := b.Incarnation()
		// Stop b while frames are in flight, then start it again: a new
		// incarnation under the same name.
		go send(b, 500)
		stopSimNode(b)
		cfg := DefaultLocalConfig("b@10.0.0.2", testCookie)
		cfg.P2P.Network = net
		cfg.Stdout = &distBuffer{}
		cfg.Seeds = []string{a.GossipAddr()}
		b2, err := Start(context.Background(), cfg)
		require.NoError(t, err)
		defer stopSimNodes([]*Node{a, b2})
		require.NotEqual(t, oldInc, b2.Incarnation())
		p2ptest.Eventually(t, 60*time.Second, func() bool { return slices.Contains(a.Nodes(), b2.Name()) }, "b restarted and connected")
		send(b2, 50)
		newRef := NodeRef{Name: b2.Name(), Incarnation: b2.Incarnation()}.String()
		p2ptest.Eventually(t, 30*time.Second, func() bool { return rec.count("frame "+newRef) == 50 }, "frames of the new b")
		ev := rec.snapshot()
		checkConnectionOrder(t, ev)
		require.Contains(t, ev, "down "+NodeRef{Name: b.Name(), Incarnation: oldInc}.String())
		require.GreaterOrEqual(t, rec.count("frame "+NodeRef{Name: b.Name(), Incarnation: oldInc}.String()), 200)
	})
}

// stopSimNode stops one node of a sim cluster.
func stopSimNode(n *Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = n.Stop(ctx)
}

// A service frame takes the path of actor signals: sent right after a
// message to a pid on a member that is not connected yet, it waits in the
// same auto-connect queue and arrives after the message.
func TestServiceFrameNeverOvertakesSignal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New(p2ptest.WithSeed(1))
		defer net.Close()
		nodes := startSimCluster(t, net, "a@10.0.0.1", "b@10.0.0.2")
		defer stopSimNodes(nodes)
		a, b := nodes[0], nodes[1]
		// The target never receives: its mailbox length counts what arrived.
		target, err := b.Spawn(func(p *Process) error { <-p.Context().Done(); return nil })
		require.NoError(t, err)
		seen := make(chan int, 100)
		rec := newRecService()
		rec.onFrame = func(from NodeRef, data []byte) {
			info, err := b.ProcessInfo(target)
			if err != nil {
				seen <- -1
				return
			}
			seen <- info.MessageQueueLen
		}
		require.NoError(t, b.AttachService("rec", rec))
		const perRound = 100
		for round := 1; round <= 5; round++ {
			require.NoError(t, a.Disconnect(b.Name()))
			synctest.Wait() // both sides handled the disconnect; no timer has fired yet
			require.NotContains(t, a.Nodes(), b.Name(), "disconnected")
			for i := range perRound {
				require.NoError(t, a.Send(target, i))
			}
			require.NoError(t, a.SendService(context.Background(), b.Name(), "rec", []byte("after")))
			select {
			case got := <-seen:
				require.Equal(t, round*perRound, got, "round %d: the service frame overtook messages sent before it", round)
			case <-time.After(30 * time.Second):
				t.Fatal("service frame never arrived")
			}
		}
	})
}

// TrySendService never blocks, also inside HandleFrame with the outbound
// queue full (the receiver has stopped reading).
func TestTrySendServiceInsideHandleFrameWithFullQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New(p2ptest.WithSeed(1))
		defer net.Close()
		nodes := startSimClusterWith(t, net, func(c *Config) { c.P2P.SendQueueBytes = 64 << 10 }, "a@10.0.0.1", "b@10.0.0.2")
		defer stopSimNodes(nodes)
		a, b := nodes[0], nodes[1]

		release := make(chan struct{})
		var blockOnce sync.Once
		sink := newRecService()
		sink.onFrame = func(NodeRef, []byte) { blockOnce.Do(func() { <-release }) } // a stops reading b
		require.NoError(t, a.AttachService("svc", sink))

		result := make(chan error, 1)
		echo := newRecService()
		echo.onFrame = func(from NodeRef, data []byte) {
			payload := make([]byte, 8<<10)
			for range 10_000 {
				if err := b.TrySendService(from.Name, "svc", payload); err != nil {
					result <- err
					return
				}
			}
			result <- nil
		}
		require.NoError(t, b.AttachService("svc", echo))
		require.NoError(t, a.SendService(context.Background(), b.Name(), "svc", []byte("go")))
		select {
		case err := <-result:
			require.ErrorIs(t, err, ErrQueueFull)
		case <-time.After(30 * time.Second):
			t.Fatal("TrySendService blocked")
		}
		close(release)
	})
}

// A frame for a service that is not attached is counted per service, not as
// a decode error, and logged once.
func TestServiceUnknownCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New(p2ptest.WithSeed(1))
		defer net.Close()
		nodes := startSimCluster(t, net, "a@10.0.0.1", "b@10.0.0.2")
		defer stopSimNodes(nodes)
		a, b := nodes[0], nodes[1]
		for range 3 {
			require.NoError(t, a.SendService(context.Background(), b.Name(), "nope", []byte("x")))
		}
		p2ptest.Eventually(t, 10*time.Second, func() bool { return b.DistStats().UnknownService["nope"] == 3 }, "counted")
		require.Zero(t, b.DistStats().DecodeErrors)
		// To itself as well.
		require.NoError(t, a.SendService(context.Background(), a.Name(), "nope", []byte("x")))
		p2ptest.Eventually(t, 10*time.Second, func() bool { return a.DistStats().UnknownService["nope"] == 1 }, "counted at self")
	})
}

// Sending to the own node works: the frame reaches the own service, named
// with the own NodeRef.
func TestServiceSendToSelf(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, err := Start(context.Background(), Config{})
		require.NoError(t, err)
		defer stopSimNode(n)
		rec := newRecService()
		require.NoError(t, n.AttachService("rec", rec))
		require.NoError(t, n.SendService(context.Background(), n.Name(), "rec", []byte("one")))
		require.NoError(t, n.TrySendService(n.Name(), "rec", []byte("two")))
		synctest.Wait()
		self := NodeRef{Name: n.Name(), Incarnation: n.Incarnation()}
		require.Equal(t, []string{"frame " + self.String(), "frame " + self.String()}, rec.snapshot())
		require.Equal(t, [][]byte{[]byte("one"), []byte("two")}, rec.frames[n.Name()])
		require.ErrorIs(t, n.SendService(context.Background(), "orders", "rec", nil), ErrBadNodeName)
	})
}

// Node.Stop stops the services first, in the reverse order of attachment,
// while processes and the network still run, and waits for them.
func TestServicesStoppedByNodeStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New(p2ptest.WithSeed(1))
		defer net.Close()
		nodes := startSimCluster(t, net, "a@10.0.0.1", "b@10.0.0.2")
		a, b := nodes[0], nodes[1]
		defer stopSimNodes([]*Node{b})
		_, err := a.Spawn(blockForever)
		require.NoError(t, err)
		var mu sync.Mutex
		var order []string
		for _, name := range []string{"first", "second"} {
			s := stoppingService{newRecService()}
			quit, done := make(chan struct{}), make(chan struct{})
			go func() { defer close(done); <-quit }() // the service's own goroutine
			s.stop = func(ctx context.Context) error {
				mu.Lock()
				order = append(order, fmt.Sprintf("%s procs=%d nodes=%d", name, len(a.Processes()), len(a.Nodes())))
				mu.Unlock()
				close(quit)
				select {
				case <-done:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			require.NoError(t, a.AttachService(name, s))
		}
		failing := stoppingService{newRecService()}
		failing.stop = func(context.Context) error { return errors.New("boom") }
		require.NoError(t, a.AttachService("failing", failing))
		err = a.Stop(context.Background())
		require.ErrorContains(t, err, "boom")
		require.Len(t, order, 2)
		require.Regexp(t, `^second procs=[1-9]\d* nodes=1$`, order[0])
		require.Regexp(t, `^first procs=[1-9]\d* nodes=1$`, order[1])
		require.Empty(t, a.Services())
		time.Sleep(10 * time.Second) // memberlist's probes end after Shutdown
	})
}

// Frames naming ever new services (a hostile or broken peer) cannot make a
// node remember without bound: past 256 names they count as one.
func TestServiceUnknownBounded(t *testing.T) {
	n, err := Start(context.Background(), Config{})
	require.NoError(t, err)
	defer stopSimNode(n)
	from := NodeRef{Name: "x@host", Incarnation: 1}
	for i := range 1000 {
		n.svc.countUnknown(from, fmt.Sprint("svc-", i))
	}
	got := n.DistStats().UnknownService
	require.Len(t, got, maxUnknownServices+1)
	require.Equal(t, uint64(1000-maxUnknownServices), got[UnknownServiceOther])
}
