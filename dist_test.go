package nodal

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal/p2p"
)

const testCookie = "dist-test-cookie"

// stopNodes stops every node; tests defer it after leaktest's defer so it
// runs first.
func stopNodes(nodes []*Node) {
	for _, n := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = n.Stop(ctx)
		cancel()
	}
}

// startDistCluster starts n distributed nodes on loopback that join the first
// one, and waits until they see each other.
func startDistCluster(t *testing.T, names ...string) []*Node {
	t.Helper()
	return startDistClusterWith(t, nil, names...)
}

// startDistClusterWith is startDistCluster with mod applied to every
// node's config.
func startDistClusterWith(t *testing.T, mod func(*Config), names ...string) []*Node {
	t.Helper()
	var nodes []*Node
	var seed string
	for _, name := range names {
		cfg := DefaultLocalConfig(name, testCookie)
		if seed != "" {
			cfg.Seeds = []string{seed}
		}
		cfg.Stdout = &distBuffer{}
		if mod != nil {
			mod(&cfg)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		n, err := Start(ctx, cfg)
		cancel()
		require.NoError(t, err, "start %s", name)
		nodes = append(nodes, n)
		if seed == "" {
			seed = n.dist.host.GossipAddr()
		}
	}
	distWait(t, 20*time.Second, func() bool {
		for _, n := range nodes {
			if len(n.Nodes()) != len(nodes)-1 {
				return false
			}
		}
		return true
	}, "full mesh of %d nodes", len(nodes))
	return nodes
}

func distWait(t tb, d time.Duration, cond func() bool, what string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for "+what, args...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type distBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *distBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *distBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// recv receives one message within a few seconds.
func distRecv(t tb, p *Process) any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := p.Receive(ctx)
	require.NoError(t, err)
	return m
}

// distInProcess runs fn as a process on n and waits for it. fn's
// assertions go to its procT (not the test's t, whose FailNow must run on
// the test goroutine); a failed one ends the process and fails the test.
func distInProcess(t *testing.T, n *Node, fn func(t *procT, p *Process) error) {
	t.Helper()
	pt := newProcT()
	done := make(chan error, 1)
	_, err := n.Spawn(func(p *Process) (err error) {
		defer func() { done <- err }()
		defer func() {
			if r := recover(); r != nil {
				if e, ok := r.(errProcAssert); ok {
					err = e
					return
				}
				panic(r)
			}
		}()
		return fn(pt, p)
	})
	require.NoError(t, err)
	select {
	case err := <-done:
		pt.check(t)
		require.NoError(t, err)
	case <-time.After(60 * time.Second):
		t.Fatal("process did not finish")
	}
}

func TestDistRemoteSendFIFO(t *testing.T) {
	defer leaktest.AfterTest(t)()
	nodes := startDistCluster(t, "a@127.0.0.1", "b@127.0.0.1")
	defer stopNodes(nodes)
	a, b := nodes[0], nodes[1]
	got := make(chan []int, 1)
	pt := newProcT()
	sink, err := b.Spawn(func(p *Process) error {
		var seen []int
		for len(seen) < 10000 {
			m := distRecv(pt, p)
			seen = append(seen, m.(int))
		}
		got <- seen
		return nil
	})
	require.NoError(t, err)
	distInProcess(t, a, func(t *procT, p *Process) error {
		for i := 0; i < 10000; i++ {
			p.Send(sink, i)
		}
		return nil
	})
	seen := waitForWithin(t, pt, got, 60*time.Second, "10000 messages")
	for i, v := range seen {
		require.Equal(t, i, v, "Erlang: messages between a pair of processes arrive in order")
	}
}

func TestDistSendName(t *testing.T) {
	defer leaktest.AfterTest(t)()
	nodes := startDistCluster(t, "a@127.0.0.1", "b@127.0.0.1")
	defer stopNodes(nodes)
	a, b := nodes[0], nodes[1]
	got := make(chan any, 1)
	pt := newProcT()
	_, err := b.Spawn(func(p *Process) error {
		got <- distRecv(pt, p)
		return nil
	}, WithName("echo"))
	require.NoError(t, err)
	require.NoError(t, a.SendNode("b@127.0.0.1", "echo", "hi"))
	require.Equal(t, "hi", waitFor(t, pt, got, "the message"))
	// Unknown remote name: dropped silently (Erlang).
	require.NoError(t, a.SendNode("b@127.0.0.1", "nobody", "x"))
	// Unregistered type: error at the sender.
	type notRegistered struct{ X int }
	require.ErrorIs(t, a.SendNode("b@127.0.0.1", "echo", notRegistered{1}), ErrUnregisteredType)
}

func TestDistRemoteMonitorAndLinkNormalExit(t *testing.T) {
	defer leaktest.AfterTest(t)()
	nodes := startDistCluster(t, "a@127.0.0.1", "b@127.0.0.1")
	defer stopNodes(nodes)
	a, b := nodes[0], nodes[1]
	target, err := b.Spawn(func(p *Process) error {
		m, err := p.Receive(p.Context())
		if err != nil {
			return err
		}
		return m.(error)
	})
	require.NoError(t, err)
	distInProcess(t, a, func(t *procT, p *Process) error {
		p.TrapExit(true)
		p.Link(target)
		ref := p.Monitor(target)
		// Make sure the link and monitor reached b before the exit.
		require.Eventually(t, func() bool {
			info, err := b.ProcessInfo(target)
			return err == nil && len(info.Links) == 1 && len(info.MonitoredBy) == 1
		}, 10*time.Second, 5*time.Millisecond)
		p.Send(target, error(&ShutdownError{Reason: errors.New("bye")}))
		var down Down
		var exit Exit
		for down.Pid.IsZero() || exit.From.IsZero() {
			switch m := distRecv(t, p).(type) {
			case Down:
				down = m
			case Exit:
				exit = m
			}
		}
		require.Equal(t, ref, down.Ref)
		require.Equal(t, target, down.Pid)
		var se *ShutdownError
		require.ErrorAs(t, down.Reason, &se, "the real exit reason crosses the network")
		require.Equal(t, target, exit.From)
		require.ErrorAs(t, exit.Reason, &se)
		return nil
	})
}

func TestDistMonitorDeadRemotePid(t *testing.T) {
	defer leaktest.AfterTest(t)()
	nodes := startDistCluster(t, "a@127.0.0.1", "b@127.0.0.1")
	defer stopNodes(nodes)
	a, b := nodes[0], nodes[1]
	dead, err := b.Spawn(func(p *Process) error { return nil })
	require.NoError(t, err)
	distWait(t, 5*time.Second, func() bool { _, err := b.ProcessInfo(dead); return err != nil }, "exit")
	distInProcess(t, a, func(t *procT, p *Process) error {
		ref := p.Monitor(dead)
		d := distRecv(t, p).(Down)
		require.Equal(t, ref, d.Ref)
		require.ErrorIs(t, d.Reason, ReasonNoProc, "Erlang: monitoring a dead remote pid gives DOWN noproc")
		// A pid of an unknown node: noconnection at once.
		ghost := Pid{Node: "ghost@127.0.0.1", ID: 1, Incarnation: 1}
		ref = p.Monitor(ghost)
		d = distRecv(t, p).(Down)
		require.Equal(t, ref, d.Ref)
		require.ErrorIs(t, d.Reason, ReasonNoConnection)
		// A pid of an earlier start of a connected node is dead.
		stale := Pid{Node: b.Name(), ID: 1, Incarnation: b.Incarnation() - 1}
		p.Monitor(stale)
		d = distRecv(t, p).(Down)
		require.ErrorIs(t, d.Reason, ReasonNoProc)
		return nil
	})
}

func TestDistNodeDownFiresNoConnection(t *testing.T) {
	defer leaktest.AfterTest(t)()
	nodes := startDistCluster(t, "a@127.0.0.1", "b@127.0.0.1")
	defer stopNodes(nodes)
	a, b := nodes[0], nodes[1]
	target, err := b.Spawn(func(p *Process) error {
		<-p.Context().Done()
		return nil
	})
	require.NoError(t, err)
	ready := make(chan struct{})
	result := make(chan []any, 1)
	pt := newProcT()
	_, err = a.Spawn(func(p *Process) error {
		p.TrapExit(true)
		p.Link(target)
		p.Monitor(target)
		p.MonitorNode(b.Name())
		p.MonitorNodes(true, NodeVisible)
		close(ready)
		var got []any
		for len(got) < 4 {
			got = append(got, distRecv(pt, p))
		}
		result <- got
		return nil
	})
	require.NoError(t, err)
	waitFor(t, pt, ready, "the watcher to link and monitor")
	distWait(t, 10*time.Second, func() bool {
		info, err := b.ProcessInfo(target)
		return err == nil && len(info.Links) == 1 && len(info.MonitoredBy) == 1
	}, "link and monitor on b")
	// Cut the connection from a's side: b's processes are unreachable.
	require.NoError(t, a.Disconnect(b.Name()))
	got := waitFor(t, pt, result, "exit, down and two node downs")
	var kinds []string
	for _, m := range got {
		switch m := m.(type) {
		case Exit:
			require.ErrorIs(t, m.Reason, ReasonNoConnection)
			kinds = append(kinds, "exit")
		case Down:
			require.ErrorIs(t, m.Reason, ReasonNoConnection)
			kinds = append(kinds, "down")
		case NodeDown:
			require.Equal(t, b.Name(), m.Node)
			kinds = append(kinds, "nodedown")
		default:
			t.Fatalf("unexpected %#v", m)
		}
	}
	require.ElementsMatch(t, []string{"exit", "down", "nodedown", "nodedown"}, kinds)
}

func TestDistRemoteSpawnAndGroupLeader(t *testing.T) {
	defer leaktest.AfterTest(t)()
	nodes := startDistCluster(t, "a@127.0.0.1", "b@127.0.0.1")
	defer stopNodes(nodes)
	a, b := nodes[0], nodes[1]
	require.NoError(t, b.RegisterBehaviour("greeter", func(p *Process, args any) error {
		p.Printf("hello %v from %s\n", args, p.Node().Name())
		return fmt.Errorf("done greeting")
	}))
	distInProcess(t, a, func(t *procT, p *Process) error {
		pid, ref, err := p.SpawnMonitorOn(context.Background(), b.Name(), "greeter", "world")
		require.NoError(t, err)
		require.Equal(t, b.Name(), pid.Node)
		d := distRecv(t, p).(Down)
		require.Equal(t, ref, d.Ref)
		require.Equal(t, "done greeting", d.Reason.Error())
		_, err = p.SpawnOn(context.Background(), b.Name(), "nope", nil)
		require.ErrorIs(t, err, ErrUnknownBehaviour)
		return nil
	})
	// Output of the remote process shows on the spawner's node (a).
	distWait(t, 5*time.Second, func() bool {
		return strings.Contains(a.cfg.Stdout.(*distBuffer).String(), "hello world from b@127.0.0.1")
	}, "output on a")
	require.NotContains(t, b.cfg.Stdout.(*distBuffer).String(), "hello")
}

func TestDistCall(t *testing.T) {
	defer leaktest.AfterTest(t)()
	nodes := startDistCluster(t, "a@127.0.0.1", "b@127.0.0.1")
	defer stopNodes(nodes)
	a, b := nodes[0], nodes[1]
	echo, err := b.SpawnActor(distEchoActor{}, WithName("echo"))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := a.Call(ctx, echo, "ping")
	require.NoError(t, err)
	require.Equal(t, "ping", r)
	r, err = a.CallName(ctx, b.Name(), "echo", "by name")
	require.NoError(t, err)
	require.Equal(t, "by name", r)
	_, err = a.CallName(ctx, b.Name(), "missing", "x")
	require.ErrorIs(t, err, ErrNotRegistered)
}

type distEchoActor struct{}

func (distEchoActor) Init(*Process) error                                 { return nil }
func (distEchoActor) HandleMessage(*Process, any) error                   { return nil }
func (distEchoActor) HandleCall(_ *Process, _ From, req any) (any, error) { return req, nil }

func TestDistWrongCookieRefused(t *testing.T) {
	defer leaktest.AfterTest(t)()
	nodes := startDistCluster(t, "a@127.0.0.1")
	defer stopNodes(nodes)
	cfg := DefaultLocalConfig("z@127.0.0.1", "another-cookie")
	cfg.Seeds = []string{nodes[0].dist.host.GossipAddr()}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Start(ctx, cfg)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "another-cookie")
	require.ErrorIs(t, err, p2p.ErrCookieMismatch, "the error says why")
	require.Empty(t, nodes[0].Nodes())
}

