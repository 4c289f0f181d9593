package supervisor

import (
	"context"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
)

const testCookie = "supervisor-test-cookie"

func stopNodes(nodes []*nodal.Node) {
	for _, n := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = n.Stop(ctx)
		cancel()
	}
}

// distWait polls cond until it holds or d passes.
func distWait(t *testing.T, d time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func alive(n *nodal.Node, pid nodal.Pid) bool {
	_, err := n.ProcessInfo(pid)
	return err == nil
}

func distSupWorker(p *nodal.Process) (nodal.Pid, error) {
	return p.Spawn(func(w *nodal.Process) error {
		<-w.Context().Done()
		return nil
	}, nodal.WithLink())
}

// Supervisor management from another node (OTP's supervisor calls on
// {Sup, Node}): which_children, count_children, terminate_child,
// restart_child, delete_child, start_child with extra args on a
// simple_one_for_one supervisor, and stopping it. Errors keep their
// identity across the wire; a child spec (Go functions) cannot travel and
// says so.
func TestDistSupervisorManagement(t *testing.T) {
	defer leaktest.AfterTest(t)()
	nodes := startSimCluster(t, nil, "a@127.0.0.1", "b@127.0.0.1")
	defer stopNodes(nodes)
	a, b := nodes[0], nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	sup, err := startSup(b, Spec{Children: []Child{
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

	_, err = StartChild(ctx, a, sup, Child{ID: "w3", Start: distSupWorker})
	require.ErrorIs(t, err, nodal.ErrCodec)
	require.Contains(t, err.Error(), "StartChild on the supervisor's node")
	require.NoError(t, TerminateChildPid(ctx, a, sup, pid))

	// simple_one_for_one: the args travel through the codec.
	got := make(chan any, 1)
	dyn, err := startSup(b, Spec{Strategy: SimpleOneForOne, Template: &ChildTemplate{
		Start: func(p *nodal.Process, args any) (nodal.Pid, error) {
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

	require.NoError(t, Stop(ctx, a, dyn))
	require.False(t, alive(b, child), "children have exited when Stop returns")
	require.NoError(t, Stop(ctx, a, sup))
	distWait(t, 10*time.Second, func() bool { return !alive(b, dyn) && !alive(b, sup) }, "the supervisors to exit")
}
