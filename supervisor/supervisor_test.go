package supervisor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
)

// supWait bounds every wait for a condition in these tests; conditions are
// polled, never assumed after a sleep.
const supWait = 10 * time.Second

// supTB is what the helpers need from *testing.T and *rapid.T.
type supTB interface {
	require.TestingT
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// startSupNode starts a local node and registers its Stop (and a leak
// check that runs after it) with the test.
func startSupNode(t *testing.T) *nodal.Node {
	t.Helper()
	leakCheck := leaktest.AfterTest(t)
	n, err := nodal.Start(context.Background(), nodal.Config{})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), supWait)
		defer cancel()
		require.NoError(t, n.Stop(ctx))
		leakCheck()
	})
	return n
}

// startSup starts a supervisor, its start bounded by supWait.
func startSup(parent Spawner, spec Spec, opts ...nodal.SpawnOption) (nodal.Pid, error) {
	ctx, cancel := context.WithTimeout(context.Background(), supWait)
	defer cancel()
	return Start(ctx, parent, spec, opts...)
}

func callCtx(t supTB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), supWait)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds or supWait passes.
func waitFor(t supTB, what string, cond func() bool) {
	if h, ok := t.(interface{ Helper() }); ok {
		h.Helper()
	}
	deadline := time.Now().Add(supWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// recorder is a log of events from children and start functions.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(e string) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// since returns the events after the first k.
func (r *recorder) since(k int) []string { return r.get()[k:] }

// workerOpts tunes testWorker.
type workerOpts struct {
	ignoreShutdown bool // trap exits and ignore exit signal shutdown
	noName         bool
}

// testWorker returns a Child.Start that records "start:<id>" on the
// supervisor's goroutine (so records are in start order) and spawns a
// linked worker registered as id. The worker traps exits; on an exit signal
// shutdown it records "stop:<id>" and exits with shutdown (or ignores it
// with ignoreShutdown). It exits with an error on "crash", normally on
// "normal", with a *nodal.ShutdownError on "shutdown-term".
func testWorker(rec *recorder, id string, o workerOpts) func(p *nodal.Process) (nodal.Pid, error) {
	return func(p *nodal.Process) (nodal.Pid, error) {
		rec.add("start:" + id)
		opts := []nodal.SpawnOption{nodal.WithLink(), nodal.WithTrapExit()} // trapping from the first instant
		if !o.noName {
			opts = append(opts, nodal.WithName(id))
		}
		return p.Spawn(func(w *nodal.Process) error {
			for {
				msg, err := w.Receive(w.Context())
				if err != nil {
					return err
				}
				switch m := msg.(type) {
				case nodal.Exit:
					if errors.Is(m.Reason, nodal.ReasonShutdown) {
						if o.ignoreShutdown {
							rec.add("ignored:" + id)
							continue
						}
						rec.add("stop:" + id)
						return nodal.ReasonShutdown
					}
					return m.Reason
				case string:
					switch m {
					case "crash":
						return fmt.Errorf("%s crashed", id)
					case "normal":
						return nil
					case "shutdown-term":
						return &nodal.ShutdownError{Reason: errors.New("done")}
					}
				}
			}
		}, opts...)
	}
}

func workerSpec(rec *recorder, id string) Child {
	return Child{ID: id, Start: testWorker(rec, id, workerOpts{})}
}

// pidOf returns the pid registered as name, failing the test if none.
func pidOf(t supTB, n *nodal.Node, name string) nodal.Pid {
	if h, ok := t.(interface{ Helper() }); ok {
		h.Helper()
	}
	var pid nodal.Pid
	waitFor(t, name+" registered", func() bool {
		var ok bool
		pid, ok = n.Whereis(name)
		return ok
	})
	return pid
}

// waitReplaced waits until name is registered to a pid other than old.
func waitReplaced(t supTB, n *nodal.Node, name string, old nodal.Pid) nodal.Pid {
	if h, ok := t.(interface{ Helper() }); ok {
		h.Helper()
	}
	var pid nodal.Pid
	waitFor(t, name+" replaced", func() bool {
		var ok bool
		pid, ok = n.Whereis(name)
		return ok && pid != old
	})
	return pid
}

// watch monitors target from a helper process and returns a channel that
// receives its nodal.Down.
func watch(t supTB, n *nodal.Node, target nodal.Pid) <-chan nodal.Down {
	if h, ok := t.(interface{ Helper() }); ok {
		h.Helper()
	}
	ch := make(chan nodal.Down, 1)
	ready := make(chan struct{})
	_, err := n.Spawn(func(p *nodal.Process) error {
		ref := p.Monitor(target)
		close(ready)
		msg, err := p.ReceiveMatch(p.Context(), func(m any) bool {
			d, ok := m.(nodal.Down)
			return ok && d.Ref == ref
		})
		if err != nil {
			return err
		}
		ch <- msg.(nodal.Down)
		return nil
	})
	require.NoError(t, err)
	<-ready
	return ch
}

func awaitDown(t supTB, ch <-chan nodal.Down) nodal.Down {
	if h, ok := t.(interface{ Helper() }); ok {
		h.Helper()
	}
	select {
	case d := <-ch:
		return d
	case <-time.After(supWait):
		t.Fatalf("timed out waiting for nodal.Down")
		return nodal.Down{}
	}
}

func children(t supTB, n *nodal.Node, sup nodal.Pid) []ChildInfo {
	if h, ok := t.(interface{ Helper() }); ok {
		h.Helper()
	}
	cs, err := WhichChildren(callCtx(t), n, sup)
	require.NoError(t, err)
	return cs
}

func childPid(t supTB, n *nodal.Node, sup nodal.Pid, id string) nodal.Pid {
	if h, ok := t.(interface{ Helper() }); ok {
		h.Helper()
	}
	for _, c := range children(t, n, sup) {
		if c.ID == id {
			return c.Pid
		}
	}
	t.Fatalf("no child %q", id)
	return nodal.Pid{}
}

// OTP one_for_one: only the child that exited is restarted.
func TestSupervisorOneForOneRestartsOnlyCrashedChild(t *testing.T) {
	n := startSupNode(t)
	rec := &recorder{}
	sup, err := startSup(n, Spec{
		Strategy: OneForOne,
		Children: []Child{workerSpec(rec, "a"), workerSpec(rec, "b"), workerSpec(rec, "c")},
	})
	require.NoError(t, err)
	require.Equal(t, []string{"start:a", "start:b", "start:c"}, rec.get(), "children start in order")
	a, b, c := pidOf(t, n, "a"), pidOf(t, n, "b"), pidOf(t, n, "c")

	k := len(rec.get())
	n.Send(b, "crash")
	b2 := waitReplaced(t, n, "b", b)
	require.Equal(t, []string{"start:b"}, rec.since(k), "only b restarted, nobody stopped")
	require.Equal(t, a, pidOf(t, n, "a"))
	require.Equal(t, c, pidOf(t, n, "c"))
	require.Equal(t, b2, childPid(t, n, sup, "b"), "WhichChildren shows the replacement")
}

// OTP one_for_all: all children are restarted; the others are stopped in
// reverse start order first.
func TestSupervisorOneForAllRestartsAllInOrder(t *testing.T) {
	n := startSupNode(t)
	rec := &recorder{}
	sup, err := startSup(n, Spec{
		Strategy:  OneForAll,
		Intensity: 10,
		Children:  []Child{workerSpec(rec, "a"), workerSpec(rec, "b"), workerSpec(rec, "c")},
	})
	require.NoError(t, err)
	a, b, c := pidOf(t, n, "a"), pidOf(t, n, "b"), pidOf(t, n, "c")

	k := len(rec.get())
	n.Send(b, "crash")
	waitReplaced(t, n, "a", a)
	waitReplaced(t, n, "b", b)
	waitReplaced(t, n, "c", c)
	require.Equal(t, []string{"stop:c", "stop:a", "start:a", "start:b", "start:c"}, rec.since(k))
	for _, ci := range children(t, n, sup) {
		require.False(t, ci.Pid.IsZero(), "child %s running", ci.ID)
	}
}

// OTP rest_for_one: the child that exited and those started after it are
// restarted; the later ones are stopped in reverse order first.
func TestSupervisorRestForOneRestartsRest(t *testing.T) {
	n := startSupNode(t)
	rec := &recorder{}
	_, err := startSup(n, Spec{
		Strategy: RestForOne,
		Children: []Child{workerSpec(rec, "a"), workerSpec(rec, "b"), workerSpec(rec, "c"), workerSpec(rec, "d")},
	})
	require.NoError(t, err)
	a, b, c, d := pidOf(t, n, "a"), pidOf(t, n, "b"), pidOf(t, n, "c"), pidOf(t, n, "d")

	k := len(rec.get())
	n.Send(b, "crash")
	waitReplaced(t, n, "b", b)
	waitReplaced(t, n, "c", c)
	waitReplaced(t, n, "d", d)
	require.Equal(t, []string{"stop:d", "stop:c", "start:b", "start:c", "start:d"}, rec.since(k))
	require.Equal(t, a, pidOf(t, n, "a"), "a, started before b, keeps running")
}

// OTP transient: restarted only on an abnormal exit; normal, shutdown and
// {shutdown, Term} exits are not restarted and the spec is kept.
func TestSupervisorTransientRestartedOnlyOnAbnormalExit(t *testing.T) {
	n := startSupNode(t)
	rec := &recorder{}
	spec := workerSpec(rec, "t")
	spec.Restart = Transient
	sup, err := startSup(n, Spec{Intensity: 10, Children: []Child{spec}})
	require.NoError(t, err)

	p1 := pidOf(t, n, "t")
	n.Send(p1, "crash")
	p2 := waitReplaced(t, n, "t", p1)

	for _, msg := range []string{"normal", "shutdown-term"} {
		down := watch(t, n, p2)
		n.Send(p2, msg)
		awaitDown(t, down)
		// The supervisor handles the exit before this call: had it
		// restarted the child, the pid would already be set.
		cs := children(t, n, sup)
		require.Len(t, cs, 1, "spec kept")
		require.True(t, cs[0].Pid.IsZero(), "transient child not restarted after %q", msg)
		_, ok := n.Whereis("t")
		require.False(t, ok)
		var err error
		p2, err = RestartChild(callCtx(t), n, sup, "t")
		require.NoError(t, err)
	}
}

// OTP temporary: never restarted, and its spec is forgotten when it exits.
func TestSupervisorTemporaryNeverRestarted(t *testing.T) {
	n := startSupNode(t)
	rec := &recorder{}
	tmp := workerSpec(rec, "tmp")
	tmp.Restart = Temporary
	sup, err := startSup(n, Spec{Children: []Child{workerSpec(rec, "keep"), tmp}})
	require.NoError(t, err)

	p := pidOf(t, n, "tmp")
	down := watch(t, n, p)
	n.Send(p, "crash")
	awaitDown(t, down)
	cs := children(t, n, sup)
	require.Equal(t, []string{"keep"}, childIDs(cs), "temporary child forgotten")
	_, ok := n.Whereis("tmp")
	require.False(t, ok, "temporary child not restarted")
	require.Equal(t, []string{"start:keep", "start:tmp"}, rec.get())
}

func childIDs(cs []ChildInfo) []string {
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return ids
}

// OTP restart intensity: more than Intensity restarts within Period stop
// the children in reverse order and the supervisor exits with shutdown.
func TestSupervisorIntensityExceededShutsDown(t *testing.T) {
	n := startSupNode(t)
	rec := &recorder{}
	sup, err := startSup(n, Spec{
		Intensity: 2,
		Period:    time.Hour,
		Children:  []Child{workerSpec(rec, "a"), workerSpec(rec, "b"), workerSpec(rec, "c")},
	})
	require.NoError(t, err)
	supDown := watch(t, n, sup)
	a, c := pidOf(t, n, "a"), pidOf(t, n, "c")
	aDown, cDown := watch(t, n, a), watch(t, n, c)

	b := pidOf(t, n, "b")
	for range 2 { // two restarts are within the intensity
		n.Send(b, "crash")
		b = waitReplaced(t, n, "b", b)
	}
	k := len(rec.get())
	n.Send(b, "crash") // the third is one too many
	d := awaitDown(t, supDown)
	require.ErrorIs(t, d.Reason, nodal.ReasonShutdown, "supervisor exits with shutdown")
	require.ErrorIs(t, awaitDown(t, aDown).Reason, nodal.ReasonShutdown)
	require.ErrorIs(t, awaitDown(t, cDown).Reason, nodal.ReasonShutdown)
	require.Equal(t, []string{"stop:c", "stop:a"}, rec.since(k), "children stopped in reverse order, none restarted")
}

// OTP default intensity: 1 restart in 5 s, so a second crash in a row stops
// the supervisor; a negative Intensity (OTP intensity 0) allows none.
func TestSupervisorDefaultIntensity(t *testing.T) {
	for _, tc := range []struct {
		name      string
		intensity int
		restarts  int
	}{
		{"default-1-in-5s", 0, 1},
		{"zero-restarts", -1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := startSupNode(t)
			rec := &recorder{}
			sup, err := startSup(n, Spec{Intensity: tc.intensity, Children: []Child{workerSpec(rec, "w")}})
			require.NoError(t, err)
			supDown := watch(t, n, sup)
			w := pidOf(t, n, "w")
			for range tc.restarts {
				n.Send(w, "crash")
				w = waitReplaced(t, n, "w", w)
			}
			n.Send(w, "crash")
			require.ErrorIs(t, awaitDown(t, supDown).Reason, nodal.ReasonShutdown)
			require.Len(t, rec.get(), 1+tc.restarts)
		})
	}
}

// OTP restart intensity is a sliding window: restarts older than Period no
// longer count. Runs in a synctest bubble, so the periods pass on the fake
// clock.
func TestSupervisorIntensityWindowSlides(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, err := nodal.Start(context.Background(), nodal.Config{})
		require.NoError(t, err)
		defer func() { require.NoError(t, n.Stop(context.Background())) }()
		rec := &recorder{}
		const period = 5 * time.Second
		sup, err := startSup(n, Spec{Intensity: 1, Period: period, Children: []Child{workerSpec(rec, "w")}})
		require.NoError(t, err)
		supDown := watch(t, n, sup)
		w := pidOf(t, n, "w")
		for range 3 { // one restart per window is within the intensity
			n.Send(w, "crash")
			synctest.Wait()
			w = pidOf(t, n, "w")
			time.Sleep(period + time.Second)
		}
		_, err = CountChildren(context.Background(), n, sup)
		require.NoError(t, err, "supervisor survives crashes spaced more than Period apart")

		// Two crashes within one window are one restart too many.
		n.Send(w, "crash")
		synctest.Wait()
		n.Send(pidOf(t, n, "w"), "crash")
		require.ErrorIs(t, awaitDown(t, supDown).Reason, nodal.ReasonShutdown)
		require.Len(t, rec.get(), 5, "initial start and four restarts")
	})
}

