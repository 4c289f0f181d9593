package rpc

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// Calls whose functions never ask for their process run one after another
// on the same idle call process instead of a new process each.
func TestIdleCallProcessRunsTheNextCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 11, []string{"a@10.0.0.1", "b@10.0.0.2"})
		defer c.stop()
		a, b := c.rpcs[0], c.rpcs[1]
		must(t, Register(b, "add", add))
		before := b.Stats().CallProcs
		for i := range 50 {
			v, err := CallAs[int](context.Background(), a, "b@10.0.0.2", "add", pair{i, 1})
			require.NoError(t, err)
			require.Equal(t, i+1, v)
			synctest.Wait() // the call process is idle again
		}
		require.LessOrEqual(t, b.Stats().CallProcs-before, uint64(1), "one call process for 50 sequential calls")
		require.Equal(t, uint64(50), b.Stats().Served)
	})
}

// A function that asks for its process gets a process of its own, as a new
// one, that ends after the call: it is never reused.
func TestProcessOfAFunctionIsItsOwn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 12, []string{"a@10.0.0.1", "b@10.0.0.2"})
		defer c.stop()
		a, b := c.rpcs[0], c.rpcs[1]
		must(t, Register(b, "add", add))
		must(t, Register(b, "self", func(ctx context.Context, _ any) (nodal.Pid, error) {
			return Process(ctx).Self(), nil
		}))
		seen := map[nodal.Pid]bool{}
		for range 10 {
			// An add first, so that an idle call process is there to reuse.
			_, err := a.Call(context.Background(), "b@10.0.0.2", "add", pair{1, 2})
			require.NoError(t, err)
			synctest.Wait()
			pid, err := CallAs[nodal.Pid](context.Background(), a, "b@10.0.0.2", "self", nil)
			require.NoError(t, err)
			require.False(t, seen[pid], "pid %v ran an earlier call", pid)
			seen[pid] = true
			synctest.Wait()
			_, err = b.Node().ProcessInfo(pid)
			require.ErrorIs(t, err, nodal.ErrNoProc, "the process ended with its call")
		}
	})
}

// The ctx a function got is done once the function has returned, and no
// longer gives its process, even though the process lives on.
func TestCallCtxDoneAfterReturn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 13, []string{"a@10.0.0.1", "b@10.0.0.2"})
		defer c.stop()
		a, b := c.rpcs[0], c.rpcs[1]
		after := make(chan *nodal.Process, 1)
		must(t, Register(b, "leak", func(ctx context.Context, _ any) (int, error) {
			go func() {
				<-ctx.Done()
				after <- Process(ctx)
			}()
			return 1, nil
		}))
		_, err := a.Call(context.Background(), "b@10.0.0.2", "leak", nil)
		require.NoError(t, err)
		select {
		case p := <-after:
			require.Nil(t, p)
		case <-time.After(time.Second):
			t.Fatal("the function's ctx is not done after it returned")
		}
	})
}

// Idle call processes that are killed are not handed calls; calls go on,
// on new processes.
func TestKilledIdleCallProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 14, []string{"a@10.0.0.1", "b@10.0.0.2"})
		defer c.stop()
		a, b := c.rpcs[0], c.rpcs[1]
		must(t, Register(b, "add", add))
		for round := range 3 {
			_, err := a.Call(context.Background(), "b@10.0.0.2", "add", pair{round, 1})
			require.NoError(t, err)
			synctest.Wait()
			var idle []nodal.Pid
			b.running.each(func(pid nodal.Pid) { idle = append(idle, pid) })
			require.NotEmpty(t, idle)
			for _, pid := range idle {
				b.Node().Exit(pid, nodal.ReasonKill)
			}
			synctest.Wait()
			require.Empty(t, b.idle.idle, "killed call processes left the idle ones")
		}
		v, err := CallAs[int](context.Background(), a, "b@10.0.0.2", "add", pair{2, 2})
		require.NoError(t, err)
		require.Equal(t, 4, v)
	})
}

// A call handed to an idle call process as it is killed gets the kill as
// its outcome, not silence.
func TestHandOffToDyingCallProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 15, []string{"a@10.0.0.1", "b@10.0.0.2"})
		defer c.stop()
		a, b := c.rpcs[0], c.rpcs[1]
		must(t, Register(b, "add", add))
		_, err := a.Call(context.Background(), "b@10.0.0.2", "add", pair{1, 1})
		require.NoError(t, err)
		synctest.Wait()
		require.Len(t, b.idle.idle, 1)
		// Hold the pool's lock so that the process, killed (its ctx is done
		// when Exit returns), cannot leave before a call is handed to it.
		var pid nodal.Pid
		b.running.each(func(p nodal.Pid) { pid = p })
		b.idle.mu.Lock()
		b.Node().Exit(pid, nodal.ReasonKill)
		cp := b.idle.idle[0]
		b.idle.idle = b.idle.idle[:0]
		id := a.nextID.Add(1)
		p := &pending{id: id, node: "b@10.0.0.2", fn: "add", ch: make(chan struct{}, 1)}
		a.pending.add(p)
		req, err := decodeRequest(appendRequestHeader(nil, kindCall, id, 0, time.Second, "add"))
		require.NoError(t, err)
		busy := b.servingCount("a@10.0.0.1")
		busy.Add(1) // as serve counts it
		cp.next <- job{from: nodal.NodeRef{Name: "a@10.0.0.1", Incarnation: a.inc}, req: req,
			f: (*b.funcs.Load())["add"], busy: busy}
		b.idle.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = a.receive(ctx, ReqID{id: id, node: "b@10.0.0.2", fn: "add"}, true)
		var ke *KilledError
		require.True(t, errors.As(err, &ke), "got %v", err)
		require.Equal(t, nodal.ReasonKilled.Error(), ke.Reason)
		p2ptest.Eventually(t, 10*time.Second, func() bool { return b.servingCount("a@10.0.0.1").Load() == 0 }, "slot freed")
	})
}

// The built-in rpc.stats returns the callee's counters: the calls it
// served and the call processes it started for them (idle ones ran the
// later calls).
func TestBuiltinStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 1, []string{"a@10.0.0.1", "b@10.0.0.2"})
		defer c.stop()
		a, b := c.rpcs[0], c.rpcs[1]
		ctx := context.Background()
		for range 5 {
			_, err := a.Call(ctx, "b@10.0.0.2", "rpc.echo", 1)
			require.NoError(t, err)
		}
		st, err := CallAs[Stats](ctx, a, "b@10.0.0.2", "rpc.stats", nil)
		require.NoError(t, err)
		require.Equal(t, uint64(6), st.Served, "five echoes and rpc.stats itself")
		// Mostly one: a call that comes before the last one's process is
		// idle again gets a new one.
		require.GreaterOrEqual(t, st.CallProcs, uint64(1))
		require.LessOrEqual(t, st.CallProcs, st.Served)
		require.Equal(t, b.Stats(), st)
		require.Equal(t, uint64(6), a.Stats().Calls)
	})
}
