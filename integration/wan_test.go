package integration

import (
	"context"
	"errors"
	"net"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/internal/faultproxy"
	"github.com/nodal-go/nodal/p2p"
)

// wanFaults is the slow link: each node sits behind its own proxy, and
// every packet or stream chunk crosses one proxy one way, so a round trip
// adds 100–200 ms and every crossing loses 1 % of UDP packets (TCP chunks:
// 1 % are delayed by a 200 ms retransmission).
var wanFaults = faultproxy.Faults{MinDelay: 50 * time.Millisecond, MaxDelay: 100 * time.Millisecond, Loss: 0.01}

// wanSlowPhase is how long the link is only slow; NODAL_WAN_SLOW (a Go
// duration) overrides it for quick local runs.
func wanSlowPhase(t *testing.T) time.Duration {
	if s := os.Getenv("NODAL_WAN_SLOW"); s != "" {
		d, err := time.ParseDuration(s)
		require.NoError(t, err)
		return d
	}
	return 2 * time.Minute
}

// freeHostPort returns a 127.0.0.1 port free for TCP and UDP (memberlist
// binds both).
func freeHostPort(t *testing.T) string {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err == nil {
			u.Close()
			return addr
		}
	}
	t.Fatal("no free port")
	return ""
}

// wanEndpoint is one node's bound addresses and the proxy in front of
// them, whose addresses the node advertises.
type wanEndpoint struct {
	proxy                *faultproxy.Proxy
	listen, gossip       string // bound
	advListen, advGossip string // the proxy's: what the node advertises
}

func newWANEndpoint(t *testing.T, seed uint64) *wanEndpoint {
	t.Helper()
	e := &wanEndpoint{proxy: faultproxy.New(wanFaults, seed), listen: freeHostPort(t), gossip: freeHostPort(t)}
	var err error
	e.advListen, err = e.proxy.Forward("127.0.0.1:0", e.listen, faultproxy.AToB, false)
	require.NoError(t, err)
	e.advGossip, err = e.proxy.Forward("127.0.0.1:0", e.gossip, faultproxy.AToB, true)
	require.NoError(t, err)
	return e
}

// downLog records the NodeDown messages a node's watcher process gets.
type downLog struct {
	mu    sync.Mutex
	downs []downAt
}

type downAt struct {
	node   string
	reason error
	at     time.Time
}

func (d downAt) String() string { return d.node + " down: " + d.reason.Error() }

func (l *downLog) all() []downAt {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.downs)
}

func (l *downLog) first(node string) (downAt, bool) {
	for _, d := range l.all() {
		if d.node == node {
			return d, true
		}
	}
	return downAt{}, false
}

// watchDowns spawns a process on n that records every NodeDown.
func watchDowns(t *testing.T, n *nodal.Node) *downLog {
	t.Helper()
	l := &downLog{}
	armed := make(chan struct{})
	_, err := n.Spawn(func(p *nodal.Process) error {
		p.MonitorNodes(true, nodal.NodeVisible)
		close(armed)
		for {
			m, err := p.Receive(p.Context())
			if err != nil {
				return nil
			}
			if d, ok := m.(nodal.NodeDown); ok {
				l.mu.Lock()
				l.downs = append(l.downs, downAt{d.Node, d.Reason, time.Now()})
				l.mu.Unlock()
			}
		}
	})
	require.NoError(t, err)
	<-armed
	return l
}

