package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/p2p/p2ptest"
)

type pair struct{ A, B int }

var errNotFound = errors.New("test: not found")

func init() {
	if err := RegisterError("test.notfound", errNotFound); err != nil {
		panic(err)
	}
}

func add(_ context.Context, p pair) (int, error) { return p.A + p.B, nil }

// A call returns its typed result, to another node and to this node.
func TestCallResult(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 1, []string{"a@10.0.0.1", "b@10.0.0.2"})
		defer c.stop()
		for _, r := range c.rpcs {
			must(t, Register(r, "add", add))
		}
		a := c.rpcs[0]
		for _, node := range []string{"b@10.0.0.2", "a@10.0.0.1"} {
			v, err := CallAs[int](context.Background(), a, node, "add", pair{2, 3})
			require.NoError(t, err)
			require.Equal(t, 5, v)
		}
		pid, err := CallAs[int](context.Background(), a, "b@10.0.0.2", "os.getpid", nil)
		require.NoError(t, err)
		require.Positive(t, pid)
		info, err := CallAs[NodeInfo](context.Background(), a, "b@10.0.0.2", "node.info", nil)
		require.NoError(t, err)
		require.Equal(t, "b@10.0.0.2", info.Name)
		require.Contains(t, info.Services, ServiceName)

		fs, err := a.FunctionsOn(context.Background(), "b@10.0.0.2")
		require.NoError(t, err)
		var names []string
		for _, f := range fs {
			names = append(names, f.Name)
		}
		require.Contains(t, names, "add")
		require.Contains(t, names, "node.processes")
		require.Equal(t, a.Functions(), fs)

		out, err := a.CallJSON(context.Background(), "b@10.0.0.2", "add", json.RawMessage(`{"A":40,"B":2}`))
		require.NoError(t, err)
		require.JSONEq(t, `42`, string(out))
		_, err = a.CallJSON(context.Background(), "b@10.0.0.2", "add", json.RawMessage(`[1`))
		require.ErrorIs(t, err, ErrBadArgs)
	})
}

