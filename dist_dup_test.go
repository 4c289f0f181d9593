package nodal

import (
	"context"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal/p2p"
)

// A second live node with a name already in use is refused with an error
// that says so, never merged silently.
func TestDistDuplicateNameRefused(t *testing.T) {
	defer leaktest.AfterTest(t)()
	nodes := startDistCluster(t, "a@127.0.0.1", "b@127.0.0.1")
	defer stopNodes(nodes)
	cfg := DefaultLocalConfig("a@127.0.0.1", testCookie)
	cfg.Seeds = []string{nodes[0].GossipAddr()}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dup, err := Start(ctx, cfg)
	if err == nil {
		defer stopNodes([]*Node{dup})
	}
	require.ErrorIs(t, err, p2p.ErrNameInUse)
	require.Contains(t, err.Error(), "a@127.0.0.1")
	require.Equal(t, []string{"b@127.0.0.1"}, nodes[0].Nodes())
}