// OTP shutdown: a child is sent exit shutdown and killed when it has not
// stopped within its Shutdown; BrutalKill kills at once.
func TestSupervisorShutdownTimeoutThenKill(t *testing.T) {
	n := startSupNode(t)
	rec := &recorder{}
	sup, err := startSup(n, Spec{Children: []Child{
		{ID: "polite", Start: testWorker(rec, "polite", workerOpts{}), Shutdown: time.Minute},
		{ID: "stubborn", Start: testWorker(rec, "stubborn", workerOpts{ignoreShutdown: true}), Shutdown: 20 * time.Millisecond},
		{ID: "brutal", Start: testWorker(rec, "brutal", workerOpts{}), Shutdown: BrutalKill},
	}})
	require.NoError(t, err)

	for _, tc := range []struct {
		id     string
		reason error
		event  string
	}{
		{"polite", nodal.ReasonShutdown, "stop:polite"},
		{"stubborn", nodal.ReasonKilled, "ignored:stubborn"},
		{"brutal", nodal.ReasonKilled, ""},
	} {
		down := watch(t, n, pidOf(t, n, tc.id))
		k := len(rec.get())
		require.NoError(t, TerminateChild(callCtx(t), n, sup, tc.id))
		d := awaitDown(t, down)
		require.ErrorIs(t, d.Reason, tc.reason, tc.id)
		if tc.event != "" {
			require.Equal(t, []string{tc.event}, rec.since(k))
		} else {
			require.Empty(t, rec.since(k), "brutal_kill sends no shutdown signal")
		}
		require.True(t, childPid(t, n, sup, tc.id).IsZero())
	}
}

