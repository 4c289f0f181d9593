//go:build linux

package integration

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/internal/echo"
)

// partitionTimeout bounds the wait for a silent cut to be noticed: across a
// cut that leaves a path through a third node, SWIM's indirect probes keep
// the cut node alive, so the connection is declared dead by its own tick
// (p2p's direct connection: a ping every 3 s, closed after 4 silent ticks,
// 12-15 s) or, on the libp2p stream, by yamux's keepalive (up to ~40 s).
// This is a safety net, not an assertion on speed.
const partitionTimeout = 75 * time.Second

// TestNetnsPartitionHealKill runs nodes a and b as "nodal start" OS
// processes in their own network namespaces and an embedded node t in the
// test's (root) namespace, all on one bridge:
//
//  1. t's processes monitor, link (trapping exits) and node-monitor an
//     echo on b; iptables then silently drops everything between t and b.
//     The monitor's Down and the link's Exit arrive with noconnection, the
//     NodeDown arrives, and b's side drops t too (the echo, linked to a
//     process of t, dies), while a and b still see each other.
//  2. The rules go; t reconnects to b, and a call to a new echo on b works.
//  3. kill -9 of b: a monitor on b's echo fires noconnection and a (another
//     OS process) drops b from its view.
func TestNetnsPartitionHealKill(t *testing.T) {
	requireNetLab(t)
	if testing.Short() {
		t.Skip("waits for a keepalive timeout (~40 s); skipped with -short")
	}
	defer leaktest.AfterTest(t)()
	lab := newNetLab(t, "a", "b")
	defer lab.close() // after the nodes stop, before leaktest checks
	c := newCluster(t, fmt.Sprintf("netns-cookie-%d", lab.subnet))
	defer c.close()

	a := lab.StartNode(c, "a")
	b := lab.StartNode(c, "b", "--join", a.Gossip)
	nameA, nameB := a.Name, b.Name
	nameT := "t@" + lab.RootIP()
	require.Equal(t, "a@"+lab.IP("a"), nameA)
	require.Equal(t, "b@"+lab.IP("b"), nameB)

	cfg := nodal.DefaultLocalConfig(nameT, c.cookie)
	cfg.ListenAddr = lab.RootIP() + ":0"
	cfg.GossipAddr = lab.RootIP() + ":0"
	cfg.Seeds = []string{a.Gossip}
	startCtx, cancelStart := context.WithTimeout(context.Background(), waitTimeout)
	n, err := nodal.Start(startCtx, cfg)
	cancelStart()
	require.NoError(t, err)
	defer stopTestNode(n) // before c.close and leaktest's check (defers run last-in first-out)

	all := []string{nameA, nameB, nameT}
	eventually(t, func() bool { return slices.Equal(n.Nodes(), []string{nameA, nameB}) }, "t to see a and b")
	for _, p := range []struct {
		key  string
		node *nodeProc
	}{{"a", a}, {"b", b}} {
		eventually(t, func() bool {
			var v nodesJSON
			lab.CtlJSON(p.key, p.node, &v, "nodes")
			return slices.Equal(v.Nodes, all)
		}, "%s to see a, b and t", p.key)
	}

	// 1. Partition t from b.
	var spawned pidJSON
	lab.CtlJSON("b", b, &spawned, "spawn", "echo")
	pid, err := nodal.ParsePid(spawned.Pid)
	require.NoError(t, err)
	require.Equal(t, nameB, pid.Node)

	ctx, cancel := context.WithTimeout(context.Background(), 3*partitionTimeout)
	defer cancel()
	type fired struct {
		kind   string
		reason error
	}
	results := make(chan fired, 3)
	armed := make(chan struct{}, 3)
	_, err = n.Spawn(func(p *nodal.Process) error {
		ref := p.Monitor(pid)
		// A call after the monitor, on the same connection, proves the
		// monitor reached b and the echo is alive.
		if r, err := p.Call(ctx, pid, "alive?"); err != nil || r != (echo.Reply{Text: "alive?", Pid: pid}) {
			results <- fired{"monitor", fmt.Errorf("call before the cut: %v %w", r, err)}
			return nil
		}
		armed <- struct{}{}
		m, err := p.ReceiveMatch(ctx, func(m any) bool { d, ok := m.(nodal.Down); return ok && d.Ref == ref })
		if err != nil {
			return err
		}
		d := m.(nodal.Down)
		if d.Pid != pid {
			results <- fired{"monitor", fmt.Errorf("Down for %v, want %v", d.Pid, pid)}
			return nil
		}
		results <- fired{"monitor", d.Reason}
		return nil
	})
	require.NoError(t, err)
	_, err = n.Spawn(func(p *nodal.Process) error {
		p.TrapExit(true)
		p.Link(pid)
		if r, err := p.Call(ctx, pid, "linked?"); err != nil || r != (echo.Reply{Text: "linked?", Pid: pid}) {
			results <- fired{"link", fmt.Errorf("call before the cut: %v %w", r, err)}
			return nil
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
		p.MonitorNode(nameB)
		armed <- struct{}{}
		m, err := p.ReceiveMatch(ctx, func(m any) bool { d, ok := m.(nodal.NodeDown); return ok && d.Node == nameB })
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

	lab.Cut("b", lab.RootIP())
	cutAt := time.Now()
	got := map[string]error{}
	timer := time.NewTimer(partitionTimeout)
	defer timer.Stop()
	for range 3 {
		select {
		case f := <-results:
			got[f.kind] = f.reason
		case <-timer.C:
			t.Fatalf("only %v fired within %v of the cut", got, partitionTimeout)
		}
	}
	t.Logf("partition noticed by t after %v", time.Since(cutAt).Round(time.Millisecond))
	require.ErrorIs(t, got["monitor"], nodal.ReasonNoConnection)
	require.ErrorIs(t, got["link"], nodal.ReasonNoConnection)
	require.Error(t, got["node"])
	require.NotContains(t, n.Nodes(), nameB)

	// a and b, on the other side of no cut, still see each other; b drops
	// t (its own keepalive), and with it the echo linked to t's process
	// dies of noconnection.
	var va nodesJSON
	lab.CtlJSON("a", a, &va, "nodes")
	require.Contains(t, va.Nodes, nameB, "a lost b during a cut between t and b")
	waitLong(t, func() bool {
		var v nodesJSON
		lab.CtlJSON("b", b, &v, "nodes")
		return slices.Equal(v.Nodes, []string{nameA, nameB})
	}, "b to drop t and keep a")
	waitLong(t, func() bool {
		var v processesJSON
		lab.CtlJSON("b", b, &v, "processes")
		for _, p := range v.Processes {
			if p.Pid == pid.String() {
				return false
			}
		}
		return true
	}, "the echo linked across the cut to die on b")
	// During the cut t cannot reach b by any path of its own.
	cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, err = n.SpawnOn(cctx, nameB, "echo", nil)
	ccancel()
	require.Error(t, err, "spawned on b through the cut")

	// 2. Heal: remove the rules and reconnect.
	lab.Heal("b")
	waitLong(t, func() bool {
		cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer ccancel()
		return n.Connect(cctx, nameB) == nil && slices.Contains(n.Nodes(), nameB)
	}, "t to reconnect to b after the heal")
	require.Equal(t, []string{nameA, nameB}, n.Nodes())
	pid2, err := n.SpawnOn(ctx, nameB, "echo", nil)
	require.NoError(t, err)
	require.Equal(t, nameB, pid2.Node)
	require.NotEqual(t, pid, pid2)
	r, err := n.Call(ctx, pid2, "healed")
	require.NoError(t, err)
	require.Equal(t, echo.Reply{Text: "healed", Pid: pid2}, r)
	eventually(t, func() bool {
		var v nodesJSON
		lab.CtlJSON("b", b, &v, "nodes")
		return slices.Equal(v.Nodes, all)
	}, "b to see t again")

	// 3. kill -9 of b.
	downs := make(chan error, 1)
	monArmed := make(chan struct{})
	_, err = n.Spawn(func(p *nodal.Process) error {
		ref := p.Monitor(pid2)
		if _, err := p.Call(ctx, pid2, "still here?"); err != nil {
			downs <- fmt.Errorf("call before the kill: %w", err)
			return nil
		}
		close(monArmed)
		m, err := p.ReceiveMatch(ctx, func(m any) bool { d, ok := m.(nodal.Down); return ok && d.Ref == ref })
		if err != nil {
			downs <- err
			return nil
		}
		downs <- m.(nodal.Down).Reason
		return nil
	})
	require.NoError(t, err)
	select {
	case <-monArmed:
	case err := <-downs:
		t.Fatal(err)
	case <-ctx.Done():
		t.Fatal("monitor not armed")
	}
	b.Kill9()
	select {
	case err := <-downs:
		require.ErrorIs(t, err, nodal.ReasonNoConnection)
	case <-ctx.Done():
		t.Fatal("no Down after kill -9 of b")
	}
	eventually(t, func() bool {
		var v nodesJSON
		lab.CtlJSON("a", a, &v, "nodes")
		return slices.Equal(v.Nodes, []string{nameA, nameT})
	}, "a to drop b after kill -9")
	eventually(t, func() bool { return slices.Equal(n.Nodes(), []string{nameA}) }, "t to drop b after kill -9")
}

// waitLong polls cond like eventually, with partitionTimeout: for what a
// keepalive timeout or a redial backoff decides.
func waitLong(t *testing.T, cond func() bool, what string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(partitionTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for "+what, args...)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
