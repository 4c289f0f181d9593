package rpc

import (
	"context"
	"runtime"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal/internal/spin"
)

// idleFails returns the backoff of r's warmest idle call process.
func idleFails(r *RPC) uint8 {
	r.idle.mu.Lock()
	defer r.idle.mu.Unlock()
	return r.idle.idle[len(r.idle.idle)-1].w.Fails
}

// rpc's waits for the network spin through a spin.Waiter before they park
// (internal/spin): a call's wait for its reply and Multicall's wait for
// its replies count as conversations while they wait and stop counting
// when they end; an idle call process that answered another node spins
// for the next call, one that answered its own node does not (a local
// wait never spins).
func TestWaitsForTheNetworkSpin(t *testing.T) {
	if !spin.Supported {
		t.Skip("no spin on this OS")
	}
	// Room for every spinner at once (half the Ps spin at most): the
	// caller's spin for its reply and the callee's for the next call.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(8))
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 41, []string{"a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3"})
		defer c.stop()
		a := c.rpcs[0]
		release := make(chan struct{})
		for _, r := range c.rpcs {
			// Blocks until released; asking for its process keeps its call
			// process from idling (and counting) after the call.
			must(t, Register(r, "block", func(ctx context.Context, _ any) (int, error) {
				_ = Process(ctx)
				select {
				case <-release:
				case <-ctx.Done(): // the node stops (a failed test)
				}
				return 1, nil
			}))
			must(t, Register(r, "add", add))
		}
		synctest.Wait()
		base := spin.Conversations()

		done := make(chan error, 1)
		go func() {
			_, err := a.Call(context.Background(), "b@10.0.0.2", "block", nil)
			done <- err
		}()
		synctest.Wait()
		require.Equal(t, base+1, spin.Conversations(), "a remote call's wait for its reply is a conversation")
		release <- struct{}{}
		require.NoError(t, <-done)
		synctest.Wait()
		require.Equal(t, base, spin.Conversations(), "the count ends with the call")

		multi := make(chan error, 1)
		go func() {
			_, bad, err := a.Multicall(context.Background(), []string{"b@10.0.0.2", "c@10.0.0.3"}, "block", nil)
			if err == nil && len(bad) > 0 {
				err = context.DeadlineExceeded
			}
			multi <- err
		}()
		synctest.Wait()
		require.Equal(t, base+1, spin.Conversations(), "Multicall's wait for its replies is one conversation")
		release <- struct{}{}
		release <- struct{}{}
		require.NoError(t, <-multi)
		synctest.Wait()
		require.Equal(t, base, spin.Conversations(), "the count ends with the Multicall (before its calls are recycled)")

		// A local call: its idle call process does not spin for the next.
		_, err := a.Call(context.Background(), "a@10.0.0.1", "add", pair{1, 2})
		require.NoError(t, err)
		synctest.Wait()
		require.Equal(t, base, spin.Conversations())
		require.Zero(t, idleFails(a), "a call process that answered its own node waits without spinning")

		// A remote call: b's idle call process spins for b's next call
		// (in vain here: none comes) and no longer counts once parked.
		_, err = a.Call(context.Background(), "b@10.0.0.2", "add", pair{1, 2})
		require.NoError(t, err)
		synctest.Wait()
		require.Equal(t, uint8(1), idleFails(c.rpcs[1]), "an idle call process that answered another node spins as a server")
		require.Equal(t, base, spin.Conversations(), "a parked idle call process is not a conversation")
	})
}

