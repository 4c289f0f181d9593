package rpc

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
)

// A malformed node name fails every call as no connection (and a bad node
// name), leaves no breaker behind, and a cast to it is ignored.
func TestCallToMalformedNodeName(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 16, []string{"a@10.0.0.1", "b@10.0.0.2"})
		defer c.stop()
		a := c.rpcs[0]
		require.NoError(t, a.Cast(context.Background(), "orders", "rpc.echo", 1))
		require.False(t, a.BreakerOpen("orders"))
		for range 2 {
			_, err := a.Call(context.Background(), "orders", "rpc.echo", 1)
			require.ErrorIs(t, err, ErrNoConnection)
			require.ErrorIs(t, err, nodal.ErrBadNodeName)
		}
		_, known := a.breakers.Load("orders")
		require.False(t, known)
		v, err := CallAs[int](context.Background(), a, "b@10.0.0.2", "rpc.echo", 1)
		require.NoError(t, err)
		require.Equal(t, 1, v)
	})
}
