package nodal

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
)

// TestDistSendReusesDestUntilPeersChange checks Process.sendOut: a stream of
// sends to one remote pid reuses one remoteDest, made against the peer
// table of the time; once the connection is gone and back (a new peer
// table), the next send checks everything again and makes it anew on the
// new connection, and every message arrives, in order.
func TestDistSendReusesDestUntilPeersChange(t *testing.T) {
	defer leaktest.AfterTest(t)()
	nodes := startDistCluster(t, "a@127.0.0.1", "b@127.0.0.1")
	defer stopNodes(nodes)
	a, b := nodes[0], nodes[1]
	got := make(chan []int, 1)
	pt := newProcT()
	const total = 200
	half := make(chan struct{})
	sink, err := b.Spawn(func(p *Process) error {
		var seen []int
		for len(seen) < total {
			seen = append(seen, distRecv(pt, p).(int))
			if len(seen) == total/2 {
				close(half) // in before the connection is cut
			}
		}
		got <- seen
		return nil
	})
	require.NoError(t, err)
	d := a.remote.(*dist)
	distInProcess(t, a, func(t *procT, p *Process) error {
		for i := range total / 2 {
			require.NoError(t, p.Send(sink, i))
		}
		first := p.sendOut
		require.NotNil(t, first, "the stream's destination is kept")
		require.Equal(t, sink, first.to)
		require.Same(t, d.peers.Load(), first.peers)
		// Sent on a link: both pids leave out their node and incarnation.
		head := binary.AppendUvarint([]byte{dMsg, pidImplied}, p.pid.ID)
		head = binary.AppendUvarint(append(head, pidImplied), sink.ID)
		require.Equal(t, head, first.frame[:first.head])
		before := first.peers
		select {
		case <-half:
		case <-time.After(30 * time.Second):
			t.Fatalf("the first half did not arrive")
		}
		require.NoError(t, a.Disconnect(b.Name()))
		distWait(t, 30*time.Second, func() bool {
			_, up := d.peer(b.Name())
			return up && d.peers.Load() != before
		}, "b to be connected again")
		for i := total / 2; i < total; i++ {
			require.NoError(t, p.Send(sink, i))
		}
		require.NotSame(t, before, p.sendOut.peers, "made anew against the new peer table")
		require.Same(t, d.peers.Load(), p.sendOut.peers)
		return nil
	})
	seen := waitForWithin(t, pt, got, 60*time.Second, "the messages")
	for i, v := range seen {
		require.Equal(t, i, v)
	}
}

// TestRemotePidImplied checks a pid's encoding in a frame's head
// (appendRemotePid, decoder.remotePid): its node and incarnation are left
// out only when both are the implied ones, the node alone when only it
// is, and the receiver fills in what it knows of the other end; a frame
// sent by node name (encodeSignal) spells out the target's incarnation,
// so that a restarted node takes it for a pid of its earlier start.
func TestRemotePidImplied(t *testing.T) {
	const a, b = "a@h", "b@h"
	cases := []struct {
		p    Pid
		inc  uint64
		want []byte
	}{
		{Pid{Node: a, ID: 5, Incarnation: 7}, 7, []byte{pidImplied, 5}},
		{Pid{Node: a, ID: 300, Incarnation: 7}, 7, []byte{pidImplied, 0xac, 0x02}},
		{Pid{Node: a, ID: 5, Incarnation: 8}, 7, []byte{0, 5, 8}}, // another start
		{Pid{Node: a, ID: 5, Incarnation: 7}, 0, []byte{0, 5, 7}}, // not sure to reach it
		{Pid{Node: b, ID: 5, Incarnation: 7}, 7, append(appendString(nil, b), 5, 7)},
		{Pid{}, 7, []byte{0, 0, 0}},
	}
	for _, c := range cases {
		enc := appendRemotePid(nil, c.p, a, c.inc)
		require.Equal(t, c.want, enc, "%v", c.p)
		dec := newDecoder(enc, false)
		got := dec.remotePid(a, 7)
		require.NoError(t, dec.done())
		want := c.p
		if want.Node == "" {
			want.Node = a // a zero pid's empty name reads as the implied one, as before
		}
		require.Equal(t, want, got)
	}
	// The receiver's knowledge decides what an implied pid is.
	dec := newDecoder([]byte{pidImplied, 5}, false)
	require.Equal(t, Pid{Node: b, ID: 5, Incarnation: 9}, dec.remotePid(b, 9))
	dec = newDecoder([]byte{pidImplied, 0x80}, false)
	dec.remotePid(b, 9)
	require.Error(t, dec.done(), "a cut id")

	n := &Node{name: a, incarnation: 7}
	d := &dist{n: n, codec: DefaultCodec}
	to := Pid{Node: b, ID: 6, Incarnation: 9}
	f, err := d.encodeSignal(nil, signal{kind: sigMessage, from: Pid{Node: a, ID: 5, Incarnation: 7}, to: to, msg: 1}, b)
	require.NoError(t, err)
	require.Equal(t, []byte{dMsg, pidImplied, 5, 0, 6, 9}, f[:6])
}
