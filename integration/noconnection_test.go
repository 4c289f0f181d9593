package integration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/internal/echo"
)

// startTestNode starts a visible node in the test process that joins the
// cluster through seed. The caller stops it (before leaktest checks).
func startTestNode(t *testing.T, name, cookie, seed string) *nodal.Node {
	t.Helper()
	cfg := nodal.DefaultLocalConfig(name, cookie)
	cfg.Seeds = []string{seed}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	n, err := nodal.Start(ctx, cfg)
	require.NoError(t, err)
	return n
}

func stopTestNode(n *nodal.Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = n.Stop(ctx)
}

// TestRemoteMonitorAndLinkFireNoconnectionOnKill9: a process in the test
// monitors an echo on node b, another links to it trapping exits, and a
// third monitors node b; kill -9 of b's OS process fires all three with
// noconnection, and node a (another OS process) sees b gone.
func TestRemoteMonitorAndLinkFireNoconnectionOnKill9(t *testing.T) {
	defer leaktest.AfterTest(t)()
	c := newCluster(t, "kill-cookie")
	defer c.close()
	a, b := startPair(t, c)
	var spawned pidJSON
	ctlJSON(t, b, &spawned, "spawn", "echo")
	pid, err := nodal.ParsePid(spawned.Pid)
	require.NoError(t, err)

	n := startTestNode(t, "t@127.0.0.1", c.cookie, a.Gossip)
	defer stopTestNode(n)
	eventually(t, func() bool {
		return slices.Equal(n.Nodes(), []string{"a@127.0.0.1", "b@127.0.0.1"})
	}, "the test node to see a and b")

	type fired struct {
		kind   string
		reason error
	}
	results := make(chan fired, 3)
	armed := make(chan struct{}, 3)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, err = n.Spawn(func(p *nodal.Process) error {
		ref := p.Monitor(pid)
		// A call after the monitor, on the same connection, proves the
		// monitor reached b (and that the echo is alive).
		if r, err := p.Call(ctx, pid, "alive?"); err != nil || r != (echo.Reply{Text: "alive?", Pid: pid}) {
			results <- fired{"monitor", fmt.Errorf("call before the kill: %v %v", r, err)}
			return err
		}
		armed <- struct{}{}
		m, err := p.ReceiveMatch(ctx, func(m any) bool { d, ok := m.(nodal.Down); return ok && d.Ref == ref })
		if err != nil {
			return err
		}
		d := m.(nodal.Down)
		if d.Pid != pid {
			return errors.New("Down for another pid")
		}
		results <- fired{"monitor", d.Reason}
		return nil
	})
	require.NoError(t, err)
	_, err = n.Spawn(func(p *nodal.Process) error {
		p.TrapExit(true)
		p.Link(pid)
		if _, err := p.Call(ctx, pid, "alive?"); err != nil {
			results <- fired{"link", fmt.Errorf("call before the kill: %w", err)}
			return err
		}
		armed <- struct{}{}
		m, err := p.ReceiveMatch(ctx, func(m any) bool { e, ok := m.(nodal.Exit); return ok && e.From == pid })
		if err != nil {
			return err
		}
		results <- fired{"link", m.(nodal.Exit).Reason}
		return nil
	})
	require.NoError(t, err)
	_, err = n.Spawn(func(p *nodal.Process) error {
		p.MonitorNode("b@127.0.0.1")
		armed <- struct{}{}
		m, err := p.ReceiveMatch(ctx, func(m any) bool { _, ok := m.(nodal.NodeDown); return ok })
		if err != nil {
			return err
		}
		results <- fired{"node", m.(nodal.NodeDown).Reason}
		return nil
	})
	require.NoError(t, err)
	for range 3 {
		select {
		case <-armed:
		case f := <-results:
			t.Fatalf("%s: %v", f.kind, f.reason)
		case <-ctx.Done():
			t.Fatal("monitors not armed")
		}
	}

	b.Kill9()
	got := map[string]error{}
	for range 3 {
		select {
		case f := <-results:
			got[f.kind] = f.reason
		case <-ctx.Done():
			t.Fatalf("only %v fired after kill -9", got)
		}
	}
	require.ErrorIs(t, got["monitor"], nodal.ReasonNoConnection)
	require.ErrorIs(t, got["link"], nodal.ReasonNoConnection)
	require.Error(t, got["node"])

	// Node a, another OS process, sees b gone too.
	eventually(t, func() bool {
		var v nodesJSON
		ctlJSON(t, a, &v, "nodes")
		return slices.Equal(v.Nodes, []string{"a@127.0.0.1", "t@127.0.0.1"})
	}, "a to drop b")
}

// TestRemoteSpawnPrintsOnSpawner: an echo spawned from the test node on b
// (an OS process) prints on the test node's stdout: the spawner's group
// leader.
func TestRemoteSpawnPrintsOnSpawner(t *testing.T) {
	defer leaktest.AfterTest(t)()
	c := newCluster(t, "spawn-cookie")
	defer c.close()
	a := c.start("a@127.0.0.1")
	out := &syncBuffer{}
	cfg := nodal.DefaultLocalConfig("t@127.0.0.1", c.cookie)
	cfg.Seeds = []string{a.Gossip}
	cfg.Stdout = out
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	n, err := nodal.Start(ctx, cfg)
	require.NoError(t, err)
	defer stopTestNode(n)
	eventually(t, func() bool { return slices.Equal(n.Nodes(), []string{"a@127.0.0.1"}) }, "t to see a")

	_, err = n.SpawnOn(ctx, "a@127.0.0.1", "no_such_behaviour", nil)
	require.ErrorIs(t, err, nodal.ErrUnknownBehaviour)

	pid, err := n.SpawnOn(ctx, "a@127.0.0.1", "echo", nil)
	require.NoError(t, err)
	require.Equal(t, "a@127.0.0.1", pid.Node)
	require.Equal(t, a.Inc, pid.Incarnation)
	n.Send(pid, "shown on the spawner")
	eventually(t, func() bool {
		return regexpContains(out.String(), `echo `+regexpQuote(pid.String())+` got "shown on the spawner"`)
	}, "the echo's output on the test node")
	require.Empty(t, a.Lines(), "nothing printed on a itself")
}
