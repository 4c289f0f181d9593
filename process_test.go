package nodal

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
)

// Erlang: a process whose function returns exits with reason normal; a
// returned error is the exit reason; exit(Reason) ends it with Reason.
func TestFuncExitReasons(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	boom := errors.New("boom")
	cases := []struct {
		name string
		fn   Func
		want error
	}{
		{"return nil is normal", func(*Process) error { return nil }, ReasonNormal},
		{"return error is the reason", func(*Process) error { return boom }, boom},
		{"Exit ends at once", func(p *Process) error { p.Exit(boom); return errors.New("not reached") }, boom},
		{"Exit(nil) is normal", func(p *Process) error { p.Exit(nil); return boom }, ReasonNormal},
	}
	for _, c := range cases {
		_, ref, err := w.SpawnMonitor(c.fn)
		require.NoError(t, err)
		require.Equal(t, c.want, waitDown(t, w, ref).Reason, c.name)
	}
}

// A panic inside a process is its exit reason (a *PanicError with value and
// stack) and never takes the node down; both styles.
func TestPanicBecomesReasonNodeSurvives(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	_, ref, err := w.SpawnMonitor(func(*Process) error { panic("oops") })
	require.NoError(t, err)
	var pe *PanicError
	require.ErrorAs(t, waitDown(t, w, ref).Reason, &pe)
	require.Equal(t, "oops", pe.Value)
	require.Contains(t, string(pe.Stack), "process_test.go")

	apid, aref, err := w.SpawnActorMonitor(ActorFunc(func(*Process, any) error { panic("actor oops") }))
	require.NoError(t, err)
	n.Send(apid, "x")
	require.ErrorAs(t, waitDown(t, w, aref).Reason, &pe)
	require.Equal(t, "actor oops", pe.Value)

	// The node still works.
	_, ref, err = w.SpawnMonitor(func(*Process) error { return nil })
	require.NoError(t, err)
	require.Equal(t, ReasonNormal, waitDown(t, w, ref).Reason)
}

type recordingActor struct {
	got        []any
	terminated chan error
	stopOn     any
	reason     error
}

func (a *recordingActor) Init(*Process) error { return nil }

func (a *recordingActor) HandleMessage(p *Process, m any) error {
	a.got = append(a.got, m)
	if m == a.stopOn {
		return a.reason
	}
	if m == "exit" {
		p.Exit(a.reason)
	}
	return nil
}

func (a *recordingActor) Terminate(p *Process, reason error) { a.terminated <- reason }

// An actor handles its messages one at a time in arrival order; returning
// an error ends it with that reason and Terminate runs first (gen_server).
func TestActorOrderAndStop(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	stop := errors.New("stop")
	a := &recordingActor{terminated: make(chan error, 1), stopOn: "stop", reason: stop}
	pid, ref, err := w.SpawnActorMonitor(a)
	require.NoError(t, err)
	for i := range 1000 {
		n.Send(pid, i)
	}
	n.Send(pid, "stop")
	n.Send(pid, "after")
	require.Equal(t, stop, waitDown(t, w, ref).Reason)
	require.Equal(t, stop, waitFor(t, nil, a.terminated, "a.terminated"))
	require.Len(t, a.got, 1001)
	for i := range 1000 {
		require.Equal(t, i, a.got[i])
	}

	// Exit from a handler takes effect when the handler returns.
	b := &recordingActor{terminated: make(chan error, 1), reason: ReasonShutdown}
	pid, ref, err = w.SpawnActorMonitor(b)
	require.NoError(t, err)
	n.Send(pid, "exit")
	require.Equal(t, ReasonShutdown, waitDown(t, w, ref).Reason)
	require.Equal(t, ReasonShutdown, waitFor(t, nil, b.terminated, "b.terminated"))
}

// gen_server: terminate is not called when the process is killed by an
// exit signal it does not trap.
func TestActorTerminateNotCalledOnKill(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	a := &recordingActor{terminated: make(chan error, 1)}
	pid, ref, err := w.SpawnActorMonitor(a)
	require.NoError(t, err)
	n.Exit(pid, ReasonKill)
	require.Equal(t, ReasonKilled, waitDown(t, w, ref).Reason)
	require.Empty(t, a.terminated)
}

type initActor struct{ err error }

func (a initActor) Init(p *Process) error             { return a.err }
func (a initActor) HandleMessage(*Process, any) error { return nil }

// A failing Init ends the process with its reason and SpawnActor reports it
// (gen_server:start_link returning {error, Reason}); links fire.
func TestActorInitFailure(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	w.TrapExit(true)
	bad := errors.New("bad config")
	pid, err := w.SpawnActor(initActor{err: bad}, WithLink())
	require.ErrorIs(t, err, ErrInitFailed)
	require.ErrorIs(t, err, bad)
	require.Equal(t, Exit{From: pid, Reason: bad}, recv(t, w))
	require.False(t, alive(n, pid))
}

