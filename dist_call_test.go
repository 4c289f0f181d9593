package nodal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
)

// distIdle is a Behaviour that waits until it is killed.
func distIdle(p *Process, _ any) error {
	<-p.Context().Done()
	return nil
}

// distFramesTo returns how many frames n has written to node so far.
func distFramesTo(n *Node, node string) uint64 {
	for _, ps := range n.DistStats().P2P.Peers {
		if ps.Name == node {
			return ps.FramesOut
		}
	}
	return 0
}

// distSettledFramesTo is distFramesTo once the count has stopped moving: a
// writer counts a frame after its write returns, which may be after the
// frame's answer has arrived.
func distSettledFramesTo(n *Node, node string) uint64 {
	last := distFramesTo(n, node)
	for {
		time.Sleep(50 * time.Millisecond)
		now := distFramesTo(n, node)
		if now == last {
			return now
		}
		last = now
	}
}

// A successful call to another node costs one frame each way: the monitor
// travels with the request and the callee's reply ends it on both sides
// (gen_server:call's monitor, as with OTP's alias monitors), so neither
// side keeps a monitor afterwards and no demonitor is sent.
func TestDistCallOneFrameEachWayNoMonitorLeft(t *testing.T) {
	defer leaktest.AfterTest(t)()
	nodes := startDistCluster(t, "a@127.0.0.1", "b@127.0.0.1")
	defer stopNodes(nodes)
	a, b := nodes[0], nodes[1]
	echo, err := b.SpawnActor(distEchoActor{}, WithName("echo"))
	require.NoError(t, err)
	const calls = 50
	distInProcess(t, a, func(t *procT, p *Process) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := p.Call(ctx, echo, "warm up"); err != nil { // connection settled
			return err
		}
		outA, outB := distSettledFramesTo(a, b.Name()), distSettledFramesTo(b, a.Name())
		for i := range calls {
			r, err := p.Call(ctx, echo, i)
			if err != nil {
				return err
			}
			if r != i {
				return errors.New("wrong reply")
			}
		}
		if got := distSettledFramesTo(a, b.Name()) - outA; got != calls {
			t.Errorf("caller wrote %d frames for %d calls, want one per call", got, calls)
		}
		if got := distSettledFramesTo(b, a.Name()) - outB; got != calls {
			t.Errorf("callee wrote %d frames for %d calls, want one per call", got, calls)
		}
		info, err := a.ProcessInfo(p.Self())
		require.NoError(t, err)
		require.Empty(t, info.Monitors, "the caller keeps no monitor")
		return nil
	})
	info, err := b.ProcessInfo(echo)
	require.NoError(t, err)
	require.Empty(t, info.MonitoredBy, "the callee keeps no monitor")
}

// distDelegator hands every call to a fresh worker on its own node, which
// replies (gen_server:reply/2 from another process).
type distDelegator struct{}

func (distDelegator) Init(*Process) error               { return nil }
func (distDelegator) HandleMessage(*Process, any) error { return nil }
func (distDelegator) HandleCall(p *Process, from From, req any) (any, error) {
	if _, err := p.Node().Spawn(func(w *Process) error {
		w.Reply(from, req)
		return nil
	}); err != nil {
		return nil, err
	}
	return nil, ErrNoReply
}

// When someone other than the callee replies, the callee still holds the
// call's monitor; the caller then ends it with a demonitor, as before.
func TestDistCallReplyFromAnotherProcess(t *testing.T) {
	defer leaktest.AfterTest(t)()
	nodes := startDistCluster(t, "a@127.0.0.1", "b@127.0.0.1")
	defer stopNodes(nodes)
	a, b := nodes[0], nodes[1]
	srv, err := b.SpawnActor(distDelegator{})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 3 {
		r, err := a.Call(ctx, srv, i)
		require.NoError(t, err)
		require.Equal(t, i, r)
	}
	distWait(t, 10*time.Second, func() bool {
		info, err := b.ProcessInfo(srv)
		return err == nil && len(info.MonitoredBy) == 0
	}, "the callee's monitors to end")
}

// A callee that exits before replying fails the call with its reason
// (the monitor's Down), and a call to a dead pid fails with noproc.
func TestDistCallCalleeExits(t *testing.T) {
	defer leaktest.AfterTest(t)()
	nodes := startDistCluster(t, "a@127.0.0.1", "b@127.0.0.1")
	defer stopNodes(nodes)
	a, b := nodes[0], nodes[1]
	boom := errors.New("boom")
	victim, err := b.Spawn(func(p *Process) error {
		if _, err := p.Receive(context.Background()); err != nil {
			return err
		}
		return boom
	})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = a.Call(ctx, victim, "x")
	var ce *CallError
	require.ErrorAs(t, err, &ce)
	require.Contains(t, ce.Error(), "boom")
	_, err = a.Call(ctx, victim, "again")
	require.ErrorIs(t, err, ErrNoProc)
}