// OTP child defaults: a worker waits 5 s, a supervisor child infinity.
func TestSupervisorShutdownDefaults(t *testing.T) {
	w, err := Child{ID: "w", Start: testWorker(nil, "w", workerOpts{})}.normalize()
	require.NoError(t, err)
	require.Equal(t, DefaultShutdown, w.Shutdown)
	s := Nested("s", Spec{})
	s.Shutdown = 0
	s, err = s.normalize()
	require.NoError(t, err)
	require.Equal(t, Infinity, s.Shutdown)
	require.Equal(t, ChildSupervisor, s.Type)
}

// OTP supervision trees: a sub-supervisor that exceeds its own intensity
// exits with shutdown and its parent restarts it by its own rules; a parent
// that exceeds its intensity stops the whole tree.
func TestSupervisorNestedTree(t *testing.T) {
	n := startSupNode(t)
	rec := &recorder{}
	subSpec := Spec{Intensity: 1, Period: time.Hour, Children: []Child{workerSpec(rec, "w")}}
	root, err := startSup(n, Spec{
		Intensity: 1,
		Period:    time.Hour,
		Children:  []Child{workerSpec(rec, "first"), Nested("sub", subSpec)},
	}, nodal.WithName("root"))
	require.NoError(t, err)
	rootDown := watch(t, n, root)
	first := pidOf(t, n, "first")
	cs := children(t, n, root)
	require.Equal(t, []string{"first", "sub"}, childIDs(cs))
	require.Equal(t, ChildSupervisor, cs[1].Type)
	sub := cs[1].Pid
	subDown := watch(t, n, sub)

	// Two crashes of w: the first restart is within sub's intensity, the
	// second exceeds it.
	w := pidOf(t, n, "w")
	n.Send(w, "crash")
	w = waitReplaced(t, n, "w", w)
	n.Send(w, "crash")
	require.ErrorIs(t, awaitDown(t, subDown).Reason, nodal.ReasonShutdown, "sub exits shutdown")

	// root restarts sub (its first restart), which starts a new w.
	var sub2 nodal.Pid
	waitFor(t, "sub restarted", func() bool {
		sub2 = childPid(t, n, root, "sub")
		return !sub2.IsZero() && sub2 != sub
	})
	w = waitReplaced(t, n, "w", w)
	require.Equal(t, first, pidOf(t, n, "first"), "one_for_one at root: first untouched")
	subCs := children(t, n, sub2)
	require.Equal(t, w, subCs[0].Pid)

	// Exceed sub's intensity again: root's second restart exceeds root's
	// intensity, so root stops first and exits shutdown.
	firstDown := watch(t, n, first)
	sub2Down := watch(t, n, sub2)
	n.Send(w, "crash")
	w = waitReplaced(t, n, "w", w)
	n.Send(w, "crash")
	require.ErrorIs(t, awaitDown(t, sub2Down).Reason, nodal.ReasonShutdown)
	require.ErrorIs(t, awaitDown(t, rootDown).Reason, nodal.ReasonShutdown, "escalation reaches root")
	require.ErrorIs(t, awaitDown(t, firstDown).Reason, nodal.ReasonShutdown)
	_, ok := n.Whereis("root")
	require.False(t, ok)
}