// Killing a Func process makes it dead for everyone at once, even while its
// goroutine is busy elsewhere: its name is freed, monitors and links fire,
// its Context is cancelled; afterwards its Receive and SendName report
// ErrExited and its sends are dropped.
func TestKillFuncIsDeadAtOnce(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	release := make(chan struct{})
	ctxDone := make(chan struct{})
	after := make(chan []error, 1)
	started := make(chan struct{})
	pid, err := n.Spawn(func(p *Process) error {
		ctx := p.Context()
		go func() { <-ctx.Done(); close(ctxDone) }()
		close(started)
		hold(release) // busy, not in Receive
		p.Send(w.Self(), "from the dead")
		_, rerr := p.Receive(context.Background())
		serr := p.SendName("probe", "x")
		_, spawnErr := p.Spawn(blockForever)
		after <- []error{rerr, serr, spawnErr}
		return nil
	}, WithName("victim"))
	require.NoError(t, err)
	require.NoError(t, w.Register("probe"))
	ref := w.Monitor(pid)
	waitFor(t, nil, started, "started")
	n.Exit(pid, ReasonKill)
	// Dead for everyone before the goroutine did anything.
	require.False(t, alive(n, pid))
	_, ok := n.Whereis("victim")
	require.False(t, ok)
	require.Equal(t, 1, queueLen(t, w))
	require.Equal(t, Down{Ref: ref, Pid: pid, Reason: ReasonKilled}, recv(t, w))
	waitFor(t, nil, ctxDone, "ctxDone")
	close(release)
	errs := waitFor(t, nil, after, "after")
	for _, e := range errs {
		require.ErrorIs(t, e, ErrExited)
		require.ErrorIs(t, e, ReasonKilled)
	}
	require.Equal(t, 0, queueLen(t, w), "a dead process's send is dropped")
}

func TestSelfNodeGroupLeader(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	gl := Pid{Node: "x@y", ID: 7, Incarnation: 1}
	w.SetGroupLeader(gl)
	got := make(chan [3]any, 2)
	fn := func(p *Process) error {
		got <- [3]any{p.Self(), p.Node(), p.GroupLeader()}
		return nil
	}
	pid, err := w.Spawn(fn)
	require.NoError(t, err)
	require.Equal(t, [3]any{pid, n, gl}, waitFor(t, nil, got, "got"), "group leader is inherited")
	other := Pid{Node: "z@y", ID: 1, Incarnation: 1}
	pid, err = w.Spawn(fn, WithGroupLeader(other))
	require.NoError(t, err)
	require.Equal(t, [3]any{pid, n, other}, waitFor(t, nil, got, "got"))
}

// The many-process case: a ring of spawns and messages stays correct.
func TestManyProcessesRing(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	var handled atomic.Int64
	const size = 2000
	next := w.Self()
	for range size {
		to := next
		pid, err := n.SpawnActor(ActorFunc(func(p *Process, m any) error {
			handled.Add(1)
			p.Send(to, m.(int)+1)
			return ReasonNormal
		}))
		require.NoError(t, err)
		next = pid
	}
	n.Send(next, 0)
	require.Equal(t, size, recv(t, w))
	require.EqualValues(t, size, handled.Load())
}

// runtime.Goexit in a process (t.FailNow, for one) ends the process with a
// reason instead of leaving it half dead; Stop still finds every goroutine.
func TestGoexitEndsProcess(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	_, ref, err := w.SpawnMonitor(func(*Process) error { runtime.Goexit(); return nil })
	require.NoError(t, err)
	var pe *PanicError
	require.ErrorAs(t, waitDown(t, w, ref).Reason, &pe)
}

// A process killed before its goroutine starts never runs its Func (as an
// Erlang process killed before it is scheduled runs no code), and its
// monitors still get Down killed: code that must run when a process ends
// belongs in a monitor, not in a defer inside its Func. The kill is sent
// right after Spawn, so that some land before the start.
func TestKillBeforeStart(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	w := probe(t, n)
	const spawns = 200
	var runs atomic.Int32
	for range spawns {
		pid, ref, err := w.SpawnMonitor(func(p *Process) error {
			runs.Add(1)
			_, err := p.Receive(context.Background())
			return err
		})
		require.NoError(t, err)
		n.Exit(pid, ReasonKill)
		require.Equal(t, ReasonKilled, waitDown(t, w, ref).Reason)
	}
	stopNode(t, n) // waits for every goroutine: no Func starts after this
	t.Logf("%d of %d Funcs ran", runs.Load(), spawns)
	require.Less(t, int(runs.Load()), spawns, "every kill landed after a start")
}