// Every error class of erpc, each reachable with errors.Is / errors.As.
func TestCallErrorClasses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 2, []string{"a@10.0.0.1", "b@10.0.0.2"}, Config{}, Config{MaxConcurrent: 1})
		defer c.stop()
		a, b := c.rpcs[0], c.rpcs[1]
		const B = "b@10.0.0.2"
		pids := make(chan nodal.Pid, 1)
		release := make(chan struct{})
		must(t, Register(b, "add", add))
		must(t, Register(b, "fail", func(_ context.Context, key string) (int, error) {
			return 0, fmt.Errorf("lookup %q: %w", key, errNotFound)
		}))
		must(t, Register(b, "boom", func(context.Context, any) (int, error) { panicHere(); return 0, nil }))
		must(t, Register(b, "block", func(ctx context.Context, _ any) (int, error) {
			pids <- Process(ctx).Self()
			<-ctx.Done()
			return 0, ctx.Err()
		}))
		must(t, Register(b, "exit", func(ctx context.Context, _ any) (int, error) {
			Process(ctx).Exit(errors.New("bye"))
			return 0, nil
		}))
		must(t, Register(b, "slow", func(ctx context.Context, _ any) (int, error) {
			<-release
			return 1, nil
		}))
		ctx := context.Background()
		// t.Run cannot run inside a bubble: steps are logged instead.
		step := func(name string, f func(t *testing.T)) { t.Log(name); f(t) }

		step("function error", func(t *testing.T) {
			_, err := a.Call(ctx, B, "fail", "k")
			var fe *FuncError
			require.ErrorAs(t, err, &fe)
			require.Equal(t, `lookup "k": test: not found`, fe.Text)
			require.ErrorIs(t, err, errNotFound)
			var ce *CallError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, B, ce.Node)
			require.Equal(t, "fail", ce.Func)
		})
		step("panic", func(t *testing.T) {
			_, err := a.Call(ctx, B, "boom", nil)
			var pe *PanicError
			require.ErrorAs(t, err, &pe)
			require.Equal(t, "kaboom", pe.Value)
			require.Contains(t, pe.Stack, "rpc.panicHere")
			require.NotContains(t, pe.Stack, "runtime.gopanic")
			require.NotContains(t, pe.Stack, "rpc.(*RPC).run", "trimmed to the function")
		})
		step("killed", func(t *testing.T) {
			done := make(chan error, 1)
			go func() { _, err := a.Call(ctx, B, "block", nil); done <- err }()
			c.nodes[1].Exit(<-pids, nodal.ReasonKill)
			err := <-done
			var ke *KilledError
			require.ErrorAs(t, err, &ke)
			require.False(t, ke.SelfExit)
			require.ErrorIs(t, err, nodal.ReasonKilled)
		})
		step("exited", func(t *testing.T) {
			_, err := a.Call(ctx, B, "exit", nil)
			var ke *KilledError
			require.ErrorAs(t, err, &ke)
			require.True(t, ke.SelfExit)
		})
		step("no connection", func(t *testing.T) {
			_, err := a.Call(ctx, "z@10.0.0.9", "add", pair{})
			require.ErrorIs(t, err, ErrNoConnection)
		})
		step("no such function", func(t *testing.T) {
			_, err := a.Call(ctx, B, "nope", nil)
			require.ErrorIs(t, err, ErrNoFunction)
		})
		step("bad arguments at the callee", func(t *testing.T) {
			_, err := a.Call(ctx, B, "add", "not a pair")
			require.ErrorIs(t, err, ErrBadArgs)
		})
		step("bad arguments at the caller", func(t *testing.T) {
			_, err := a.Call(ctx, B, "add", struct{ C chan int }{})
			require.ErrorIs(t, err, ErrBadArgs)
			require.ErrorIs(t, a.Cast(ctx, B, "add", struct{ C chan int }{}), ErrBadArgs)
		})
		step("timeout, and the late reply is dropped", func(t *testing.T) {
			late := a.Stats().LateReplies
			tctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			_, err := a.Call(tctx, B, "slow", nil)
			require.ErrorIs(t, err, ErrTimeout)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.Contains(t, err.Error(), "may or may not have been applied")
			close(release)
			p2ptest.Eventually(t, 10*time.Second, func() bool { return a.Stats().LateReplies == late+1 }, "late reply counted")
		})
		step("system limit", func(t *testing.T) {
			// b runs one call per caller node at once.
			go func() { _, _ = a.Call(ctx, B, "block", nil) }()
			pid := <-pids
			_, err := a.Call(ctx, B, "add", pair{})
			require.ErrorIs(t, err, ErrSystemLimit)
			c.nodes[1].Exit(pid, nodal.ReasonKill)
			p2ptest.Eventually(t, 10*time.Second, func() bool {
				_, err := a.Call(ctx, B, "add", pair{})
				return err == nil
			}, "limit frees up")
		})
		step("default timeout", func(t *testing.T) {
			start := time.Now()
			go func() { <-pids }()
			_, err := a.Call(ctx, B, "block", nil) // no deadline: DefaultTimeout
			require.ErrorIs(t, err, ErrTimeout)
			require.GreaterOrEqual(t, time.Since(start), DefaultTimeout) // fake time
		})
	})
}

//go:noinline
func panicHere() { panic("kaboom") }

// Stop kills the calls running on its node: their callers see shutdown.
func TestStopKillsRunningCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 3, []string{"a@10.0.0.1", "b@10.0.0.2"})
		defer c.stop()
		started := make(chan struct{})
		must(t, Register(c.rpcs[1], "block", func(ctx context.Context, _ any) (int, error) {
			close(started)
			<-ctx.Done()
			return 0, nil
		}))
		done := make(chan error, 1)
		go func() { _, err := c.rpcs[0].Call(context.Background(), "b@10.0.0.2", "block", nil); done <- err }()
		<-started
		require.NoError(t, c.rpcs[1].Stop(context.Background()))
		err := <-done
		require.ErrorIs(t, err, nodal.ReasonShutdown)
		_, err = c.rpcs[1].Call(context.Background(), "a@10.0.0.1", "rpc.echo", 1)
		require.ErrorIs(t, err, ErrStopped)
	})
}

