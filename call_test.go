package nodal

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
)

// echoServer is a Func gen_server: it answers every CallRequest with the
// request, except "stop" (it exits with reason "stopped" without replying)
// and "ignore" (no reply).
func echoServer(p *Process) error {
	for {
		m, err := p.Receive(p.Context())
		if err != nil {
			return err
		}
		req, ok := m.(CallRequest)
		if !ok {
			continue
		}
		switch req.Req {
		case "stop":
			return errors.New("stopped")
		case "ignore":
		default:
			p.Reply(req.From, req.Req)
		}
	}
}

// gen_server:call: the reply comes back; other messages in the caller's
// mailbox are left alone, and the call's monitor is gone afterwards.
func TestCallReply(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	srv, err := n.Spawn(echoServer)
	require.NoError(t, err)
	n.Send(w.Self(), "unrelated")
	got, err := w.Call(testCtx(t), srv, 42)
	require.NoError(t, err)
	require.Equal(t, 42, got)
	require.Equal(t, "unrelated", recv(t, w))
	info, err := n.ProcessInfo(w.Self())
	require.NoError(t, err)
	require.Empty(t, info.Monitors)
	require.Equal(t, 0, info.MessageQueueLen)

	got, err = n.Call(testCtx(t), srv, "from outside")
	require.NoError(t, err)
	require.Equal(t, "from outside", got)
}

type kv struct{ m map[string]int }

func (k *kv) Init(*Process) error { k.m = map[string]int{}; return nil }
func (k *kv) HandleMessage(p *Process, msg any) error {
	if kv, ok := msg.([2]any); ok {
		k.m[kv[0].(string)] = kv[1].(int)
	}
	return nil
}
func (k *kv) HandleCall(p *Process, from From, req any) (any, error) {
	if req == "crash" {
		return nil, errors.New("crashed")
	}
	return k.m[req.(string)], nil
}

// An Actor implementing CallHandler is answered for; an error from
// HandleCall ends it and the caller gets that reason.
func TestCallActor(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	pid, err := n.SpawnActor(&kv{})
	require.NoError(t, err)
	n.Send(pid, [2]any{"a", 1})
	got, err := n.Call(testCtx(t), pid, "a")
	require.NoError(t, err)
	require.Equal(t, 1, got)
	_, err = n.Call(testCtx(t), pid, "crash")
	var ce *CallError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "crashed", ce.Reason.Error())
	require.False(t, alive(n, pid))
}

// parker answers "get" only once "open" has arrived: until then it keeps
// the callers' From and returns ErrNoReply (gen_server's {noreply, State}).
type parker struct {
	open    bool
	waiting []From
}

func (k *parker) Init(*Process) error { return nil }
func (k *parker) HandleMessage(p *Process, msg any) error {
	if msg == "open" {
		k.open = true
		for _, f := range k.waiting {
			p.Reply(f, "opened")
		}
		k.waiting = nil
	}
	return nil
}
func (k *parker) HandleCall(p *Process, from From, req any) (any, error) {
	if k.open {
		return "already open", nil
	}
	k.waiting = append(k.waiting, from)
	return nil, ErrNoReply
}

// A handler that returns ErrNoReply keeps running and replies later; the
// callers wait until then.
func TestCallActorReplyLater(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	pid, err := n.SpawnActor(&parker{})
	require.NoError(t, err)
	replies := make(chan any, 2)
	for range 2 {
		go func() {
			r, err := n.Call(testCtx(t), pid, "get")
			if err != nil {
				r = err
			}
			replies <- r
		}()
	}
	require.Eventually(t, func() bool {
		info, err := n.ProcessInfo(pid)
		return err == nil && len(info.MonitoredBy) == 2
	}, 5*time.Second, time.Millisecond, "both calls parked")
	select {
	case r := <-replies:
		t.Fatalf("a parked call returned early: %v", r)
	case <-time.After(50 * time.Millisecond):
	}
	n.Send(pid, "open")
	for range 2 {
		require.Equal(t, "opened", waitFor(t, nil, replies, "replies"))
	}
	got, err := n.Call(testCtx(t), pid, "get")
	require.NoError(t, err)
	require.Equal(t, "already open", got)
	require.True(t, alive(n, pid))
}

// gen_server:call to a dead process exits with noproc; to a process that
// dies before replying, with its reason; on timeout, with timeout, and a
// late reply is dropped (as an expired alias drops it).
func TestCallFailures(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	srv, err := n.Spawn(echoServer)
	require.NoError(t, err)

	_, err = w.Call(testCtx(t), srv, "stop")
	require.ErrorContains(t, err, "stopped")
	var ce *CallError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, srv, ce.To)

	_, err = w.Call(testCtx(t), srv, "x")
	require.ErrorIs(t, err, ErrNoProc)
	require.ErrorIs(t, err, ReasonNoProc)

	srv, err = n.Spawn(echoServer)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	_, err = w.Call(ctx, srv, "ignore")
	require.ErrorIs(t, err, ErrTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	// A reply to the expired call is dropped.
	n.Reply(From{Pid: w.Self(), Ref: Ref{Node: n.Name(), ID: 1 << 40, Incarnation: n.Incarnation()}}, "late")
	info, err := n.ProcessInfo(w.Self())
	require.NoError(t, err)
	require.Empty(t, info.Monitors)
	require.Equal(t, 0, info.MessageQueueLen)
}

// A late reply to the exact ref of a timed-out call is dropped.
func TestCallLateReplyDropped(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	reqs := make(chan CallRequest, 1)
	srv, err := n.Spawn(func(p *Process) error {
		m, err := p.Receive(p.Context())
		if err != nil {
			return err
		}
		reqs <- m.(CallRequest)
		return blockForever(p)
	})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	_, err = w.Call(ctx, srv, "q")
	require.ErrorIs(t, err, ErrTimeout)
	req := waitFor(t, nil, reqs, "reqs")
	n.Reply(req.From, "late")
	require.Equal(t, 0, queueLen(t, w))
}
