package groups

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
)

// pg_SUITE thundering_herd: with 10,000 groups and 2,000 syncs forced at
// once on both nodes, a local join still returns within 5 s (pg's bound),
// and is seen by the other node. Real time, not a bubble: a stall must be
// able to hit the deadline.
func TestThunderingHerd(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 groups")
	}
	defer leaktest.AfterTest(t)()
	c := startCluster(t, 9, Config{}, "a@10.0.0.1", "b@10.0.0.2")
	defer func() {
		for _, n := range c.nodes {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = n.Stop(ctx)
			cancel()
		}
		_ = c.net.Close()
	}()
	ctx := context.Background()
	a, b := c.scopes[0], c.scopes[1]
	const groupsN = 10_000
	pb := idle(t, c.nodes[1])
	for i := range groupsN {
		require.NoError(t, b.Join(ctx, fmt.Sprintf("g%05d", i), pb))
	}
	require.Eventually(t, func() bool { return len(a.WhichGroups()) == groupsN }, 60*time.Second, 10*time.Millisecond)

	var wg sync.WaitGroup
	syncCtx, cancelSyncs := context.WithTimeout(ctx, 60*time.Second)
	defer cancelSyncs()
	for i := range 2000 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() { _ = s.Sync(syncCtx) })
	}
	pa := idle(t, c.nodes[0])
	jctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err := a.Join(jctx, "herd", pa)
	cancel()
	require.NoError(t, err, "a join during the herd of syncs")
	require.Eventually(t, func() bool { return b.Count("herd") == 1 }, 30*time.Second, 5*time.Millisecond)
	wg.Wait()
	require.Equal(t, groupsN+1, len(b.WhichGroups()))
}