// A value the codec cannot encode fails at the sender; the link survives
// and a later message arrives.
func TestDistSendUnencodableFailsAtSender(t *testing.T) {
	defer leaktest.AfterTest(t)()
	nodes := startDistCluster(t, "a@127.0.0.1", "b@127.0.0.1")
	defer stopNodes(nodes)
	a, b := nodes[0], nodes[1]
	got := make(chan any, 1)
	pt := newProcT()
	sink, err := b.Spawn(func(p *Process) error {
		got <- distRecv(pt, p)
		return nil
	})
	require.NoError(t, err)
	type secret struct{ F func() }
	err = a.Send(sink, secret{})
	require.ErrorIs(t, err, ErrUnregisteredType)
	require.ErrorIs(t, err, ErrCodec)
	require.Contains(t, err.Error(), "secret")
	distInProcess(t, a, func(t *procT, p *Process) error {
		require.ErrorIs(t, p.Send(sink, make(chan int)), ErrCodec)
		// A call whose request cannot be encoded fails at once, and leaves
		// no monitor behind.
		_, err := p.Call(context.Background(), sink, secret{})
		require.ErrorIs(t, err, ErrUnregisteredType)
		info, ierr := a.ProcessInfo(p.Self())
		require.NoError(t, ierr)
		require.Empty(t, info.Monitors)
		return p.Send(sink, "still connected")
	})
	require.Equal(t, "still connected", waitFor(t, pt, got, "the later message"))
	require.Equal(t, []string{b.Name()}, a.Nodes())
}

