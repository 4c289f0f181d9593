package nodal

import (
	"context"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
)

func distSupWorker(p *Process) (Pid, error) {
	return p.Spawn(func(w *Process) error {
		<-w.Context().Done()
		return nil
	}, WithLink())
}

// Supervisor management from another node (OTP's supervisor calls on
// {Sup, Node}): which_children, count_children, terminate_child,
// restart_child, delete_child, start_child with extra args on a
// simple_one_for_one supervisor, and stopping it. Errors keep their
// identity across the wire; a child spec (Go functions) cannot travel and
// says so.
func TestDistSupervisorManagement(t *testing.T) {
	defer leaktest.AfterTest(t)()
	nodes := startDistCluster(t, "a@127.0.0.1", "b@127.0.0.1")
	defer stopNodes(nodes)
	a, b := nodes[0], nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	sup, err := StartSupervisor(b, SupervisorSpec{Children: []ChildSpec{
		{ID: "w1", Start: distSupWorker},
		{ID: "w2", Start: distSupWorker, Restart: Transient},
	}})
	require.NoError(t, err)

	kids, err := WhichChildren(ctx, a, sup)
	require.NoError(t, err)
	require.Len(t, kids, 2)
	require.Equal(t, "w1", kids[0].ID)
	require.Equal(t, b.Name(), kids[0].Pid.Node)
	require.Equal(t, ChildWorker, kids[0].Type)
	count, err := CountChildren(ctx, a, sup)
	require.NoError(t, err)
	require.Equal(t, ChildCount{Specs: 2, Active: 2, Workers: 2}, count)

	require.NoError(t, TerminateChild(ctx, a, sup, "w2"))
	kids, err = WhichChildren(ctx, a, sup)
	require.NoError(t, err)
	require.True(t, kids[1].Pid.IsZero(), "w2 stopped")
	pid, err := RestartChild(ctx, a, sup, "w2")
	require.NoError(t, err)
	require.Equal(t, b.Name(), pid.Node)
	require.True(t, alive(b, pid))

	err = DeleteChild(ctx, a, sup, "w1")
	require.ErrorIs(t, err, ErrChildRunning)
	var ce *ChildError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "w1", ce.ID)
	err = TerminateChild(ctx, a, sup, "nope")
	require.ErrorIs(t, err, ErrChildNotFound)
	require.Contains(t, err.Error(), `"nope"`)
	_, err = RestartChild(ctx, a, sup, "w1")
	require.ErrorIs(t, err, ErrChildRunning)

	_, err = StartChild(ctx, a, sup, ChildSpec{ID: "w3", Start: distSupWorker})
	require.ErrorIs(t, err, ErrCodec)
	require.Contains(t, err.Error(), "StartChild on the supervisor's node")
	require.NoError(t, TerminateChildPid(ctx, a, sup, pid))

	// simple_one_for_one: the args travel through the codec.
	got := make(chan any, 1)
	dyn, err := StartSupervisor(b, SupervisorSpec{Strategy: SimpleOneForOne, Template: &ChildTemplate{
		Start: func(p *Process, args any) (Pid, error) {
			got <- args
			return distSupWorker(p)
		},
	}})
	require.NoError(t, err)
	child, err := StartDynamicChild(ctx, a, dyn, "job-7")
	require.NoError(t, err)
	require.Equal(t, b.Name(), child.Node)
	require.Equal(t, "job-7", <-got)
	_, err = RestartChild(ctx, a, dyn, "x")
	require.ErrorIs(t, err, ErrWrongStrategy)

	require.NoError(t, StopSupervisor(ctx, a, dyn))
	require.False(t, alive(b, child), "children have exited when StopSupervisor returns")
	require.NoError(t, StopSupervisor(ctx, a, sup))
	distWait(t, 10*time.Second, func() bool { return !alive(b, dyn) && !alive(b, sup) }, "the supervisors to exit")
}
