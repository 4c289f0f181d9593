package nodal

import (
	"context"
	"errors"
	"testing"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
)

// linkedPair spawns a and b (blocked in Receive), links them, and monitors
// both from the probe.
func linkedPair(t *testing.T, n *Node, w *Process, bOpts ...SpawnOption) (a, b Pid, ra, rb Ref) {
	t.Helper()
	var err error
	b, err = n.Spawn(blockForever, bOpts...)
	require.NoError(t, err)
	linked := make(chan struct{})
	a, err = n.Spawn(func(p *Process) error {
		p.Link(b)
		close(linked)
		return blockForever(p)
	})
	require.NoError(t, err)
	waitFor(t, nil, linked, "the link")
	return a, b, w.Monitor(a), w.Monitor(b)
}

// Erlang: a link is bidirectional; an abnormal exit of either end kills the
// other (non-trapping) end with the same reason.
func TestLinkBidirectionalAbnormalExitKills(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	boom := errors.New("boom")
	for _, killA := range []bool{true, false} {
		a, b, ra, rb := linkedPair(t, n, w)
		victim, other, rv, ro := a, b, ra, rb
		if !killA {
			victim, other, rv, ro = b, a, rb, ra
		}
		n.Exit(victim, boom)
		require.Equal(t, Down{Ref: rv, Pid: victim, Reason: boom}, waitDown(t, w, rv))
		require.Equal(t, Down{Ref: ro, Pid: other, Reason: boom}, waitDown(t, w, ro))
	}
}

// Erlang: an exit signal with reason normal over a link does not kill a
// non-trapping process.
func TestLinkNormalExitDoesNotKill(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	// The child is linked and monitored atomically at spawn, so its Down
	// reaches the parent after its exit signal (signals from one process to
	// another keep their order).
	done := make(chan Down, 1)
	parent, err := n.Spawn(func(p *Process) error {
		_, ref, err := p.SpawnMonitor(func(*Process) error { return nil }, WithLink())
		if err != nil {
			return err
		}
		m, err := p.ReceiveMatch(context.Background(), func(m any) bool { d, ok := m.(Down); return ok && d.Ref == ref })
		if err != nil {
			return err
		}
		done <- m.(Down)
		return blockForever(p)
	})
	require.NoError(t, err)
	require.Equal(t, ReasonNormal, waitFor(t, nil, done, "the child's Down").Reason)
	require.True(t, alive(n, parent))
	info, err := n.ProcessInfo(parent)
	require.NoError(t, err)
	require.Empty(t, info.Links)
}

// Erlang: trap_exit turns exit signals into {'EXIT', From, Reason} messages,
// normal ones included.
func TestTrapExitTurnsSignalsIntoMessages(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	w.TrapExit(true)
	require.True(t, w.TrapExit(true))
	boom := errors.New("boom")
	c1, err := w.Spawn(func(*Process) error { return nil }, WithLink())
	require.NoError(t, err)
	require.Equal(t, Exit{From: c1, Reason: ReasonNormal}, recv(t, w))
	c2, err := w.Spawn(func(*Process) error { return boom }, WithLink())
	require.NoError(t, err)
	require.Equal(t, Exit{From: c2, Reason: boom}, recv(t, w))
	// An explicit exit signal from another process, trapped.
	_, err = n.Spawn(func(p *Process) error { p.SendExit(w.Self(), boom); return nil })
	require.NoError(t, err)
	ex := recv(t, w).(Exit)
	require.Equal(t, boom, ex.Reason)
	n.Exit(w.Self(), ReasonNormal)
	require.Equal(t, Exit{From: Pid{}, Reason: ReasonNormal}, recv(t, w))
	require.True(t, alive(n, w.Self()))
}

// Erlang: exit(Pid, kill) cannot be trapped and the victim's reason is
// killed; killed propagates over links as an ordinary, trappable reason.
func TestKillUntrappableArrivesAsKilled(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	w.TrapExit(true)
	victim, err := w.Spawn(blockForever, WithTrapExit(), WithLink())
	require.NoError(t, err)
	ref := w.Monitor(victim)
	n.Exit(victim, ReasonKill)
	require.Equal(t, ReasonKilled, waitDown(t, w, ref).Reason)
	require.Equal(t, Exit{From: victim, Reason: ReasonKilled},
		recvMatch(t, w, func(m any) bool { _, ok := m.(Exit); return ok }))
}