// A message larger than the frame limit fails at the sender with an error
// that says so; nothing is sent, the connection stays up and later
// messages arrive.
func TestDistOversizedMessageFailsAtSender(t *testing.T) {
	defer leaktest.AfterTest(t)()
	const limit = 64 << 10
	nodes := startDistClusterWith(t, func(c *Config) { c.P2P.MaxFrameSize = limit }, "a@127.0.0.1", "b@127.0.0.1")
	defer stopNodes(nodes)
	a, b := nodes[0], nodes[1]
	got := make(chan any, 2)
	sink, err := b.Spawn(func(p *Process) error {
		for {
			m, err := p.Receive(p.Context())
			if err != nil {
				return nil
			}
			got <- m
		}
	})
	require.NoError(t, err)
	err = a.Send(sink, make([]byte, limit+1))
	require.ErrorIs(t, err, p2p.ErrFrameTooLarge)
	require.Contains(t, err.Error(), sink.String())
	require.NoError(t, a.Send(sink, make([]byte, limit/2)))
	require.NoError(t, a.Send(sink, "after"))
	first := waitFor(t, nil, got, "the half-limit message")
	require.IsType(t, []byte(nil), first)
	require.Len(t, first.([]byte), limit/2)
	require.Equal(t, "after", waitFor(t, nil, got, "the later message"))
	require.Equal(t, []string{b.Name()}, a.Nodes())
}

