package rpc

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// A ctx without a deadline gets the default timeout without a timer of its
// own: giving it and ending it allocates nothing once warm, and the waits
// for replies take a recycled timer (waitOn) instead of arming it.
func TestDefaultDeadlineMakesNoTimer(t *testing.T) {
	r := &RPC{cfg: Config{}.withDefaults()}
	allocs := testing.AllocsPerRun(100, func() {
		ctx, tc := r.defaultDeadline(context.Background())
		done, tm, fired := r.waitOn(ctx)
		if done != nil || fired == nil {
			t.Fatal("a default deadline's wait selects on a recycled timer")
		}
		r.putTimer(tm)
		endDeadline(tc)
	})
	if !raceEnabled {
		require.Zero(t, allocs, "a default deadline and its wait allocate nothing")
	}

	// A ctx with its own deadline is kept as it is.
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	got, tc := r.defaultDeadline(ctx)
	require.Equal(t, ctx, got)
	require.Nil(t, tc)
}

// The default deadline behaves as context.WithTimeout's would: Deadline
// and Err tell it, the parent's cancellation is seen, and a Done asked for
// (a rare wait) is closed at the deadline.
func TestTimeoutCtx(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &RPC{cfg: Config{DefaultTimeout: time.Second}.withDefaults()}
		start := time.Now()

		ctx, tc := r.defaultDeadline(context.Background())
		dl, ok := ctx.Deadline()
		require.True(t, ok)
		require.Equal(t, start.Add(time.Second), dl)
		require.NoError(t, ctx.Err())
		_, _, fired := r.waitOn(ctx)
		<-fired
		require.ErrorIs(t, ctx.Err(), context.DeadlineExceeded, "the deadline passed with the wait's timer")
		endDeadline(tc)

		parent, cancel := context.WithCancel(context.Background())
		ctx, tc = r.defaultDeadline(parent)
		done, _, _ := r.waitOn(ctx)
		cancel()
		<-done
		require.ErrorIs(t, ctx.Err(), context.Canceled)
		endDeadline(tc)

		ctx, tc = r.defaultDeadline(context.Background())
		start = time.Now()
		<-ctx.Done() // armed: a timer of its own from now on
		require.Equal(t, time.Second, time.Since(start))
		require.ErrorIs(t, ctx.Err(), context.DeadlineExceeded)
		done, tm, _ := r.waitOn(ctx)
		require.Nil(t, tm, "an armed ctx's wait uses its Done")
		require.Equal(t, ctx.Done(), done)
		endDeadline(tc)
	})
}

// A Requests collection's Receive without a deadline ends at the default
// timeout with ErrTimeout, having abandoned its requests.
func TestRequestsReceiveDefaultTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Config{DefaultTimeout: 3 * time.Second}
		c := startCluster(t, 44, []string{"a@10.0.0.1", "b@10.0.0.2"}, cfg, cfg)
		defer c.stop()
		release := make(chan struct{})
		defer close(release)
		must(t, Register(c.rpcs[1], "block", func(ctx context.Context, _ any) (int, error) {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return 1, nil
		}))
		reqs := NewRequests[int](c.rpcs[0])
		must(t, reqs.Send(context.Background(), "b@10.0.0.2", "block", nil, 1))
		start := time.Now()
		_, err := reqs.Receive(context.Background())
		require.ErrorIs(t, err, ErrTimeout)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, 3*time.Second, time.Since(start))
		require.Zero(t, reqs.Len(), "Receive abandoned it")
	})
}
