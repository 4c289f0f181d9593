package nodal

import (
	"context"
	"runtime"
	"testing"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
)

// process_info: status, message queue length, links, monitors, registered
// name, trap_exit; a dead process has none (noproc).
func TestProcessInfo(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	waiting := make(chan struct{})
	proceed := make(chan struct{})
	other, err := n.Spawn(blockForever)
	require.NoError(t, err)
	var ref Ref
	pid, err := w.Spawn(func(p *Process) error {
		ref = p.Monitor(other)
		close(waiting)
		hold(proceed) // running, not in Receive
		_, err := p.ReceiveMatch(context.Background(), func(m any) bool { return m == "wake" })
		return err
	}, WithName("worker"), WithTrapExit(), WithLink())
	require.NoError(t, err)
	waitFor(t, nil, waiting, "waiting")
	wref := w.Monitor(pid)
	n.Send(pid, 1)
	n.Send(pid, 2)
	info, err := n.ProcessInfo(pid)
	require.NoError(t, err)
	require.Equal(t, ProcessInfo{
		Pid:             pid,
		Status:          StatusRunning,
		MessageQueueLen: 2,
		Links:           []Pid{w.Self()},
		Monitors:        []Ref{ref},
		MonitoredBy:     []Pid{w.Self()},
		RegisteredName:  "worker",
		TrapExit:        true,
	}, info)
	close(proceed)
	// The process scans its mailbox and parks: it is waiting, its two
	// messages still queued.
	for {
		info, err = n.ProcessInfo(pid)
		require.NoError(t, err)
		if info.Status == StatusWaiting {
			break
		}
		runtime.Gosched()
	}
	require.Equal(t, 2, info.MessageQueueLen)
	n.Send(pid, "wake")
	waitDown(t, w, wref)
	_, err = n.ProcessInfo(pid)
	require.ErrorIs(t, err, ErrNoProc)
	_, err = n.ProcessInfo(Pid{Node: "other@host", ID: 1, Incarnation: 1})
	require.ErrorIs(t, err, ErrNoProc)
	require.Equal(t, "waiting", StatusWaiting.String())
	require.Equal(t, "idle", StatusIdle.String())
}

type terminateProbe struct {
	in, out chan struct{}
}

func (a terminateProbe) Init(*Process) error               { return nil }
func (a terminateProbe) HandleMessage(*Process, any) error { return ReasonNormal }
func (a terminateProbe) Terminate(*Process, error)         { close(a.in); hold(a.out) }

// An actor running Terminate reports StatusExiting; idle actors report
// StatusIdle.
func TestProcessInfoActorStatuses(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	a := terminateProbe{in: make(chan struct{}), out: make(chan struct{})}
	pid, err := n.SpawnActor(a)
	require.NoError(t, err)
	info, err := n.ProcessInfo(pid)
	require.NoError(t, err)
	require.Equal(t, StatusIdle, info.Status)
	n.Send(pid, "stop")
	waitFor(t, nil, a.in, "a.in")
	info, err = n.ProcessInfo(pid)
	require.NoError(t, err)
	require.Equal(t, StatusExiting, info.Status)
	close(a.out)
}