// OTP: stopping a supervisor stops a whole tree, depth first, in reverse
// start order at each level.
func TestSupervisorStopTreeInReverseOrder(t *testing.T) {
	n := startSupNode(t)
	rec := &recorder{}
	root, err := startSup(n, Spec{Children: []Child{
		workerSpec(rec, "a"),
		Nested("sub", Spec{Children: []Child{workerSpec(rec, "s1"), workerSpec(rec, "s2")}}),
		workerSpec(rec, "z"),
	}})
	require.NoError(t, err)
	require.Equal(t, []string{"start:a", "start:s1", "start:s2", "start:z"}, rec.get())
	rootDown := watch(t, n, root)
	k := len(rec.get())
	require.NoError(t, Stop(callCtx(t), n, root))
	require.Equal(t, []string{"stop:z", "stop:s2", "stop:s1", "stop:a"}, rec.since(k))
	require.ErrorIs(t, awaitDown(t, rootDown).Reason, nodal.ReasonNormal)
	require.Empty(t, n.Registered(), "every child is gone")
}

// OTP: a child that fails to start fails the supervisor start; the children
// already started are stopped in reverse order.
func TestSupervisorStartFailure(t *testing.T) {
	n := startSupNode(t)
	boom := errors.New("boom")
	for _, tc := range []struct {
		name  string
		start func(p *nodal.Process) (nodal.Pid, error)
		is    error
	}{
		{"error", func(*nodal.Process) (nodal.Pid, error) { return nodal.Pid{}, boom }, boom},
		{"panic", func(*nodal.Process) (nodal.Pid, error) { panic("bad start") }, ErrStartChild},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			_, err := startSup(n, Spec{Children: []Child{
				workerSpec(rec, "a"), workerSpec(rec, "b"), {ID: "bad", Start: tc.start}, workerSpec(rec, "never"),
			}})
			require.ErrorIs(t, err, ErrStartChild)
			require.ErrorIs(t, err, tc.is)
			var ce *ChildError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, "bad", ce.ID)
			require.Equal(t, []string{"start:a", "start:b", "stop:b", "stop:a"}, rec.get())
		})
	}
}

// A linked caller learns of a failed start from the error only: it is not
// killed by the failed supervisor's exit.
func TestSupervisorStartFailureSparesLinkedCaller(t *testing.T) {
	n := startSupNode(t)
	result := make(chan error, 1)
	caller, err := n.Spawn(func(p *nodal.Process) error {
		_, err := startSup(p, Spec{Children: []Child{
			{ID: "bad", Start: func(*nodal.Process) (nodal.Pid, error) { return nodal.Pid{}, errors.New("no") }},
		}}, nodal.WithLink())
		result <- err
		_, err = p.Receive(p.Context()) // stays alive until told
		return err
	})
	require.NoError(t, err)
	callerDown := watch(t, n, caller)
	require.ErrorIs(t, <-result, ErrStartChild)
	n.Send(caller, "done")
	require.True(t, nodal.IsNormal(awaitDown(t, callerDown).Reason), "caller exits on its own terms")
}

