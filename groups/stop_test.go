package groups

import (
	"context"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
)

// Stop ends monitors with ErrStopped, makes calls fail with ErrStopped
// and leaves no goroutine behind; Node.Stop alone does the same.
func TestStopEndsEverything(t *testing.T) {
	defer leaktest.AfterTest(t)()
	c := startCluster(t, 8, Config{}, "a@10.0.0.1", "b@10.0.0.2")
	ctx := context.Background()
	a, b := c.scopes[0], c.scopes[1]
	p := idle(t, c.nodes[0])
	require.NoError(t, a.Join(ctx, "g", p))
	_, mon, err := a.MonitorScope()
	require.NoError(t, err)
	_, bmon, err := b.Monitor("g")
	require.NoError(t, err)

	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	require.NoError(t, a.Stop(sctx))
	cancel()
	require.NoError(t, a.Stop(ctx), "idempotent")
	_, ok := <-mon.Events()
	require.False(t, ok)
	require.ErrorIs(t, mon.Err(), ErrStopped)
	require.ErrorIs(t, a.Join(ctx, "g", p), ErrStopped)
	_, _, err = a.MonitorScope()
	require.ErrorIs(t, err, ErrStopped)

	// b is stopped by its node only
	for _, n := range c.nodes {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		require.NoError(t, n.Stop(sctx))
		cancel()
	}
	require.Eventually(t, func() bool {
		select {
		case _, ok := <-bmon.Events():
			return !ok
		default:
			return false
		}
	}, 10*time.Second, 10*time.Millisecond)
	require.ErrorIs(t, bmon.Err(), ErrStopped)
	require.NoError(t, c.net.Close())
}
