package replica

import (
	"bytes"
	"context"
	"runtime"
	"strconv"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"
)

// goid returns the current goroutine's number (from its stack header).
func goid() uint64 {
	b := make([]byte, 64)
	b = b[:runtime.Stack(b, false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	id, _ := strconv.ParseUint(string(b[:bytes.IndexByte(b, ' ')]), 10, 64)
	return id
}

// An Update that finds the engine idle runs its operation on the caller's
// goroutine (no hand-off), and OnChange has seen the change when it
// returns.
func TestUpdateRunsInlineWhenIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 1, testConfig(), "a@10.0.0.1")
		defer c.stop()
		a := c.members[0]
		synctest.Wait() // the engine is parked
		caller := goid()
		var ran uint64
		require.NoError(t, a.r.Update(context.Background(), func(s *State[string, string]) error {
			ran = goid()
			s.Add("inline", "v")
			return nil
		}))
		require.Equal(t, caller, ran, "an idle engine's Update runs on the caller's goroutine")
		require.True(t, hasChange(a.changes(), 1, "inline", Local), "OnChange saw the change before Update returned")

	})
}