// OTP ignore: a start function returning no pid and no error leaves the
// child stopped but listed (a temporary one is dropped).
func TestSupervisorIgnoreStart(t *testing.T) {
	n := startSupNode(t)
	ignore := func(*nodal.Process) (nodal.Pid, error) { return nodal.Pid{}, nil }
	sup, err := startSup(n, Spec{Children: []Child{
		{ID: "kept", Start: ignore},
		{ID: "dropped", Start: ignore, Restart: Temporary},
	}})
	require.NoError(t, err)
	cs := children(t, n, sup)
	require.Equal(t, []ChildInfo{{ID: "kept", Type: ChildWorker}}, cs)
}

// A failed restart is retried and each retry counts toward the intensity
// (OTP try_again_restart).
func TestSupervisorRestartFailureRetried(t *testing.T) {
	n := startSupNode(t)
	rec := &recorder{}
	boom := errors.New("start refused")
	// failOn makes a nodal.Start that succeeds on calls for which fail is false.
	failOn := func(id string, fail func(call int32) bool) (func(p *nodal.Process) (nodal.Pid, error), *atomic.Int32) {
		var calls atomic.Int32
		inner := testWorker(rec, id, workerOpts{})
		return func(p *nodal.Process) (nodal.Pid, error) {
			if fail(calls.Add(1)) {
				return nodal.Pid{}, boom
			}
			return inner(p)
		}, &calls
	}

	// The first restart attempt fails, the retry succeeds.
	flaky, calls := failOn("w", func(c int32) bool { return c == 2 })
	sup, err := startSup(n, Spec{Intensity: 3, Period: time.Hour, Children: []Child{{ID: "w", Start: flaky}}})
	require.NoError(t, err)
	w := pidOf(t, n, "w")
	n.Send(w, "crash")
	w2 := waitReplaced(t, n, "w", w)
	require.Equal(t, w2, childPid(t, n, sup, "w"))
	require.Equal(t, int32(3), calls.Load(), "start, failed restart, successful retry")

	// A start that keeps failing uses up the intensity: 3 restarts are
	// allowed, so 3 attempts, then the supervisor shuts down.
	broken, calls2 := failOn("x", func(c int32) bool { return c > 1 })
	sup2, err := startSup(n, Spec{Intensity: 3, Period: time.Hour, Children: []Child{{ID: "x", Start: broken}}})
	require.NoError(t, err)
	sup2Down := watch(t, n, sup2)
	n.Send(pidOf(t, n, "x"), "crash")
	require.ErrorIs(t, awaitDown(t, sup2Down).Reason, nodal.ReasonShutdown)
	require.Equal(t, int32(1+3), calls2.Load())
	_, err = CountChildren(callCtx(t), n, sup)
	require.NoError(t, err, "the other supervisor is unaffected")
}

