package nodal

import (
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
