package nodal

import (
	"errors"
	"testing"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
)

// Erlang: each monitor call makes a new reference, and each monitor delivers
// exactly one 'DOWN' with the exit reason.
func TestMonitorNewRefEachCallDownExactlyOnce(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	target, err := n.Spawn(blockForever)
	require.NoError(t, err)
	r1 := w.Monitor(target)
	r2 := w.Monitor(target)
	require.NotEqual(t, r1, r2)
	info, err := n.ProcessInfo(target)
	require.NoError(t, err)
	require.Equal(t, []Pid{w.Self(), w.Self()}, info.MonitoredBy)

	boom := errors.New("boom")
	n.Exit(target, boom)
	got := map[Ref]Down{}
	for range 2 {
		d := recv(t, w).(Down)
		got[d.Ref] = d
	}
	require.Equal(t, Down{Ref: r1, Pid: target, Reason: boom}, got[r1])
	require.Equal(t, Down{Ref: r2, Pid: target, Reason: boom}, got[r2])
	// Nothing more: a second exit signal to the dead pid adds no Down.
	n.Exit(target, boom)
	require.Equal(t, 0, queueLen(t, w))
	winfo, err := n.ProcessInfo(w.Self())
	require.NoError(t, err)
	require.Empty(t, winfo.Monitors)
}

// Erlang: monitoring a process that does not exist delivers
// {'DOWN', Ref, process, Pid, noproc} at once.
func TestMonitorDeadPidDownNoprocAtOnce(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	dead, ref, err := w.SpawnMonitor(func(*Process) error { return nil })
	require.NoError(t, err)
	waitDown(t, w, ref)
	ref = w.Monitor(dead)
	require.Equal(t, 1, queueLen(t, w), "the Down is there when Monitor returns")
	require.Equal(t, Down{Ref: ref, Pid: dead, Reason: ReasonNoProc}, recv(t, w))

	// A pid of an earlier incarnation of this node is dead by definition.
	old := Pid{Node: n.Name(), ID: 1, Incarnation: n.Incarnation() - 1}
	ref = w.Monitor(old)
	require.Equal(t, Down{Ref: ref, Pid: old, Reason: ReasonNoProc}, recv(t, w))
}

// Erlang: demonitor removes the monitor, so no 'DOWN' arrives afterwards;
// with flush a 'DOWN' already queued is removed too.
func TestDemonitorAndFlush(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	target, err := n.Spawn(blockForever)
	require.NoError(t, err)
	ref := w.Monitor(target)
	require.True(t, w.Demonitor(ref, false))
	require.False(t, w.Demonitor(ref, false), "already removed")
	info, err := n.ProcessInfo(target)
	require.NoError(t, err)
	require.Empty(t, info.MonitoredBy)
	n.Exit(target, ReasonKill)
	require.Equal(t, 0, queueLen(t, w))

	// flush: the Down is already in the mailbox, among other messages.
	target, err = n.Spawn(blockForever)
	require.NoError(t, err)
	ref = w.Monitor(target)
	n.Send(w.Self(), "before")
	n.Exit(target, ReasonKill)
	n.Send(w.Self(), "after")
	require.Equal(t, 3, queueLen(t, w))
	require.False(t, w.Demonitor(ref, true), "it had fired")
	require.Equal(t, "before", recv(t, w))
	require.Equal(t, "after", recv(t, w))
	require.Equal(t, 0, queueLen(t, w))
}

// When the monitoring process dies first, the target forgets the monitor.
func TestMonitorCleanedWhenWatcherDies(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	target, err := n.Spawn(blockForever)
	require.NoError(t, err)
	_, ref, err := w.SpawnMonitor(func(p *Process) error { p.Monitor(target); return nil })
	require.NoError(t, err)
	waitDown(t, w, ref)
	info, err := n.ProcessInfo(target)
	require.NoError(t, err)
	require.Empty(t, info.MonitoredBy)
}

// spawn_monitor is atomic: a child that exits at once still gives its Down.
func TestSpawnMonitorAtomic(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	for range 100 {
		pid, ref, err := w.SpawnMonitor(func(*Process) error { return nil })
		require.NoError(t, err)
		require.Equal(t, Down{Ref: ref, Pid: pid, Reason: ReasonNormal}, waitDown(t, w, ref))
	}
}