// OTP supervisor:start_child, terminate_child, restart_child, delete_child,
// which_children and count_children on a static supervisor.
func TestSupervisorManagementCalls(t *testing.T) {
	n := startSupNode(t)
	rec := &recorder{}
	ctx := callCtx(t)
	sup, err := startSup(n, Spec{Children: []Child{workerSpec(rec, "a")}})
	require.NoError(t, err)

	b, err := StartChild(ctx, n, sup, workerSpec(rec, "b"))
	require.NoError(t, err)
	require.Equal(t, b, pidOf(t, n, "b"))
	sub, err := StartChild(ctx, n, sup, Nested("sub", Spec{}))
	require.NoError(t, err)

	cs, err := WhichChildren(ctx, n, sup)
	require.NoError(t, err)
	require.Equal(t, []ChildInfo{
		{ID: "a", Pid: pidOf(t, n, "a"), Type: ChildWorker},
		{ID: "b", Pid: b, Type: ChildWorker},
		{ID: "sub", Pid: sub, Type: ChildSupervisor},
	}, cs)
	cnt, err := CountChildren(ctx, n, sup)
	require.NoError(t, err)
	require.Equal(t, ChildCount{Specs: 3, Active: 3, Supervisors: 1, Workers: 2}, cnt)

	// already_started / already_present
	_, err = StartChild(ctx, n, sup, workerSpec(rec, "b"))
	require.ErrorIs(t, err, ErrChildAlreadyStarted)
	var ce *ChildError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, ChildError{ID: "b", Pid: b, Err: ErrChildAlreadyStarted}, *ce)

	// running children cannot be restarted or deleted
	_, err = RestartChild(ctx, n, sup, "b")
	require.ErrorIs(t, err, ErrChildRunning)
	require.ErrorIs(t, DeleteChild(ctx, n, sup, "b"), ErrChildRunning)

	bDown := watch(t, n, b)
	require.NoError(t, TerminateChild(ctx, n, sup, "b"))
	require.ErrorIs(t, awaitDown(t, bDown).Reason, nodal.ReasonShutdown)
	require.NoError(t, TerminateChild(ctx, n, sup, "b"), "terminating a stopped child is fine")
	_, err = StartChild(ctx, n, sup, workerSpec(rec, "b"))
	require.ErrorIs(t, err, ErrChildAlreadyPresent)
	cnt, err = CountChildren(ctx, n, sup)
	require.NoError(t, err)
	require.Equal(t, ChildCount{Specs: 3, Active: 2, Supervisors: 1, Workers: 2}, cnt)

	b2, err := RestartChild(ctx, n, sup, "b")
	require.NoError(t, err)
	require.NotEqual(t, b, b2)
	require.Equal(t, b2, pidOf(t, n, "b"))

	require.NoError(t, TerminateChildPid(ctx, n, sup, b2))
	require.NoError(t, DeleteChild(ctx, n, sup, "b"))
	require.Equal(t, []string{"a", "sub"}, childIDs(children(t, n, sup)))

	// not_found, with the id in the error
	for name, err := range map[string]error{
		"terminate": TerminateChild(ctx, n, sup, "nope"),
		"delete":    DeleteChild(ctx, n, sup, "nope"),
		"restart": func() error {
			_, err := RestartChild(ctx, n, sup, "nope")
			return err
		}(),
	} {
		require.ErrorIs(t, err, ErrChildNotFound, name)
		require.ErrorAs(t, err, &ce, name)
		require.Equal(t, "nope", ce.ID)
	}
	require.ErrorIs(t, TerminateChildPid(ctx, n, sup, b2), ErrChildNotFound)

	// a failing start_child adds nothing
	_, err = StartChild(ctx, n, sup, Child{ID: "bad", Start: func(*nodal.Process) (nodal.Pid, error) { return nodal.Pid{}, errors.New("nope") }})
	require.ErrorIs(t, err, ErrStartChild)
	_, err = StartChild(ctx, n, sup, Child{ID: "", Start: testWorker(rec, "x", workerOpts{})})
	require.ErrorIs(t, err, ErrInvalidSpec)
	require.Equal(t, []string{"a", "sub"}, childIDs(children(t, n, sup)))

	// a temporary child is forgotten by terminate_child
	_, err = StartChild(ctx, n, sup, Child{ID: "tmp", Start: testWorker(rec, "tmp", workerOpts{}), Restart: Temporary})
	require.NoError(t, err)
	require.NoError(t, TerminateChild(ctx, n, sup, "tmp"))
	require.Equal(t, []string{"a", "sub"}, childIDs(children(t, n, sup)))

	// simple_one_for_one-only call on a static supervisor
	_, err = StartDynamicChild(ctx, n, sup, 1)
	require.ErrorIs(t, err, ErrWrongStrategy)

	// calls from inside a process work the same
	got := make(chan ChildCount, 1)
	_, err = n.Spawn(func(p *nodal.Process) error {
		c, err := CountChildren(p.Context(), p, sup)
		if err != nil {
			return err
		}
		got <- c
		return nil
	})
	require.NoError(t, err)
	select {
	case c := <-got:
		require.Equal(t, ChildCount{Specs: 2, Active: 2, Supervisors: 1, Workers: 1}, c)
	case <-time.After(supWait):
		t.Fatal("no answer from inside a process")
	}
}

// Management calls to a dead supervisor fail with nodal.ErrNoProc.
func TestSupervisorCallDeadSupervisor(t *testing.T) {
	n := startSupNode(t)
	sup, err := startSup(n, Spec{})
	require.NoError(t, err)
	require.NoError(t, Stop(callCtx(t), n, sup))
	down := watch(t, n, sup)
	awaitDown(t, down)
	_, err = WhichChildren(callCtx(t), n, sup)
	require.ErrorIs(t, err, nodal.ErrNoProc)
}

// OTP simple_one_for_one: children made from one template with per-child
// arguments, restarted with the same arguments, stopped all together.
func TestSupervisorSimpleOneForOne(t *testing.T) {
	n := startSupNode(t)
	rec := &recorder{}
	ctx := callCtx(t)
	sup, err := startSup(n, Spec{
		Strategy:  SimpleOneForOne,
		Intensity: 10,
		Template: &ChildTemplate{Start: func(p *nodal.Process, args any) (nodal.Pid, error) {
			return testWorker(rec, args.(string), workerOpts{})(p)
		}},
	})
	require.NoError(t, err)
	require.Empty(t, children(t, n, sup), "starts with no children")

	var pids []nodal.Pid
	for _, name := range []string{"d1", "d2", "d3"} {
		pid, err := StartDynamicChild(ctx, n, sup, name)
		require.NoError(t, err)
		require.Equal(t, pid, pidOf(t, n, name), "child got its argument")
		pids = append(pids, pid)
	}
	cs := children(t, n, sup)
	require.Len(t, cs, 3)
	for i, c := range cs {
		require.Equal(t, ChildInfo{Pid: pids[i], Type: ChildWorker}, c, "listed in start order")
	}

	// A crashed child is restarted with the same argument; others untouched.
	n.Send(pids[1], "crash")
	d2 := waitReplaced(t, n, "d2", pids[1])
	require.Equal(t, pids[0], pidOf(t, n, "d1"))
	require.Equal(t, pids[2], pidOf(t, n, "d3"))
	require.Equal(t, []nodal.Pid{pids[0], d2, pids[2]}, []nodal.Pid{children(t, n, sup)[0].Pid, children(t, n, sup)[1].Pid, children(t, n, sup)[2].Pid})

	// terminate_child by pid forgets the child.
	require.NoError(t, TerminateChildPid(ctx, n, sup, pids[0]))
	cnt, err := CountChildren(ctx, n, sup)
	require.NoError(t, err)
	require.Equal(t, ChildCount{Specs: 1, Active: 2, Workers: 2}, cnt, "OTP: one spec, the template")

	// Static-only calls are refused.
	for name, err := range map[string]error{
		"start":     func() error { _, err := StartChild(ctx, n, sup, workerSpec(rec, "x")); return err }(),
		"restart":   func() error { _, err := RestartChild(ctx, n, sup, "x"); return err }(),
		"delete":    DeleteChild(ctx, n, sup, "x"),
		"terminate": TerminateChild(ctx, n, sup, "x"),
	} {
		require.ErrorIs(t, err, ErrWrongStrategy, name)
	}

	// A failing start adds nothing.
	_, err = StartDynamicChild(ctx, n, sup, 42) // not a string: the template panics
	require.ErrorIs(t, err, ErrStartChild)

	// Stopping the supervisor stops every dynamic child.
	k := len(rec.get())
	require.NoError(t, Stop(ctx, n, sup))
	stops := rec.since(k)
	slices.Sort(stops)
	require.Equal(t, []string{"stop:d2", "stop:d3"}, stops)
}