// A frame the receiver cannot decode is dropped, counted and logged, and
// the connection survives.
func TestDistUndecodableFrameDropped(t *testing.T) {
	defer leaktest.AfterTest(t)()
	nodes := startDistCluster(t, "a@127.0.0.1", "b@127.0.0.1")
	defer stopNodes(nodes)
	a, b := nodes[0], nodes[1]
	type onlyOnA struct{ N int }
	registerOnlyOn(t, a, "test.onlyOnA", onlyOnA{})
	got := make(chan any, 1)
	pt := newProcT()
	sink, err := b.Spawn(func(p *Process) error {
		got <- distRecv(pt, p)
		return nil
	})
	require.NoError(t, err)
	require.NoError(t, a.Send(sink, onlyOnA{N: 1}))
	require.NoError(t, a.dist.host.Send(context.Background(), b.Name(), []byte{0xee, 1, 2, 3}))
	require.NoError(t, a.Send(sink, "after the bad frames"))
	require.Equal(t, "after the bad frames", waitFor(t, pt, got, "the message after the bad frames"))
	require.Equal(t, uint64(2), b.DistStats().DecodeErrors)
	require.Equal(t, []string{a.Name()}, b.Nodes())
}

// registerOnlyOn gives n a codec of its own that knows v as name, a type
// the other nodes' codecs do not know.
func registerOnlyOn(t *testing.T, n *Node, name string, v any) {
	t.Helper()
	c := NewCodec()
	require.NoError(t, c.Register(name, v))
	n.dist.codec = c
}