// A Requests collection's wait for a reply from another node spins
// before it parks: it counts as a conversation while it waits, and no
// longer once it has its response; a wait for requests to its own node
// only does not spin.
func TestRequestsWaitSpins(t *testing.T) {
	if !spin.Supported {
		t.Skip("no spin on this OS")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(8))
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 43, []string{"a@10.0.0.1", "b@10.0.0.2"})
		defer c.stop()
		a := c.rpcs[0]
		release := make(chan struct{})
		for _, r := range c.rpcs {
			must(t, Register(r, "block", func(ctx context.Context, _ any) (int, error) {
				_ = Process(ctx) // its call process does not idle (and count) after
				select {
				case <-release:
				case <-ctx.Done():
				}
				return 1, nil
			}))
		}
		synctest.Wait()
		base := spin.Conversations()
		for _, tc := range []struct {
			node  string
			count int32
		}{{"b@10.0.0.2", 1}, {"a@10.0.0.1", 0}} {
			reqs := NewRequests[string](a)
			must(t, reqs.Send(context.Background(), tc.node, "block", nil, "x"))
			done := make(chan error, 1)
			go func() {
				resp, err := reqs.Receive(context.Background())
				if err == nil {
					err = resp.Err
				}
				done <- err
			}()
			synctest.Wait()
			require.Equal(t, base+tc.count, spin.Conversations(), "a collection's wait for %s", tc.node)
			release <- struct{}{}
			require.NoError(t, <-done)
			synctest.Wait()
			require.Equal(t, base, spin.Conversations(), "the count ends with the wait")
		}
	})
}

// An idle call process handed a call from another node counts as a
// conversation while it runs it, so that concurrent calls being served
// keep the reader from yielding to one of them (dist.yieldToSpinner);
// parked idle again, it no longer counts.
func TestServedCallCountsAsConversation(t *testing.T) {
	if !spin.Supported {
		t.Skip("no spin on this OS")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(8))
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 45, []string{"a@10.0.0.1", "b@10.0.0.2"})
		defer c.stop()
		a, b := c.rpcs[0], c.rpcs[1]
		release := make(chan struct{})
		must(t, Register(b, "add", add))
		must(t, Register(b, "wait", func(ctx context.Context, _ any) (int, error) {
			select { // no Process(ctx): its call process idles after
			case <-release:
			case <-ctx.Done():
			}
			return 1, nil
		}))
		_, err := a.Call(context.Background(), "b@10.0.0.2", "add", pair{1, 2})
		require.NoError(t, err)
		synctest.Wait() // b's call process is idle
		base := spin.Conversations()
		procs := b.Stats().CallProcs

		done := make(chan error, 1)
		go func() {
			_, err := a.Call(context.Background(), "b@10.0.0.2", "wait", nil)
			done <- err
		}()
		synctest.Wait()
		require.Equal(t, procs, b.Stats().CallProcs, "the idle call process runs it")
		require.Equal(t, base+2, spin.Conversations(), "the caller's wait and the call being served")
		release <- struct{}{}
		require.NoError(t, <-done)
		synctest.Wait()
		require.Equal(t, base, spin.Conversations(), "parked idle again, it does not count")
	})
}

// A call is handed to the idle call process that spins for one, which takes
// it without being woken, rather than to the warmest (the last parked); with
// none spinning, to the warmest.
func TestHandOffPrefersTheSpinner(t *testing.T) {
	if !spin.Supported {
		t.Skip("no spin on this OS")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2)) // one spinner at a time
	var pp procPool
	cps := make([]*callProc, 3)
	for i := range cps {
		cps[i] = &callProc{next: make(chan job, 1)}
		require.True(t, pp.park(cps[i]))
	}
	spinner := cps[1] // neither the first parked nor the warmest
	held, release := make(chan struct{}), make(chan struct{})
	spun := make(chan struct{})
	go func() {
		defer close(spun)
		once := false
		spinner.w.Spin(func() bool {
			if !once {
				once = true
				close(held) // spinning now
				<-release
			}
			return len(spinner.next) != 0
		})
	}()
	<-held
	require.True(t, pp.handOff(job{}))
	close(release)
	<-spun
	spinner.w.End()
	require.Len(t, spinner.next, 1, "the spinner got the call")
	require.Empty(t, cps[2].next, "not the warmest")
	require.True(t, pp.handOff(job{}))
	require.Len(t, cps[2].next, 1, "with none spinning, the warmest")
	require.Equal(t, []*callProc{cps[0]}, pp.idle)
}
