package nodal

import (
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
	n, err := Start(context.Background(), Config{})
	require.NoError(t, err)
	defer func() { require.NoError(t, n.Stop(context.Background())) }()
	d := newDist(n, DefaultCodec)
	d.hostSet.Store(true)
	d.backlog = -1

	got := make(chan []any, 2)
	collect := func(want int) func(p *Process) error {
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
	a, err := n.Spawn(collect(5), WithTrapExit())
	require.NoError(t, err)
	b, err := n.Spawn(collect(1))
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

func describe(m any) string {
	switch m := m.(type) {
	case []byte:
		return string(m)
	case string:
		return m
	}
	return ""
}