// OTP simple_one_for_one with temporary children: exits are never
// restarted and the children are forgotten.
func TestSupervisorSimpleOneForOneTemporary(t *testing.T) {
	n := startSupNode(t)
	rec := &recorder{}
	ctx := callCtx(t)
	sup, err := startSup(n, Spec{
		Strategy: SimpleOneForOne,
		Template: &ChildTemplate{Restart: Temporary, Shutdown: BrutalKill, Start: func(p *nodal.Process, args any) (nodal.Pid, error) {
			return testWorker(rec, args.(string), workerOpts{})(p)
		}},
	})
	require.NoError(t, err)
	p, err := StartDynamicChild(ctx, n, sup, "t1")
	require.NoError(t, err)
	_, err = StartDynamicChild(ctx, n, sup, "t2")
	require.NoError(t, err)
	down := watch(t, n, p)
	n.Send(p, "crash")
	awaitDown(t, down)
	cnt, err := CountChildren(ctx, n, sup)
	require.NoError(t, err)
	require.Equal(t, ChildCount{Specs: 1, Active: 1, Workers: 1}, cnt)
	_, ok := n.Whereis("t1")
	require.False(t, ok)
	t2Down := watch(t, n, pidOf(t, n, "t2"))
	require.NoError(t, Stop(ctx, n, sup))
	require.ErrorIs(t, awaitDown(t, t2Down).Reason, nodal.ReasonKilled, "template BrutalKill")
}

// OTP: an exit signal from the parent stops the supervisor with the
// parent's reason, after its children; so does one sent from outside any
// process (nodal.Node.Exit).
func TestSupervisorStopsOnParentExit(t *testing.T) {
	n := startSupNode(t)
	t.Run("parent", func(t *testing.T) {
		rec := &recorder{}
		supc := make(chan nodal.Pid, 1)
		parent, err := n.Spawn(func(p *nodal.Process) error {
			sup, err := startSup(p, Spec{Children: []Child{workerSpec(rec, "pa"), workerSpec(rec, "pb")}}, nodal.WithLink())
			if err != nil {
				return err
			}
			supc <- sup
			if _, err := p.Receive(p.Context()); err != nil {
				return err
			}
			return errors.New("parent gave up")
		})
		require.NoError(t, err)
		sup := <-supc
		down := watch(t, n, sup)
		k := len(rec.get())
		n.Send(parent, "go")
		d := awaitDown(t, down)
		require.EqualError(t, d.Reason, "parent gave up")
		require.Equal(t, []string{"stop:pb", "stop:pa"}, rec.since(k))
	})
	t.Run("node-exit", func(t *testing.T) {
		rec := &recorder{}
		sup, err := startSup(n, Spec{Children: []Child{workerSpec(rec, "na"), workerSpec(rec, "nb")}})
		require.NoError(t, err)
		down := watch(t, n, sup)
		k := len(rec.get())
		n.Exit(sup, nodal.ReasonShutdown)
		require.ErrorIs(t, awaitDown(t, down).Reason, nodal.ReasonShutdown)
		require.Equal(t, []string{"stop:nb", "stop:na"}, rec.since(k))
	})
}

// one_for_all with a temporary sibling: the sibling is stopped and not
// restarted (OTP drops temporary children in a group restart).
func TestSupervisorOneForAllDropsTemporarySibling(t *testing.T) {
	n := startSupNode(t)
	rec := &recorder{}
	tmp := workerSpec(rec, "tmp")
	tmp.Restart = Temporary
	sup, err := startSup(n, Spec{Strategy: OneForAll, Children: []Child{workerSpec(rec, "a"), tmp}})
	require.NoError(t, err)
	a := pidOf(t, n, "a")
	k := len(rec.get())
	n.Send(a, "crash")
	waitReplaced(t, n, "a", a)
	require.Equal(t, []string{"stop:tmp", "start:a"}, rec.since(k))
	require.Equal(t, []string{"a"}, childIDs(children(t, n, sup)))
}

// The supervisor links to what nodal.Start returns, so a child started without a
// link is still supervised.
func TestSupervisorLinksForgottenLink(t *testing.T) {
	n := startSupNode(t)
	rec := &recorder{}
	unlinked := func(p *nodal.Process) (nodal.Pid, error) {
		rec.add("start:u")
		return p.Spawn(func(w *nodal.Process) error {
			_, err := w.Receive(w.Context())
			if err != nil {
				return err
			}
			return errors.New("crash")
		}, nodal.WithName("u"))
	}
	_, err := startSup(n, Spec{Children: []Child{{ID: "u", Start: unlinked}}})
	require.NoError(t, err)
	u := pidOf(t, n, "u")
	n.Send(u, "crash")
	waitReplaced(t, n, "u", u)
}