// A call that times out sends the demonitor: the callee keeps nothing, and
// its late reply never reaches the caller's mailbox.
func TestDistCallTimeoutThenLateReply(t *testing.T) {
	defer leaktest.AfterTest(t)()
	nodes := startDistCluster(t, "a@127.0.0.1", "b@127.0.0.1")
	defer stopNodes(nodes)
	a, b := nodes[0], nodes[1]
	release := make(chan struct{})
	slow, err := b.Spawn(func(p *Process) error {
		m, err := p.Receive(context.Background())
		if err != nil {
			return err
		}
		hold(release)
		p.Reply(m.(CallRequest).From, "late")
		_, err = p.Receive(context.Background()) // stay alive
		return err
	})
	require.NoError(t, err)
	distInProcess(t, a, func(t *procT, p *Process) error {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := p.Call(ctx, slow, "x")
		require.ErrorIs(t, err, ErrTimeout)
		distWait(t, 10*time.Second, func() bool {
			info, err := b.ProcessInfo(slow)
			return err == nil && len(info.MonitoredBy) == 0
		}, "the demonitor to reach the callee")
		close(release)
		lctx, lcancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer lcancel()
		m, err := p.Receive(lctx)
		require.ErrorIs(t, err, ErrTimeout, "got %v", m)
		info, _ := a.ProcessInfo(p.Self())
		require.Empty(t, info.Monitors)
		return nil
	})
}

// spawn_link and spawn_monitor on another node: when a third party kills
// the new process before the spawn's reply leaves its node, the spawner's
// link and monitor still fire with the real reason (not noproc), after the
// spawn has returned the pid.
func TestDistSpawnLinkKilledBeforeReply(t *testing.T) {
	defer leaktest.AfterTest(t)()
	nodes := startDistCluster(t, "a@127.0.0.1", "b@127.0.0.1")
	defer stopNodes(nodes)
	a, b := nodes[0], nodes[1]
	require.NoError(t, b.RegisterBehaviour("idle", distIdle))
	interrupted := errors.New("interrupted")
	testHookRemoteSpawned = func(n *Node, pid Pid) {
		if n == b {
			n.Exit(pid, interrupted)
		}
	}
	defer func() { testHookRemoteSpawned = nil }()
	done := make(chan struct{})
	pt := newProcT()
	_, err := a.Spawn(func(p *Process) error {
		defer close(done)
		pid, err := p.SpawnOn(context.Background(), b.Name(), "idle", nil, WithLink())
		require.NoError(pt, err)
		m := distRecv(pt, p)
		require.IsType(pt, Exit{}, m)
		ex := m.(Exit)
		require.Equal(pt, pid, ex.From)
		require.Equal(pt, "interrupted", ex.Reason.Error())
		pid, ref, err := p.SpawnMonitorOn(context.Background(), b.Name(), "idle", nil)
		require.NoError(pt, err)
		m = distRecv(pt, p)
		require.IsType(pt, Down{}, m)
		d := m.(Down)
		require.Equal(pt, ref, d.Ref)
		require.Equal(pt, pid, d.Pid)
		require.Equal(pt, "interrupted", d.Reason.Error())
		return nil
	}, WithTrapExit())
	require.NoError(t, err)
	waitForWithin(t, pt, done, 30*time.Second, "the spawner to finish")
	pt.check(t)
}

// A remotely spawned, linked process that dies later sends its real reason
// over the link.
func TestDistSpawnLinkOnRealReason(t *testing.T) {
	defer leaktest.AfterTest(t)()
	nodes := startDistCluster(t, "a@127.0.0.1", "b@127.0.0.1")
	defer stopNodes(nodes)
	a, b := nodes[0], nodes[1]
	require.NoError(t, b.RegisterBehaviour("fail-on-message", func(p *Process, _ any) error {
		m, err := p.Receive(context.Background())
		if err != nil {
			return err
		}
		return fmt.Errorf("failed on %v", m)
	}))
	distInProcess(t, a, func(t *procT, p *Process) error {
		p.TrapExit(true)
		pid, err := p.SpawnOn(context.Background(), b.Name(), "fail-on-message", nil, WithLink())
		if err != nil {
			return err
		}
		require.NoError(t, p.Send(pid, "x"))
		ex := distRecv(t, p).(Exit)
		require.Equal(t, pid, ex.From)
		require.Equal(t, "failed on x", ex.Reason.Error())
		return nil
	})
}

// A remote spawn_link whose spawner is no longer reachable when the link is
// installed (its node went down, or restarted, meanwhile) must not leave
// the new process linked to nobody: the link fires at once, as a link to
// an unreachable or dead pid does in Erlang.
func TestDistSpawnLinkSpawnerGone(t *testing.T) {
	defer leaktest.AfterTest(t)()
	nodes := startDistCluster(t, "a@127.0.0.1", "b@127.0.0.1")
	defer stopNodes(nodes)
	a, b := nodes[0], nodes[1]
	require.NoError(t, b.RegisterBehaviour("idle", distIdle))
	started := make(chan Pid, 1)
	testHookRemoteSpawned = func(n *Node, pid Pid) { started <- pid }
	defer func() { testHookRemoteSpawned = nil }()
	peer, ok := b.dist.peer(a.Name())
	require.True(t, ok)
	// A spawn_link request from a pid of an earlier start of a.
	stale := Pid{Node: a.Name(), ID: 5, Incarnation: a.Incarnation() + 1}
	frame := binary.AppendUvarint([]byte{dSpawnReq}, 1)
	frame = appendRemotePid(frame, stale, a.Name(), a.Incarnation())
	frame = appendPid(frame, Pid{})
	frame = append(frame, spawnFlagLink)
	frame = appendRef(frame, Ref{})
	frame = appendString(frame, "idle")
	frame, err := b.dist.codec.AppendValue(frame, nil)
	require.NoError(t, err)
	require.NoError(t, b.dist.handleFrame(peer, frame))
	pid := waitFor(t, nil, started, "started") // handleFrame spawned it
	distWait(t, 10*time.Second, func() bool { return !alive(b, pid) }, "the process linked to a dead spawner to exit")
}
