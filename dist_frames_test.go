package nodal

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// A batch of frames (dist.Frames) is delivered in the frames' order: runs of
// messages for one process go in together, a message for another process or
// a signal ends a run, a frame that does not decode is dropped and counted
// without costing its neighbours, and a message for a process that is gone
// is dropped.
func TestFramesBatchOrder(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n, d := framesNode(t)
	defer func() { require.NoError(t, n.Stop(context.Background())) }()

	got := make(chan []any, 2)
	a, err := n.Spawn(collect(5, got), WithTrapExit())
	require.NoError(t, err)
	b, err := n.Spawn(collect(1, got))
	require.NoError(t, err)
	gone, err := n.Spawn(func(*Process) error { return nil })
	require.NoError(t, err)
	p2ptest.Eventually(t, 10*time.Second, func() bool { return n.procs.get(gone.ID) == nil }, "the process to be gone")

	// The frames as the peer encodes them: its pids and this node's without
	// their node names.
	peer := &dist{n: &Node{name: frameBenchPeer.Name}, codec: DefaultCodec}
	from := Pid{Node: frameBenchPeer.Name, ID: 3, Incarnation: frameBenchPeer.Incarnation}
	frame := func(s signal) []byte {
		s.from = from
		f, err := peer.encodeSignal(nil, s, n.name)
		require.NoError(t, err)
		return f
	}
	msg := func(to Pid, v any) []byte { return frame(signal{kind: sigMessage, to: to, msg: v}) }
	reason := errors.New("peer says stop")
	batch := [][]byte{
		msg(a, []byte("a1")),
		msg(b, "b1"),
		msg(a, 2),
		{dMsg, 0, 0x80}, // cut short
		msg(a, []byte("a3")),
		frame(signal{kind: sigExit, to: a, reason: reason}),
		msg(gone, "lost"),
		msg(a, "a4"),
	}
	d.Frames(frameBenchPeer, batch)

	byFirst := map[string][]any{}
	for range 2 {
		select {
		case ms := <-got:
			byFirst[describe(ms[0])] = ms
		case <-time.After(10 * time.Second):
			t.Fatal("messages not delivered")
		}
	}
	require.Equal(t, []any{"b1"}, byFirst["b1"])
	ms := byFirst["a1"]
	require.Len(t, ms, 5)
	require.Equal(t, []byte("a1"), ms[0])
	require.Equal(t, 2, ms[1])
	require.Equal(t, []byte("a3"), ms[2])
	ex, ok := ms[3].(Exit)
	require.True(t, ok, "got %#v", ms[3])
	require.Equal(t, from, ex.From)
	require.EqualError(t, ex.Reason, reason.Error())
	require.Equal(t, "a4", ms[4])
	require.Equal(t, uint64(1), d.decodeErrors.Load())
}

// framesNode starts a node and a dist on it whose Frames the test calls
// itself, as a connection's reader would; the caller stops the node.
func framesNode(t *testing.T) (*Node, *dist) {
	n, err := Start(context.Background(), Config{})
	require.NoError(t, err)
	d := newDist(n, DefaultCodec)
	d.hostSet.Store(true)
	d.backlog = -1
	return n, d
}

// collect is a process that receives want messages and sends them to got.
func collect(want int, got chan<- []any) Func {
	return func(p *Process) error {
		var ms []any
		for len(ms) < want {
			m, err := p.Receive(p.Context())
			if err != nil {
				return err
			}
			ms = append(ms, m)
		}
		got <- ms
		return nil
	}
}

func describe(m any) string {
	switch m := m.(type) {
	case []byte:
		return string(m)
	case string:
		return m
	}
	return ""
}

// A dMsgSame frame (p2p.Link.SendHead) is a message with the pids of the
// message frame before it on its connection, in the same batch or in the
// one before: dist.Frames keeps the connection's last head from NodeUp on.
// After any other frame it has none: a dMsgSame there is refused and
// counted, and its neighbours are delivered.
func TestFramesSameHead(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n, d := framesNode(t)
	defer func() { require.NoError(t, n.Stop(context.Background())) }()

	got := make(chan []any, 1)
	a, err := n.Spawn(collect(5, got), WithTrapExit())
	require.NoError(t, err)

	from := Pid{Node: frameBenchPeer.Name, ID: 3, Incarnation: frameBenchPeer.Incarnation}
	head := append([]byte{dMsg}, appendRemotePid(nil, from, frameBenchPeer.Name, frameBenchPeer.Incarnation)...)
	head = appendRemotePid(head, a, n.name, n.incarnation)
	value := func(v any) []byte {
		b, err := DefaultCodec.AppendValue(nil, v)
		require.NoError(t, err)
		return b
	}
	full := func(v any) []byte { return append(bytes.Clone(head), value(v)...) }
	same := func(v any) []byte { return append([]byte{dMsgSame}, value(v)...) }
	peer := &dist{n: &Node{name: frameBenchPeer.Name}, codec: DefaultCodec}
	exit, err := peer.encodeSignal(nil, signal{kind: sigExit, from: from, to: a, reason: errors.New("peer says stop")}, n.name)
	require.NoError(t, err)

	d.inHeads.Store(frameBenchPeer.Name, new(msgHead)) // as NodeUp does
	d.Frames(frameBenchPeer, [][]byte{same("no head yet"), full([]byte("1")), same([]byte("2"))})
	d.Frames(frameBenchPeer, [][]byte{same(3), exit, same("after a signal"), full("4")})

	select {
	case ms := <-got:
		require.Equal(t, []byte("1"), ms[0])
		require.Equal(t, []byte("2"), ms[1])
		require.Equal(t, 3, ms[2])
		ex, ok := ms[3].(Exit)
		require.True(t, ok, "got %#v", ms[3])
		require.Equal(t, from, ex.From)
		require.Equal(t, "4", ms[4])
	case <-time.After(10 * time.Second):
		t.Fatal("messages not delivered")
	}
	require.Equal(t, uint64(2), d.decodeErrors.Load())
}