// A call whose reply cannot be decoded on the caller's node (a type only
// the callee registered) fails at once with the codec's error instead of
// waiting out its deadline; the connection stays up.
func TestDistCallUndecodableReplyFails(t *testing.T) {
	defer leaktest.AfterTest(t)()
	nodes := startDistCluster(t, "a@127.0.0.1", "b@127.0.0.1")
	defer stopNodes(nodes)
	a, b := nodes[0], nodes[1]
	type onlyOnA struct{ N int }
	registerOnlyOn(t, a, "test.replyOnlyOnA", onlyOnA{})
	server, err := a.Spawn(func(p *Process) error {
		for {
			m, err := p.Receive(context.Background())
			if err != nil {
				return nil
			}
			if req, ok := m.(CallRequest); ok {
				if req.Req == "bad" {
					p.Reply(req.From, onlyOnA{N: 1})
				} else {
					p.Reply(req.From, req.Req)
				}
			}
		}
	})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = b.Call(ctx, server, "bad")
	require.ErrorIs(t, err, ErrCodec)
	require.ErrorIs(t, err, ErrUnregisteredType)
	require.Contains(t, err.Error(), "test.replyOnlyOnA")
	require.NoError(t, ctx.Err(), "failed at once, not at the deadline")
	r, err := b.Call(ctx, server, "good")
	require.NoError(t, err)
	require.Equal(t, "good", r)
	require.Equal(t, uint64(1), b.DistStats().DecodeErrors)
	require.Equal(t, []string{a.Name()}, b.Nodes())
}