// Cast runs the function and reports nothing but bad arguments; Broadcast
// reaches every node, this one included.
func TestCastAndBroadcast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		names := []string{"a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3"}
		c := startCluster(t, 4, names)
		defer c.stop()
		got := make(chan string, 8)
		for i, r := range c.rpcs {
			name := names[i]
			must(t, Register(r, "note", func(_ context.Context, s string) (string, error) {
				got <- name + ":" + s
				return name, nil
			}))
		}
		a := c.rpcs[0]
		require.NoError(t, a.Cast(context.Background(), names[1], "note", "hi"))
		require.Equal(t, "b@10.0.0.2:hi", <-got)
		require.NoError(t, a.Cast(context.Background(), "z@10.0.0.9", "note", "lost"), "errors other than bad arguments are ignored")
		require.NoError(t, a.Cast(context.Background(), names[1], "nope", "x"))

		res, bad, err := a.Broadcast(context.Background(), "note", "all")
		require.NoError(t, err)
		require.Empty(t, bad)
		require.Len(t, res, 3)
		for i, r := range res {
			require.Equal(t, names[i], r.Node)
			require.NoError(t, r.Err)
			require.Equal(t, names[i], r.Value)
		}
		seen := map[string]bool{}
		for range 3 {
			seen[<-got] = true
		}
		require.Len(t, seen, 3)
	})
}

// Multicall with one node down and one slow: results in input order, the
// down and the slow node reported as bad nodes.
func TestMulticallOneDownOneSlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		names := []string{"a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3", "d@10.0.0.4"}
		c := startCluster(t, 5, names)
		defer c.stop()
		for i, r := range c.rpcs {
			name := names[i]
			must(t, Register(r, "who", func(ctx context.Context, _ any) (string, error) {
				if name == "b@10.0.0.2" {
					time.Sleep(10 * time.Second) // slow, past the caller's deadline
				}
				return name, nil
			}))
		}
		// d goes down.
		require.NoError(t, c.nodes[3].Stop(context.Background()))
		p2ptest.Eventually(t, 60*time.Second, func() bool { return !contains(c.nodes[0].Nodes(), names[3]) }, "d down")

		a := c.rpcs[0]
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		order := []string{names[3], names[1], names[0], names[2]}
		res, bad, err := a.Multicall(ctx, order, "who", nil)
		require.NoError(t, err)
		require.Len(t, res, 4)
		for i, r := range res {
			require.Equal(t, order[i], r.Node)
		}
		require.ErrorIs(t, res[0].Err, ErrNoConnection)
		require.ErrorIs(t, res[1].Err, ErrTimeout)
		require.NoError(t, res[2].Err)
		require.Equal(t, names[0], res[2].Value)
		require.NoError(t, res[3].Err)
		require.Equal(t, names[2], res[3].Value)
		require.Equal(t, []string{names[3], names[1]}, bad)
	})
}

// An async request: WaitResponse keeps it when it times out (retry
// works); ReceiveResponse abandons it (the late reply is dropped).
func TestAsyncAbandonedVsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 6, []string{"a@10.0.0.1", "b@10.0.0.2"})
		defer c.stop()
		const B = "b@10.0.0.2"
		gate := make(chan struct{})
		must(t, Register(c.rpcs[1], "gated", func(_ context.Context, v int) (int, error) {
			<-gate
			return v * 2, nil
		}))
		a := c.rpcs[0]
		short := func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		}

		kept, err := a.SendRequest(context.Background(), B, "gated", 21)
		require.NoError(t, err)
		dropped, err := a.SendRequest(context.Background(), B, "gated", 1)
		require.NoError(t, err)
		require.Equal(t, B, kept.Node())

		ctx, cancel := short()
		_, ok, err := a.WaitResponse(ctx, kept)
		cancel()
		require.NoError(t, err)
		require.False(t, ok, "no response yet")

		ctx, cancel = short()
		_, err = a.ReceiveResponse(ctx, dropped)
		cancel()
		require.ErrorIs(t, err, ErrTimeout)

		late := a.Stats().LateReplies
		close(gate)
		v, ok, err := a.WaitResponse(context.Background(), kept) // retried
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, 42, v)
		p2ptest.Eventually(t, 10*time.Second, func() bool { return a.Stats().LateReplies == late+1 }, "abandoned reply dropped")
		_, err = a.ReceiveResponse(context.Background(), dropped)
		require.ErrorIs(t, err, ErrNoRequest)
		_, err = a.ReceiveResponse(context.Background(), kept)
		require.ErrorIs(t, err, ErrNoRequest, "received once")
	})
}

