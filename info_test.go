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

// Fresh tells what ProcessInfo would of a process as a new one: each link,
// monitor (either way), name, exit trap or waiting message makes it not
// fresh, and undoing it makes it fresh again; a dead process is not fresh.
func TestProcessFresh(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	p, w := probe(t, n), probe(t, n)
	other, err := n.Spawn(blockForever)
	require.NoError(t, err)
	require.True(t, p.Fresh(), "a new process")
	var ref Ref
	for _, step := range []struct {
		what     string
		do, undo func()
	}{
		{"linked", func() { p.Link(other) }, func() { p.Unlink(other) }},
		{"holding a monitor", func() { ref = p.Monitor(other) }, func() { p.Demonitor(ref, true) }},
		{"monitored", func() { ref = w.Monitor(p.Self()) }, func() { w.Demonitor(ref, true) }},
		{"named", func() { require.NoError(t, p.Register("fresh-test")) }, func() { require.NoError(t, p.Unregister()) }},
		{"trapping exits", func() { p.TrapExit(true) }, func() { p.TrapExit(false) }},
		{"with a message waiting", func() { n.Send(p.Self(), "m") }, func() { require.Equal(t, "m", recv(t, p)) }},
	} {
		step.do()
		require.False(t, p.Fresh(), step.what)
		info, err := n.ProcessInfo(p.Self())
		require.NoError(t, err)
		require.False(t, info.MessageQueueLen == 0 && len(info.Links) == 0 && len(info.Monitors) == 0 &&
			len(info.MonitoredBy) == 0 && info.RegisteredName == "" && !info.TrapExit, "ProcessInfo agrees: %s", step.what)
		step.undo()
		require.True(t, p.Fresh(), "no longer %s", step.what)
	}

	got := make(chan *Process, 1)
	pid, err := n.Spawn(func(q *Process) error { got <- q; return nil })
	require.NoError(t, err)
	q := waitFor(t, nil, got, "the process")
	ref = w.Monitor(pid)
	waitDown(t, w, ref)
	require.False(t, q.Fresh(), "a dead process")
	n.Exit(other, ReasonKill)
}