func TestSupervisorInvalidSpec(t *testing.T) {
	n := startSupNode(t)
	start := func(*nodal.Process) (nodal.Pid, error) { return nodal.Pid{}, nil }
	tmpl := &ChildTemplate{Start: func(*nodal.Process, any) (nodal.Pid, error) { return nodal.Pid{}, nil }}
	for _, tc := range []struct {
		name string
		spec Spec
	}{
		{"unknown-strategy", Spec{Strategy: Strategy(9)}},
		{"negative-period", Spec{Period: -time.Second}},
		{"empty-id", Spec{Children: []Child{{Start: start}}}},
		{"nil-start", Spec{Children: []Child{{ID: "x"}}}},
		{"duplicate-id", Spec{Children: []Child{{ID: "x", Start: start}, {ID: "x", Start: start}}}},
		{"bad-restart", Spec{Children: []Child{{ID: "x", Start: start, Restart: RestartType(7)}}}},
		{"bad-type", Spec{Children: []Child{{ID: "x", Start: start, Type: ChildType(7)}}}},
		{"bad-shutdown", Spec{Children: []Child{{ID: "x", Start: start, Shutdown: -5}}}},
		{"template-without-simple", Spec{Template: tmpl}},
		{"simple-without-template", Spec{Strategy: SimpleOneForOne}},
		{"simple-with-children", Spec{Strategy: SimpleOneForOne, Template: tmpl, Children: []Child{{ID: "x", Start: start}}}},
		{"simple-nil-start", Spec{Strategy: SimpleOneForOne, Template: &ChildTemplate{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := n.Processes()
			_, err := startSup(n, tc.spec)
			require.ErrorIs(t, err, ErrInvalidSpec)
			require.Equal(t, before, n.Processes(), "nothing spawned")
		})
	}
}

func TestSupervisorEnumStrings(t *testing.T) {
	require.Equal(t, "rest_for_one", RestForOne.String())
	require.Equal(t, "simple_one_for_one", SimpleOneForOne.String())
	require.Equal(t, "transient", Transient.String())
	require.Equal(t, "supervisor", ChildSupervisor.String())
	require.Equal(t, "Strategy(9)", Strategy(9).String())
}

// OTP simple_one_for_one shutdown: all children get exit shutdown at once
// and those still alive after the template's Shutdown are killed.
func TestSupervisorSimpleOneForOneShutdownTimeout(t *testing.T) {
	n := startSupNode(t)
	rec := &recorder{}
	ctx := callCtx(t)
	sup, err := startSup(n, Spec{
		Strategy: SimpleOneForOne,
		Template: &ChildTemplate{Shutdown: 20 * time.Millisecond, Start: func(p *nodal.Process, args any) (nodal.Pid, error) {
			id := args.(string)
			return testWorker(rec, id, workerOpts{ignoreShutdown: id != "polite"})(p)
		}},
	})
	require.NoError(t, err)
	downs := map[string]<-chan nodal.Down{}
	for _, id := range []string{"polite", "stubborn1", "stubborn2"} {
		pid, err := StartDynamicChild(ctx, n, sup, id)
		require.NoError(t, err)
		downs[id] = watch(t, n, pid)
	}
	require.NoError(t, Stop(ctx, n, sup))
	require.ErrorIs(t, awaitDown(t, downs["polite"]).Reason, nodal.ReasonShutdown)
	require.ErrorIs(t, awaitDown(t, downs["stubborn1"]).Reason, nodal.ReasonKilled)
	require.ErrorIs(t, awaitDown(t, downs["stubborn2"]).Reason, nodal.ReasonKilled)
	ev := rec.get()
	slices.Sort(ev)
	require.Equal(t, []string{"ignored:stubborn1", "ignored:stubborn2", "start:polite", "start:stubborn1", "start:stubborn2", "stop:polite"}, ev)
}

// nodal.Actor-style children are supervised like nodal.Func ones.
func TestSupervisorActorChild(t *testing.T) {
	n := startSupNode(t)
	start := func(p *nodal.Process) (nodal.Pid, error) {
		return p.SpawnActor(nodal.ActorFunc(func(p *nodal.Process, msg any) error {
			if msg == "crash" {
				return errors.New("actor crashed")
			}
			return nil
		}), nodal.WithLink(), nodal.WithName("actor"))
	}
	sup, err := startSup(n, Spec{Children: []Child{{ID: "actor", Start: start}}})
	require.NoError(t, err)
	a := pidOf(t, n, "actor")
	n.Send(a, "crash")
	a2 := waitReplaced(t, n, "actor", a)
	require.Equal(t, a2, childPid(t, n, sup, "actor"))
	down := watch(t, n, a2)
	require.NoError(t, TerminateChild(callCtx(t), n, sup, "actor"))
	require.ErrorIs(t, awaitDown(t, down).Reason, nodal.ReasonShutdown)
}

// nodal.Node.Stop ends a running tree, including a child that ignores shutdown
// (the supervisor kills it after its Shutdown), and leaves no goroutine
// (the leak check runs after Stop).
func TestSupervisorNodeStopEndsTree(t *testing.T) {
	leakCheck := leaktest.AfterTest(t)
	defer leakCheck()
	n, err := nodal.Start(context.Background(), nodal.Config{})
	require.NoError(t, err)
	rec := &recorder{}
	_, err = startSup(n, Spec{Children: []Child{
		workerSpec(rec, "a"),
		Nested("sub", Spec{Strategy: OneForAll, Children: []Child{
			{ID: "stubborn", Start: testWorker(rec, "stubborn", workerOpts{ignoreShutdown: true}), Shutdown: 20 * time.Millisecond},
			workerSpec(rec, "b"),
		}}),
	}})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), supWait)
	defer cancel()
	require.NoError(t, n.Stop(ctx), "graceful stop completes within the deadline")
	require.Empty(t, n.Processes())
	require.Contains(t, rec.get(), "ignored:stubborn")
}
