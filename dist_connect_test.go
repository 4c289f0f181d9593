package nodal

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
)

// Erlang's auto-connect: right after Start returns (joined, but the
// connection to the other node not up yet), messages to a pid and to
// {name, node}, and a monitor, are not lost: they wait for the connection
// and arrive in order.
func TestDistAutoConnectRightAfterStart(t *testing.T) {
	defer leaktest.AfterTest(t)()
	a, err := Start(context.Background(), DefaultLocalConfig("a@127.0.0.1", testCookie))
	require.NoError(t, err)
	defer stopNodes([]*Node{a})
	const n = 1000
	got := make(chan []any, 1)
	inbox, err := a.Spawn(func(p *Process) error {
		var msgs []any
		for len(msgs) < n+1 {
			m, err := p.Receive(p.Context())
			if err != nil {
				return err
			}
			msgs = append(msgs, m)
		}
		got <- msgs
		_, err := p.Receive(p.Context()) // until killed
		return err
	}, WithName("inbox"))
	require.NoError(t, err)

	cfg := DefaultLocalConfig("b@127.0.0.1", testCookie)
	cfg.Seeds = []string{a.GossipAddr()}
	b, err := Start(context.Background(), cfg)
	require.NoError(t, err)
	defer stopNodes([]*Node{b})
	down := make(chan any, 1)
	_, err = b.Spawn(func(p *Process) error {
		ref := p.Monitor(inbox)
		if err := p.SendNode(a.Name(), "inbox", "by name"); err != nil {
			return err
		}
		for i := range n - 1 {
			if err := p.Send(inbox, i); err != nil {
				return err
			}
		}
		if err := p.Send(inbox, "last"); err != nil {
			return err
		}
		m, err := p.ReceiveMatch(context.Background(), func(m any) bool {
			d, ok := m.(Down)
			return ok && d.Ref == ref
		})
		down <- m
		return err
	})
	require.NoError(t, err)
	var msgs []any
	select {
	case msgs = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("messages sent right after Start did not arrive")
	}
	require.Equal(t, "by name", msgs[0])
	for i := range n - 1 {
		require.Equal(t, i, msgs[i+1])
	}
	require.Equal(t, "last", msgs[n])
	// The monitor went out with them: it fires with the real reason.
	a.Exit(inbox, errors.New("done here"))
	select {
	case m := <-down:
		require.Equal(t, "done here", m.(Down).Reason.Error())
	case <-time.After(20 * time.Second):
		t.Fatal("the monitor set up right after Start did not fire")
	}
}

// A node that is not a live member is unreachable at once: a monitor of one
// of its pids fires noconnection before Monitor returns, nothing waits.
func TestDistNotAMemberIsUnreachableAtOnce(t *testing.T) {
	defer leaktest.AfterTest(t)()
	nodes := startDistCluster(t, "a@127.0.0.1")
	defer stopNodes(nodes)
	a := nodes[0]
	distInProcess(t, a, func(t *procT, p *Process) error {
		ghost := Pid{Node: "ghost@127.0.0.1", ID: 1, Incarnation: 1}
		ref := p.Monitor(ghost)
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		m, err := p.Receive(ctx)
		require.NoError(t, err, "the Down is already in the mailbox")
		require.Equal(t, Down{Ref: ref, Pid: ghost, Reason: ReasonNoConnection}, m)
		return nil
	})
	a.dist.connMu.Lock()
	defer a.dist.connMu.Unlock()
	require.Empty(t, a.dist.connWaits)
}

// Remote spawn and whereis right after Start connect first, instead of
// failing with noconnection.
func TestDistSpawnOnRightAfterStart(t *testing.T) {
	defer leaktest.AfterTest(t)()
	a, err := Start(context.Background(), DefaultLocalConfig("a@127.0.0.1", testCookie))
	require.NoError(t, err)
	defer stopNodes([]*Node{a})
	require.NoError(t, a.RegisterBehaviour("idle", distIdle))
	_, err = a.Spawn(func(p *Process) error { <-p.Context().Done(); return nil }, WithName("known"))
	require.NoError(t, err)
	cfg := DefaultLocalConfig("b@127.0.0.1", testCookie)
	cfg.Seeds = []string{a.GossipAddr()}
	b, err := Start(context.Background(), cfg)
	require.NoError(t, err)
	defer stopNodes([]*Node{b})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pid, err := b.SpawnOn(ctx, a.Name(), "idle", nil)
	require.NoError(t, err)
	require.Equal(t, a.Name(), pid.Node)
	_, err = b.WhereisOn(ctx, a.Name(), "known")
	require.NoError(t, err)
}

// monitor_node right after Start connects instead of reporting the node
// down; the NodeDown comes when the node really goes.
func TestDistMonitorNodeRightAfterStart(t *testing.T) {
	defer leaktest.AfterTest(t)()
	a, err := Start(context.Background(), DefaultLocalConfig("a@127.0.0.1", testCookie))
	require.NoError(t, err)
	defer stopNodes([]*Node{a})
	cfg := DefaultLocalConfig("b@127.0.0.1", testCookie)
	cfg.Seeds = []string{a.GossipAddr()}
	b, err := Start(context.Background(), cfg)
	require.NoError(t, err)
	defer stopNodes([]*Node{b})
	got := make(chan any, 2)
	_, err = b.Spawn(func(p *Process) error {
		p.MonitorNode(a.Name())
		for {
			m, err := p.Receive(p.Context())
			if err != nil {
				return nil
			}
			got <- m
		}
	})
	require.NoError(t, err)
	distWait(t, 10*time.Second, func() bool { return len(b.Nodes()) == 1 }, "b connected to a")
	select {
	case m := <-got:
		t.Fatalf("a NodeDown for a live member: %v", m)
	case <-time.After(200 * time.Millisecond):
	}
	stopNodes([]*Node{a})
	select {
	case m := <-got:
		require.Equal(t, a.Name(), m.(NodeDown).Node)
	case <-time.After(20 * time.Second):
		t.Fatal("no NodeDown after a stopped")
	}
}
