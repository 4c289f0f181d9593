package exitwatch

import (
	"context"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// A watched process that exits is reported once; one unwatched before it
// exits is not; Stop ends the watcher.
func TestWatcher(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer n.Stop(context.Background())

	exited := make(chan nodal.Pid, 4)
	w, err := Start(n, "test", func(pid nodal.Pid) { exited <- pid })
	require.NoError(t, err)
	idle := func() nodal.Pid {
		pid, err := n.Spawn(func(p *nodal.Process) error { <-p.Context().Done(); return nil })
		require.NoError(t, err)
		return pid
	}
	watched, unwatched := idle(), idle()
	w.Send((*Orders)(nil).Watch(watched).Watch(unwatched).Watch(watched)) // twice: one watch
	w.Send((*Orders)(nil).Unwatch(unwatched))
	w.Send(nil) // nothing
	// unwatched ends first, and is seen dead before watched is killed, so
	// that a report of it (a bug) would come before or soon after
	// watched's: one of the two checks below fails.
	dead := make(chan struct{})
	_, err = n.Spawn(func(p *nodal.Process) error {
		p.Monitor(unwatched)
		n.Exit(unwatched, nodal.ReasonKill)
		_, err := p.ReceiveMatch(p.Context(), func(m any) bool { _, ok := m.(nodal.Down); return ok })
		close(dead)
		return err
	})
	require.NoError(t, err)
	select {
	case <-dead:
	case <-time.After(30 * time.Second):
		t.Fatal("the unwatched process did not end")
	}
	n.Exit(watched, nodal.ReasonKill)
	select {
	case pid := <-exited:
		require.Equal(t, watched, pid)
	case <-time.After(30 * time.Second):
		t.Fatal("the watched process's exit was not reported")
	}
	require.NoError(t, w.Stop(context.Background()))
	require.Empty(t, exited, "reported once, and only the watched process")
}

// Stop returns at once for a watcher killed right after Start, which may
// never have run its function (a kill before a process's goroutine starts
// skips it), and ends one that runs. Each round kills before Stop or not.
func TestStopAfterKill(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer n.Stop(context.Background())
	for i := range 100 {
		w, err := Start(n, "test", func(nodal.Pid) {})
		require.NoError(t, err)
		if i%2 == 0 {
			n.Exit(w.pid, nodal.ReasonKill)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		require.NoError(t, w.Stop(ctx), "round %d", i)
		cancel()
	}
}

// startNode starts a node on an in-process network.
func startNode(t *testing.T) *nodal.Node {
	t.Helper()
	cfg := nodal.DefaultLocalConfig("w@127.0.0.1", "exitwatch-test-cookie")
	cfg.P2P.Network = p2ptest.New()
	n, err := nodal.Start(context.Background(), cfg)
	require.NoError(t, err)
	return n
}