// Erlang: a non-trapping process ignores exit(Pid, normal) from others, but
// exit(self(), normal) ends it.
func TestExitSignalNormal(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	pid, err := n.Spawn(blockForever)
	require.NoError(t, err)
	n.Exit(pid, ReasonNormal)
	w.SendExit(pid, nil)
	require.True(t, alive(n, pid))
	_, ref, err := w.SpawnMonitor(func(p *Process) error {
		p.SendExit(p.Self(), ReasonNormal)
		_, err := p.Receive(p.Context())
		return err
	})
	require.NoError(t, err)
	require.Equal(t, ReasonNormal, waitDown(t, w, ref).Reason)
}

// Erlang: link/1 is idempotent (one link however often it is made), and
// unlink/1 removes it on both sides so the exit no longer propagates.
func TestLinkIdempotentAndUnlink(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	b, err := n.Spawn(blockForever)
	require.NoError(t, err)
	w.Link(b)
	w.Link(b)
	w.Link(w.Self()) // no-op
	info, err := n.ProcessInfo(b)
	require.NoError(t, err)
	require.Equal(t, []Pid{w.Self()}, info.Links)
	winfo, err := n.ProcessInfo(w.Self())
	require.NoError(t, err)
	require.Equal(t, []Pid{b}, winfo.Links)

	w.Unlink(b) // one unlink undoes both Links
	info, err = n.ProcessInfo(b)
	require.NoError(t, err)
	require.Empty(t, info.Links)
	n.Exit(b, errors.New("boom"))
	require.True(t, alive(n, w.Self()), "unlinked: the exit does not propagate")
}

// Erlang (OTP 23+): unlink guarantees that the link has no further effect,
// even when the other end's exit signal was already on its way; a trapped
// Exit already in the mailbox stays.
func TestUnlinkIgnoresLateExitSignal(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	b, err := n.Spawn(blockForever)
	require.NoError(t, err)
	w.Link(b)
	w.Unlink(b)
	// A late link exit signal from b (as if sent before the unlink arrived).
	n.route(signal{kind: sigLinkExit, from: b, to: w.Self(), reason: errors.New("late")})
	require.True(t, alive(n, w.Self()))
}

// Erlang: linking to a process that does not exist sends the caller an exit
// signal with reason noproc.
func TestLinkToDeadPidGivesNoproc(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	dead, ref, err := w.SpawnMonitor(func(*Process) error { return nil })
	require.NoError(t, err)
	waitDown(t, w, ref)

	w.TrapExit(true)
	w.Link(dead)
	require.Equal(t, Exit{From: dead, Reason: ReasonNoProc}, recv(t, w))

	_, ref, err = w.SpawnMonitor(func(p *Process) error {
		p.Link(dead)
		_, err := p.Receive(p.Context())
		return err
	})
	require.NoError(t, err)
	require.Equal(t, ReasonNoProc, waitDown(t, w, ref).Reason)
}

// spawn_link is atomic: a child that dies at once still kills its parent.
func TestSpawnLinkAtomic(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	boom := errors.New("boom")
	_, ref, err := w.SpawnMonitor(func(p *Process) error {
		for {
			if _, err := p.Spawn(func(*Process) error { return boom }, WithLink()); err != nil {
				return err
			}
			if _, err := p.Receive(p.Context()); err != nil {
				return err
			}
		}
	})
	require.NoError(t, err)
	d := waitDown(t, w, ref)
	require.Equal(t, boom, d.Reason)
}

// A chain of linked processes dies entirely, without deep recursion.
func TestLongLinkChain(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	const length = 20000
	idle := ActorFunc(func(*Process, any) error { return nil })
	first, err := n.SpawnActor(idle)
	require.NoError(t, err)
	prev := first
	var last Pid
	for range length {
		pid, err := n.SpawnActor(linkInit{prev})
		require.NoError(t, err)
		prev, last = pid, pid
	}
	ref := w.Monitor(last)
	n.Exit(first, errors.New("boom"))
	require.Equal(t, "boom", waitDown(t, w, ref).Reason.Error())
	require.Len(t, n.Processes(), 1) // only the probe
}

type linkInit struct{ to Pid }

func (l linkInit) Init(p *Process) error             { p.Link(l.to); return nil }
func (l linkInit) HandleMessage(*Process, any) error { return nil }