// A labelled collection of requests (OTP 25 reqids): each response comes
// with its label; a timeout of Receive abandons the rest; an empty
// collection says so.
func TestRequestsCollection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 7, []string{"a@10.0.0.1", "b@10.0.0.2"})
		defer c.stop()
		for _, r := range c.rpcs {
			must(t, Register(r, "sleep", func(ctx context.Context, d int) (int, error) {
				select {
				case <-time.After(time.Duration(d) * time.Second):
				case <-ctx.Done():
				}
				return d, nil
			}))
		}
		a := c.rpcs[0]
		reqs := NewRequests[string](a)
		_, err := reqs.Receive(context.Background())
		require.ErrorIs(t, err, ErrNoRequest)
		ctx := context.Background()
		require.NoError(t, reqs.Send(ctx, "b@10.0.0.2", "sleep", 3, "three"))
		require.NoError(t, reqs.Send(ctx, "a@10.0.0.1", "sleep", 1, "one"))
		id, err := a.SendRequest(ctx, "b@10.0.0.2", "sleep", 0)
		require.NoError(t, err)
		synctest.Wait() // its reply is in: Add takes it along
		require.NoError(t, reqs.Add(id, "zero"))
		require.ErrorIs(t, reqs.Add(id, "again"), ErrNoRequest)
		require.Equal(t, 3, reqs.Len())

		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		var labels []string
		for reqs.Len() > 0 {
			resp, ok, err := reqs.Wait(wctx)
			require.NoError(t, err)
			require.True(t, ok)
			require.NoError(t, resp.Err)
			labels = append(labels, resp.Label)
		}
		require.Equal(t, []string{"zero", "one", "three"}, labels)

		require.NoError(t, reqs.Send(ctx, "b@10.0.0.2", "sleep", 5, "five"))
		sctx, scancel := context.WithTimeout(ctx, time.Second)
		_, ok, err := reqs.Wait(sctx)
		scancel()
		require.NoError(t, err)
		require.False(t, ok)
		require.Equal(t, 1, reqs.Len(), "Wait keeps it")
		sctx, scancel = context.WithTimeout(ctx, time.Second)
		_, err = reqs.Receive(sctx)
		scancel()
		require.ErrorIs(t, err, ErrTimeout)
		require.Equal(t, 0, reqs.Len(), "Receive abandoned it")
	})
}

// A call across a partition: the one in flight fails with no connection,
// the next fails fast (breaker open, nothing sent), and calls work again
// once the partition heals (the breaker closes).
func TestPartitionBreakerOpensAndCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 8, []string{"a@10.0.0.1", "b@10.0.0.2"})
		defer c.stop()
		const B = "b@10.0.0.2"
		started := make(chan struct{}, 1)
		must(t, Register(c.rpcs[1], "hang", func(ctx context.Context, _ any) (int, error) {
			started <- struct{}{}
			<-ctx.Done()
			return 0, nil
		}))
		a := c.rpcs[0]
		_, err := a.Call(context.Background(), B, "rpc.echo", 1)
		require.NoError(t, err)
		require.False(t, a.BreakerOpen(B))

		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		inflight := make(chan error, 1)
		go func() { _, err := a.Call(ctx, B, "hang", nil); inflight <- err }()
		<-started
		c.net.Partition("a@10.0.0.1", B)
		err = <-inflight
		require.ErrorIs(t, err, ErrNoConnection)
		require.NotErrorIs(t, err, ErrTimeout)
		require.True(t, a.BreakerOpen(B))

		ff := a.Stats().FailFast
		_, err = a.Call(ctx, B, "rpc.echo", 1)
		require.ErrorIs(t, err, ErrNoConnection)
		require.ErrorIs(t, err, ErrNodeDown)
		require.Equal(t, ff+1, a.Stats().FailFast)

		c.rejoin(0, 1)
		p2ptest.Eventually(t, 60*time.Second, func() bool {
			cctx, ccancel := context.WithTimeout(context.Background(), time.Second)
			defer ccancel()
			_, err := a.Call(cctx, B, "rpc.echo", 1)
			return err == nil
		}, "calls work after the heal")
		require.False(t, a.BreakerOpen(B))
	})
}

