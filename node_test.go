package nodal

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
)

// startNode starts a local-only node; the test defers stopNode (before
// leaktest's check runs).
func startNode(t testing.TB) *Node {
	t.Helper()
	n, err := Start(context.Background(), Config{})
	require.NoError(t, err)
	return n
}

func stopNode(t testing.TB, n *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, n.Stop(ctx))
}

// probe is a mailbox-only process driven by the test goroutine.
func probe(t testing.TB, n *Node) *Process {
	t.Helper()
	return n.newBare() // ended by Stop
}

// recv receives one message, failing the test after a generous bound (a
// hang guard, not a timing assertion).
func recv(t testing.TB, p *Process) any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := p.Receive(ctx)
	require.NoError(t, err)
	return m
}

func recvMatch(t testing.TB, p *Process, match func(any) bool) any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := p.ReceiveMatch(ctx, match)
	require.NoError(t, err)
	return m
}

// waitDown receives the Down of ref.
func waitDown(t testing.TB, p *Process, ref Ref) Down {
	t.Helper()
	return recvMatch(t, p, func(m any) bool { d, ok := m.(Down); return ok && d.Ref == ref }).(Down)
}

// queueLen returns the probe's mailbox length.
func queueLen(t testing.TB, p *Process) int {
	t.Helper()
	info, err := p.node.ProcessInfo(p.pid)
	require.NoError(t, err)
	return info.MessageQueueLen
}

func alive(n *Node, pid Pid) bool {
	_, err := n.ProcessInfo(pid)
	return err == nil
}

// blockForever is a Func that waits for messages until it is killed.
func blockForever(p *Process) error {
	for {
		if _, err := p.Receive(context.Background()); err != nil {
			return err
		}
	}
}

func TestStartZeroConfigIsLocalOnlyNode(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	require.Equal(t, "nonode@nohost", n.Name())
	require.NotZero(t, n.Incarnation())
	pid, err := n.Spawn(blockForever)
	require.NoError(t, err)
	require.Equal(t, "nonode@nohost", pid.Node)
	require.Equal(t, n.Incarnation(), pid.Incarnation)
}

func TestStartNamedNodeAndBadNames(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n, err := Start(context.Background(), Config{Name: "a@localhost"})
	require.NoError(t, err)
	require.Equal(t, "a@localhost", n.Name())
	require.NoError(t, n.Stop(context.Background()))

	for _, bad := range []string{"a", "@host", "a@", "a b@host", "a@host.", "a@@host", "a@ho st"} {
		_, err := Start(context.Background(), Config{Name: bad})
		require.ErrorIs(t, err, ErrInvalidConfig, bad)
		require.ErrorIs(t, err, ErrBadNodeName, bad)
	}
}

// Erlang: every node start has a new creation, so pids of an earlier start
// are recognisably dead.
func TestIncarnationIsNewPerStart(t *testing.T) {
	defer leaktest.AfterTest(t)()
	seen := map[uint64]bool{}
	for range 5 {
		n, err := Start(context.Background(), Config{})
		require.NoError(t, err)
		require.NotZero(t, n.Incarnation())
		require.False(t, seen[n.Incarnation()])
		seen[n.Incarnation()] = true
		require.NoError(t, n.Stop(context.Background()))
	}
}

// Node.Stop ends every process, of both styles and in every state, and
// leaves no goroutine (leaktest checks).
func TestStopEndsEveryProcessAndGoroutine(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n, err := Start(context.Background(), Config{})
	require.NoError(t, err)
	w := probe(t, n)
	var refs []Ref
	for range 20 {
		pid, err := n.Spawn(blockForever)
		require.NoError(t, err)
		refs = append(refs, w.Monitor(pid))
		apid, err := n.SpawnActor(ActorFunc(func(*Process, any) error { return nil }))
		require.NoError(t, err)
		refs = append(refs, w.Monitor(apid))
	}
	// A Func waiting on its Context rather than in Receive.
	pid, err := n.Spawn(func(p *Process) error { <-p.Context().Done(); return nil })
	require.NoError(t, err)
	refs = append(refs, w.Monitor(pid))
	// An actor blocked in Receive inside its handler.
	blocked, err := n.SpawnActor(ActorFunc(func(p *Process, m any) error {
		_, err := p.ReceiveMatch(context.Background(), func(any) bool { return false })
		return err
	}))
	require.NoError(t, err)
	refs = append(refs, w.Monitor(blocked))
	n.Send(blocked, "block")

	require.NoError(t, n.Stop(context.Background()))
	require.Empty(t, n.Processes())
	_, err = n.Spawn(blockForever)
	require.ErrorIs(t, err, ErrStopped)
	// The probe itself was ended by Stop; it saw nothing after its end.
	require.False(t, alive(n, w.pid))
	require.NoError(t, n.Stop(context.Background()), "Stop is idempotent")
}