// Memory stays bounded when a receiver is slower than its sender: the
// mailbox stops growing at the backlog bound (the connection pauses), and
// nothing is lost once the receiver catches up.
func TestDistSlowReceiverBacklogBounded(t *testing.T) {
	defer leaktest.AfterTest(t)()
	var nodes []*Node
	defer func() { stopNodes(nodes) }()
	const backlog, total = 1000, 50_000
	for i, name := range []string{"a@127.0.0.1", "b@127.0.0.1"} {
		cfg := DefaultLocalConfig(name, testCookie)
		cfg.RemoteBacklog = backlog
		cfg.P2P.SendQueueBytes = 16 << 10
		if i > 0 {
			cfg.Seeds = []string{nodes[0].dist.host.GossipAddr()}
		}
		n, err := Start(context.Background(), cfg)
		require.NoError(t, err)
		nodes = append(nodes, n)
	}
	a, b := nodes[0], nodes[1]
	distWait(t, 20*time.Second, func() bool { return len(a.Nodes()) == 1 && len(b.Nodes()) == 1 }, "mesh")
	release := make(chan struct{})
	done := make(chan int, 1)
	pt := newProcT()
	sink, err := b.Spawn(func(p *Process) error {
		select {
		case <-release:
		case <-p.Context().Done():
			return nil
		}
		for i := 0; i < total; i++ {
			m := distRecv(pt, p)
			if m.(int) != i {
				return fmt.Errorf("got %v, want %d", m, i)
			}
		}
		done <- total
		return nil
	})
	require.NoError(t, err)
	_, err = a.Spawn(func(p *Process) error {
		for i := 0; i < total; i++ {
			if err := p.Send(sink, i); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	distWait(t, 30*time.Second, func() bool { return b.DistStats().Throttled > 0 }, "reader paused")
	info, err := b.ProcessInfo(sink)
	require.NoError(t, err)
	require.LessOrEqual(t, info.MessageQueueLen, 2*backlog, "mailbox bounded by RemoteBacklog")
	close(release)
	require.Equal(t, total, waitForWithin(t, pt, done, 60*time.Second, "the receiver to get every message"))
}

// A hidden node (a tool) reaches a node knowing only its listen address and
// the cookie; it never shows in Nodes(), only in HiddenNodes(), and node
// monitors for hidden nodes see it come and go.
func TestDistHiddenNode(t *testing.T) {
	defer leaktest.AfterTest(t)()
	nodes := startDistCluster(t, "a@127.0.0.1", "b@127.0.0.1")
	defer stopNodes(nodes)
	a := nodes[0]
	events := make(chan any, 4)
	ready := make(chan struct{})
	pt := newProcT()
	_, err := a.Spawn(func(p *Process) error {
		p.MonitorNodes(true, NodeHidden)
		close(ready)
		for i := 0; i < 2; i++ {
			events <- distRecv(pt, p)
		}
		return nil
	})
	require.NoError(t, err)
	waitFor(t, pt, ready, "the node monitor")
	cfg := DefaultLocalConfig("tool@127.0.0.1", testCookie)
	cfg.Hidden = true
	tool, err := Start(context.Background(), cfg)
	require.NoError(t, err)
	defer stopNodes([]*Node{tool})
	addr := strings.TrimPrefix(a.Info().Addrs[0], "/ip4/")
	addr = strings.Replace(addr, "/tcp/", ":", 1)
	name, err := tool.ConnectAddr(testCtx(t), addr)
	require.NoError(t, err)
	require.Equal(t, a.Name(), name)
	require.Equal(t, NodeUp{Node: "tool@127.0.0.1", Hidden: true}, waitFor(t, pt, events, "the tool's node up"))
	require.Equal(t, []string{"tool@127.0.0.1"}, a.HiddenNodes())
	require.Equal(t, []string{"b@127.0.0.1"}, a.Nodes(), "hidden nodes are not in Nodes()")
	require.Empty(t, tool.Nodes())
	require.Equal(t, []string{a.Name()}, tool.HiddenNodes(), "a connection with a hidden end is hidden on both sides")
	// The tool can call processes on a.
	echo, err := a.SpawnActor(distEchoActor{})
	require.NoError(t, err)
	r, err := tool.Call(testCtx(t), echo, "via tool")
	require.NoError(t, err)
	require.Equal(t, "via tool", r)
	stopNodes([]*Node{tool})
	nd := waitFor(t, pt, events, "the tool's node down")
	require.IsType(t, NodeDown{}, nd)
	require.Equal(t, "tool@127.0.0.1", nd.(NodeDown).Node)
}
