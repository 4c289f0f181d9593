package replica

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
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

// An Update sees every event delivered to the service before it was
// called, whether it runs on the caller's goroutine (the engine idle, its
// wake not yet taken) or is handed to the engine: a node whose NodeUp was
// delivered is up in it, one whose NodeDown was delivered is not. A heal's
// reconciler relies on it: it calls Sync once the returning node's NodeUp
// is delivered, and Sync must count that node among its peers.
func TestUpdateSeesEventsDeliveredBefore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 1, testConfig(), "a@10.0.0.1")
		defer c.stop()
		a := c.members[0]
		svc := &service[string, string]{a.r}
		var missed []string
		for i := range 500 {
			ref := nodal.NodeRef{Name: fmt.Sprintf("x%d@10.0.9.9", i), Incarnation: 1}
			svc.NodeUp(ref)
			if !a.up(t, ref.Name) {
				missed = append(missed, "up "+ref.Name)
			}
			svc.NodeDown(ref, nil)
			if a.up(t, ref.Name) {
				missed = append(missed, "down "+ref.Name)
			}
		}
		require.Empty(t, missed, "%d Updates of 1000 missed a node event delivered before them", len(missed))
	})
}