// TestWANProfileSlowLink runs three nodes with ProfileWAN, each behind a
// latency and loss proxy whose addresses it advertises (a and b in this
// process, c a "nodal start --profile wan --advertise ..." OS process):
// they join across the slow link, calls work across it, no node is
// reported down during the slow phase (2 minutes), and then a real down (c
// frozen with SIGSTOP, as a host lost to the network looks: no FIN, no
// answer) is detected. It logs the figures: round trips, call latencies,
// false downs, and the time to detect.
func TestWANProfileSlowLink(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 2-minute slow phase and waits for WAN failure detection; skipped with -short")
	}
	defer afterTestWithin(t, 20*time.Second)()
	cookie := "wan-cookie"
	cl := newCluster(t, cookie)
	defer cl.close()
	ea, eb, ec := newWANEndpoint(t, 1), newWANEndpoint(t, 2), newWANEndpoint(t, 3)
	for _, e := range []*wanEndpoint{ea, eb, ec} {
		defer e.proxy.Close() // after the nodes stop (defers run last-in first-out)
	}

	joinStart := time.Now()
	start := func(name string, e *wanEndpoint, seeds ...string) *nodal.Node {
		cfg := nodal.DefaultWANConfig(name, cookie)
		cfg.ListenAddr, cfg.GossipAddr = e.listen, e.gossip
		cfg.AdvertiseAddr, cfg.AdvertiseGossipAddr = e.advListen, e.advGossip
		cfg.Seeds = seeds
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		n, err := nodal.Start(ctx, cfg)
		require.NoError(t, err)
		require.Equal(t, e.advGossip, n.GossipAddr())
		require.Equal(t, e.gossip, n.GossipBindAddr())
		return n
	}
	a := start("a@127.0.0.1", ea)
	defer stopTestNode(a)
	b := start("b@127.0.0.1", eb, ea.advGossip)
	defer stopTestNode(b)
	c, err := cl.startArgs([]string{"start", "--name", "c@127.0.0.1", "--profile", "wan",
		"--listen", ec.listen, "--gossip", ec.gossip, "--advertise", ec.advListen, "--advertise-gossip", ec.advGossip,
		"--join", ea.advGossip}, baseEnv("NODAL_COOKIE="+cookie, "GOLOG_LOG_LEVEL=error"))
	require.NoError(t, err)
	c.Cookie = cookie
	require.Equal(t, ec.advListen, c.Listen, "the up line shows the advertised address")
	require.Equal(t, ec.advGossip, c.Gossip)
	waitFor := func(d time.Duration, cond func() bool, what string) time.Duration {
		t.Helper()
		t0 := time.Now()
		for !cond() {
			require.True(t, time.Since(t0) < d, "timed out waiting for %s", what)
			time.Sleep(20 * time.Millisecond)
		}
		return time.Since(t0)
	}
	waitFor(2*time.Minute, func() bool {
		return slices.Equal(a.Nodes(), []string{"b@127.0.0.1", "c@127.0.0.1"}) && slices.Equal(b.Nodes(), []string{"a@127.0.0.1", "c@127.0.0.1"})
	}, "a and b connected to each other and to c")
	joined := time.Since(joinStart)
	downsA, downsB := watchDowns(t, a), watchDowns(t, b)

	// Only the advertised (proxy) addresses are known to the members.
	for _, m := range a.Members() {
		if m.Name == "c@127.0.0.1" {
			require.Equal(t, ec.advGossip, m.GossipAddr)
			require.Len(t, m.ListenAddrs, 1)
			_, port, _ := net.SplitHostPort(ec.advListen)
			require.Equal(t, "/ip4/127.0.0.1/tcp/"+port, m.ListenAddrs[0])
		}
	}

	// An echo on a (this process) and one on c (through ctl, across the link).
	_, err = a.SpawnActor(echoActor{}, nodal.WithName("echo"))
	require.NoError(t, err)
	r := ctl(t, ec.advListen, cookie, "spawn", "echo", "--name", "echo")
	require.Equal(t, 0, r.Code, "ctl spawn on c: %s", r.Stderr)

	type figures struct {
		calls, failed  int
		maxCall        time.Duration
		minRTT, maxRTT time.Duration
	}
	var f figures
	f.minRTT = time.Hour
	call := func(from *nodal.Node, node string) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		t0 := time.Now()
		got, err := from.CallName(ctx, node, "echo", "over the wan")
		d := time.Since(t0)
		f.calls++
		if err != nil || got == nil {
			f.failed++
			t.Logf("call %s -> echo@%s failed after %v: %v", from.Name(), node, d, err)
			return
		}
		f.maxCall = max(f.maxCall, d)
		if rtt, err := from.Ping(ctx, node); err == nil {
			f.minRTT, f.maxRTT = min(f.minRTT, rtt), max(f.maxRTT, rtt)
		}
	}

	slow := wanSlowPhase(t)
	slowStart := time.Now()
	tick := time.NewTicker(time.Second) // pacing the calls, not waiting for anything
	for time.Since(slowStart) < slow {
		call(b, "a@127.0.0.1")
		call(a, "c@127.0.0.1")
		call(b, "c@127.0.0.1")
		<-tick.C
	}
	tick.Stop()
	falseDowns := len(downsA.all()) + len(downsB.all())
	sa, sb, sc := ea.proxy.Stats(faultproxy.Both), eb.proxy.Stats(faultproxy.Both), ec.proxy.Stats(faultproxy.Both)
	t.Logf("WAN figures: joined in %v; %d calls in %v of slow link, %d failed, slowest %v; ping RTT %v..%v; false node-downs %d (a %v, b %v)",
		joined.Round(time.Millisecond), f.calls, slow, f.failed, f.maxCall.Round(time.Millisecond), f.minRTT.Round(time.Millisecond), f.maxRTT.Round(time.Millisecond),
		falseDowns, downsA.all(), downsB.all())
	t.Logf("proxies: UDP %d packets, %d dropped; TCP %d chunks, %d delayed as retransmitted",
		sa.UDPPackets+sb.UDPPackets+sc.UDPPackets, sa.UDPDropped+sb.UDPDropped+sc.UDPDropped,
		sa.TCPChunks+sb.TCPChunks+sc.TCPChunks, sa.TCPRetrans+sb.TCPRetrans+sc.TCPRetrans)
	require.Zero(t, falseDowns, "node-downs while the link was only slow")
	require.Zero(t, f.failed, "failed calls while the link was only slow")
	// The faults happened (UDP is sparse with the WAN timers, a few hundred
	// packets in 2 minutes; TCP chunks are many).
	require.Positive(t, sa.UDPDropped+sb.UDPDropped+sc.UDPDropped+sa.TCPRetrans+sb.TCPRetrans+sc.TCPRetrans, "the proxies lost packets")
	require.GreaterOrEqual(t, f.minRTT, 100*time.Millisecond, "a round trip crosses two proxies (a lower bound they enforce)")

	// A real down: c freezes (SIGSTOP: its sockets stay open, it answers
	// nothing, as a host lost to the network).
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGSTOP))
	downAt0 := time.Now()
	defer func() { _ = c.cmd.Process.Signal(syscall.SIGCONT) }()
	var detectA, detectB, memberGoneA time.Duration
	waitFor(3*time.Minute, func() bool {
		da, okA := downsA.first("c@127.0.0.1")
		db, okB := downsB.first("c@127.0.0.1")
		if okA {
			detectA = da.at.Sub(downAt0)
		}
		if okB {
			detectB = db.at.Sub(downAt0)
		}
		return okA && okB
	}, "a and b to see c down")
	waitFor(3*time.Minute, func() bool {
		return !slices.ContainsFunc(a.Members(), func(m nodal.Member) bool { return m.Name == "c@127.0.0.1" })
	}, "c to leave a's membership")
	memberGoneA = time.Since(downAt0)
	da, _ := downsA.first("c@127.0.0.1")
	db, _ := downsB.first("c@127.0.0.1")
	t.Logf("real down: a saw c down after %v (%v), b after %v (%v); c left a's membership (failure detected) after %v",
		detectA.Round(time.Millisecond), da.reason, detectB.Round(time.Millisecond), db.reason, memberGoneA.Round(time.Millisecond))
	for _, d := range append(downsA.all(), downsB.all()...) {
		require.Equal(t, "c@127.0.0.1", d.node, "only c went down")
		require.True(t, errors.Is(d.reason, p2p.ErrConnClosed) || errors.Is(d.reason, p2p.ErrFailureDetected), "reason %v", d.reason)
	}
	require.Equal(t, []string{"b@127.0.0.1"}, a.Nodes())
	c.Kill9()
}

// echoActor answers every call with the request.
type echoActor struct{}

func (echoActor) Init(*nodal.Process) error { return nil }

func (echoActor) HandleMessage(p *nodal.Process, m any) error {
	if r, ok := m.(nodal.CallRequest); ok {
		p.Reply(r.From, r.Req)
	}
	return nil
}

// afterTestWithin is leaktest.AfterTest with a longer wait: with the WAN
// profile memberlist's probe of a member (ProbeTimeout and its TCP fallback,
// seconds long) may still be running when Stop returns, and it ends by
// itself; memberlist's Shutdown does not wait for it.
func afterTestWithin(t *testing.T, wait time.Duration) func() {
	orig := leaktest.GetInterestedGoroutines()
	return func() {
		if t.Failed() {
			return
		}
		deadline := time.Now().Add(wait)
		for {
			var leaked []string
			for id, stack := range leaktest.GetInterestedGoroutines() {
				if _, ok := orig[id]; !ok {
					leaked = append(leaked, stack)
				}
			}
			if len(leaked) == 0 {
				return
			}
			if time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond) // polling for goroutines to end, not a timed assertion
				continue
			}
			for _, g := range leaked {
				t.Errorf("Leaked goroutine: %v", g)
			}
			return
		}
	}
}
