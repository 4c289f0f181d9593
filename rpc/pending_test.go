package rpc

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// Call and Multicall recycle their pending calls: a reply that comes after
// its call gave up is dropped, never taken by a later call that got the
// recycled pending, and every later call gets its own result.
func TestRecycledPendingGetsOnlyItsReply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 21, []string{"a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3"})
		defer c.stop()
		a := c.rpcs[0]
		const B, C = "b@10.0.0.2", "c@10.0.0.3"
		release := make(chan struct{})
		for _, r := range c.rpcs[1:] {
			must(t, Register(r, "add", add))
			must(t, Register(r, "late", func(_ context.Context, n int) (int, error) {
				<-release
				return -n, nil
			}))
		}
		ctx := context.Background()
		late := a.Stats().LateReplies
		const rounds = 20
		for i := range rounds {
			tctx, cancel := context.WithTimeout(ctx, time.Second)
			_, err := a.Call(tctx, B, "late", i)
			cancel()
			require.ErrorIs(t, err, ErrTimeout)
			v, err := CallAs[int](ctx, a, B, "add", pair{i, 1})
			require.NoError(t, err)
			require.Equal(t, i+1, v)
		}
		// The late replies come now, while new calls and multicalls run on
		// recycled pendings.
		close(release)
		for i := range 2 * rounds {
			v, err := CallAs[int](ctx, a, B, "add", pair{i, 2})
			require.NoError(t, err)
			require.Equal(t, i+2, v)
			res, bad, err := a.Multicall(ctx, []string{B, C}, "add", pair{i, 3})
			require.NoError(t, err)
			require.Empty(t, bad)
			for _, r := range res {
				require.NoError(t, r.Err)
				require.Equal(t, i+3, r.Value)
			}
		}
		p2ptest.Eventually(t, 10*time.Second, func() bool { return a.Stats().LateReplies == late+rounds }, "every late reply dropped")
	})
}

// FuzzDecodeRequestIn: a request decoded with the registered functions at
// hand (its name then the registered string) is the request decodeRequest
// gives, and it never panics.
func FuzzDecodeRequestIn(f *testing.F) {
	funcs := map[string]*function{"node.info": {info: FunctionInfo{Name: "node.info"}}, "": {info: FunctionInfo{Name: ""}}}
	f.Add(append(appendRequestHeader(nil, kindCall, 7, 0, time.Second, "node.info"), 1, 2, 3))
	f.Add(appendRequestHeader(nil, kindCast, 1, 0, 0, "other"))
	f.Add([]byte{kindCall, 1, 0, 0, 0xff, 0xff, 0x03})
	f.Fuzz(func(t *testing.T, b []byte) {
		want, werr := decodeRequest(b)
		got, err := decodeRequestIn(b, funcs)
		require.Equal(t, werr, err)
		require.Equal(t, want, got)
	})
}