// Pmap keeps the order of its items and redoes elsewhere the items of a
// node lost mid-way.
func TestPmapNodeLostMidway(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		names := []string{"a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3"}
		c := startCluster(t, 9, names)
		defer c.stop()
		var served [3]atomic.Int64
		lost := make(chan struct{})
		for i, r := range c.rpcs {
			must(t, Register(r, "square", func(ctx context.Context, v int) (int, error) {
				// Every item takes (fake) time, on a too: otherwise a's
				// own workers, calling locally, could run every item
				// before c's workers are even started.
				time.Sleep(time.Millisecond)
				if i == 2 && served[2].Add(1) >= 5 {
					if served[2].Load() == 5 {
						close(lost) // c hangs from its fifth item on
					}
					<-ctx.Done()
					return 0, ctx.Err()
				}
				if i != 2 {
					served[i].Add(1)
				}
				return v * v, nil
			}))
		}
		items := make([]int, 500)
		for i := range items {
			items[i] = i
		}
		go func() {
			<-lost
			c.net.Partition(names[0], names[2])
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := Pmap[int, int](ctx, c.rpcs[0], "square", items)
		require.NoError(t, err)
		for i, v := range out {
			require.Equal(t, i*i, v)
		}
		require.GreaterOrEqual(t, served[2].Load(), int64(5), "c took part before it was lost")
		// c answered at most its first 4 items (their replies may have been
		// lost to the partition too); a and b did every other one.
		ab := served[0].Load() + served[1].Load()
		require.GreaterOrEqual(t, ab, int64(len(items)-4), "c's items redone on a or b")
		require.LessOrEqual(t, ab, int64(len(items)))
	})
}

// Pmap with no item, and with a function that fails.
func TestPmapErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 10, []string{"a@10.0.0.1", "b@10.0.0.2"})
		defer c.stop()
		for _, r := range c.rpcs {
			must(t, Register(r, "odd", func(_ context.Context, v int) (int, error) {
				if v == 7 {
					return 0, errNotFound
				}
				return v, nil
			}))
		}
		out, err := Pmap[int, int](context.Background(), c.rpcs[0], "odd", nil)
		require.NoError(t, err)
		require.Empty(t, out)
		_, err = Pmap[int, int](context.Background(), c.rpcs[0], "odd", []int{1, 3, 7, 9})
		require.ErrorIs(t, err, errNotFound)
	})
}

// Register refuses what cannot work.
func TestRegisterRefuses(t *testing.T) {
	n, err := nodal.Start(context.Background(), nodal.Config{})
	require.NoError(t, err)
	defer n.Stop(context.Background())
	r, err := New(n, Config{})
	require.NoError(t, err)
	require.ErrorIs(t, Register(r, "", add), nodal.ErrBadOption)
	require.ErrorIs(t, Register(r, strings.Repeat("x", 300), add), nodal.ErrBadOption)
	require.ErrorIs(t, Register[pair, int](r, "nil", nil), nodal.ErrBadOption)
	require.NoError(t, Register(r, "add", add))
	require.ErrorIs(t, Register(r, "add", add), nodal.ErrBadOption)
	require.Error(t, Register(r, "ch", func(context.Context, chan int) (int, error) { return 0, nil }))
	_, err = New(n, Config{})
	require.Error(t, err, "one RPC per node")
	require.ErrorIs(t, Config{MaxConcurrent: -1}.Validate(), nodal.ErrInvalidConfig)
	// On a local-only node, calls to itself work.
	v, err := CallAs[int](context.Background(), r, n.Name(), "add", pair{1, 1})
	require.NoError(t, err)
	require.Equal(t, 2, v)
}