// Stop sends shutdown to every process: a trapping process gets
// Exit{From: zero Pid, Reason: shutdown} and may end cleanly (the graceful
// part); Stop returns nil when all ended within ctx.
func TestStopGracefulTrappingProcessGetsShutdownExit(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n, err := Start(context.Background(), Config{})
	require.NoError(t, err)
	got := make(chan any, 1)
	_, err = n.Spawn(func(p *Process) error {
		m, err := p.Receive(context.Background())
		if err != nil {
			return err
		}
		got <- m
		return ReasonShutdown
	}, WithTrapExit())
	require.NoError(t, err)
	require.NoError(t, n.Stop(context.Background()))
	require.Equal(t, Exit{From: Pid{}, Reason: ReasonShutdown}, waitFor(t, nil, got, "got"))
}

// When the graceful part runs out, Stop kills what is left, still waits for
// every goroutine, and reports the deadline.
func TestStopForcesAfterDeadline(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n, err := Start(context.Background(), Config{})
	require.NoError(t, err)
	final := make(chan error, 1)
	_, err = n.Spawn(func(p *Process) error {
		for { // ignores the shutdown Exit message
			if _, err := p.Receive(context.Background()); err != nil {
				final <- err
				return err
			}
		}
	}, WithTrapExit())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err = n.Stop(ctx)
	require.ErrorIs(t, err, ErrTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	ferr := waitFor(t, nil, final, "final")
	require.ErrorIs(t, ferr, ErrExited)
	require.ErrorIs(t, ferr, ReasonKilled)
}

func TestSpawnOptionsValidated(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	_, err := n.Spawn(blockForever, WithLink())
	require.ErrorIs(t, err, ErrBadOption)
	_, err = n.Spawn(blockForever, WithName(""))
	require.ErrorIs(t, err, ErrBadName)
	_, err = n.Spawn(blockForever, WithName("a"), WithName("b"))
	require.ErrorIs(t, err, ErrBadOption)
	_, err = n.Spawn(nil)
	require.ErrorIs(t, err, ErrBadOption)
	require.Empty(t, n.Processes())
}

func TestProcessesSorted(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	var want []Pid
	for range 100 {
		pid, err := n.SpawnActor(ActorFunc(func(*Process, any) error { return nil }))
		require.NoError(t, err)
		want = append(want, pid)
	}
	require.Equal(t, want, n.Processes())
}

// Idle actors hold no goroutine (the idle-memory goal rests on it).
func TestIdleActorHasNoGoroutine(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	before := runtime.NumGoroutine()
	var pids []Pid
	for range 1000 {
		pid, err := n.SpawnActor(ActorFunc(func(*Process, any) error { return nil }))
		require.NoError(t, err)
		pids = append(pids, pid)
	}
	require.Less(t, runtime.NumGoroutine()-before, 100)
	info, err := n.ProcessInfo(pids[0])
	require.NoError(t, err)
	require.Equal(t, StatusIdle, info.Status)
}

func TestErrorsWrap(t *testing.T) {
	e := &ExitError{Pid: Pid{Node: "a@b", ID: 1, Incarnation: 2}, Reason: ReasonKilled}
	require.ErrorIs(t, e, ErrExited)
	require.ErrorIs(t, e, ReasonKilled)
	require.Equal(t, "nodal: process exited: <a@b.1.2>: killed", e.Error())
	ce := &CallError{To: e.Pid, Reason: ReasonNoProc}
	require.ErrorIs(t, ce, ErrNoProc)
	require.ErrorIs(t, ce, ReasonNoProc)
	se := &ShutdownError{Reason: errors.New("bye")}
	require.ErrorIs(t, se, ReasonShutdown)
	for _, r := range []error{nil, ReasonNormal, ReasonShutdown, se} {
		require.True(t, IsNormal(r), "%v", r)
	}
	for _, r := range []error{ReasonKilled, ReasonKill, errors.New("x"), &PanicError{Value: 1}} {
		require.False(t, IsNormal(r), "%v", r)
	}
	pe := &PanicError{Value: errors.New("inner")}
	require.Equal(t, "panic: inner", pe.Error())
	require.Equal(t, "inner", errors.Unwrap(pe).Error())
}

// Stop while processes keep spawning: every process, also one spawned while
// Stop broadcasts its shutdown, ends, and Stop returns without a deadline.
func TestStopWhileSpawning(t *testing.T) {
	defer leaktest.AfterTest(t)()
	for range 20 {
		n, err := Start(context.Background(), Config{})
		require.NoError(t, err)
		started := make(chan struct{})
		for range 2 {
			_, err := n.Spawn(func(p *Process) error {
				once := false
				for {
					if _, err := p.Spawn(blockForever); err != nil {
						return err
					}
					if !once {
						once = true
						started <- struct{}{}
					}
				}
			})
			require.NoError(t, err)
		}
		waitFor(t, nil, started, "started")
		waitFor(t, nil, started, "started")
		require.NoError(t, n.Stop(context.Background()))
		require.Empty(t, n.Processes())
	}
}
