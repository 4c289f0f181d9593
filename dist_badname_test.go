package nodal

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// A node name that cannot exist is an error at the call (the arguments
// swapped to Erlang's {Name, Node} order give node "orders"); only a
// well-formed name of an unreachable node drops silently, as in Erlang.
func TestDistBadNodeNameFailsLoudly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New(p2ptest.WithSeed(1))
		defer net.Close()
		nodes := startSimCluster(t, net, "a@10.0.0.1", "b@10.0.0.2")
		defer stopSimNodes(nodes)
		a, b := nodes[0], nodes[1]
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()

		bad := "orders" // the process name, passed where the node goes
		require.ErrorIs(t, a.SendNode(bad, b.Name(), "hi"), ErrBadNodeName)
		require.ErrorIs(t, a.Send(Pid{Node: bad, ID: 1, Incarnation: 1}, "hi"), ErrBadNodeName)
		require.ErrorIs(t, a.Connect(ctx, bad), ErrBadNodeName)
		require.ErrorIs(t, a.Disconnect(bad), ErrBadNodeName)
		_, err := a.Ping(ctx, bad)
		require.ErrorIs(t, err, ErrBadNodeName)
		_, err = a.NodeInfo(bad)
		require.ErrorIs(t, err, ErrBadNodeName)
		_, err = a.SpawnOn(ctx, bad, "idle", nil)
		require.ErrorIs(t, err, ErrBadNodeName)
		_, err = a.WhereisOn(ctx, bad, "x")
		require.ErrorIs(t, err, ErrBadNodeName)
		_, err = a.CallName(ctx, bad, "x", "req")
		require.ErrorIs(t, err, ErrBadNodeName)
		require.ErrorIs(t, a.SendNode(b.Name(), "", "hi"), ErrBadName)

		distInProcess(t, a, func(t *procT, p *Process) error {
			require.ErrorIs(t, p.MonitorNode(bad), ErrBadNodeName)
			require.ErrorIs(t, p.SendNode(bad, "x", "hi"), ErrBadNodeName)
			// A link to a pid of no node still fires, as for any unreachable pid.
			p.TrapExit(true)
			p.Link(Pid{Node: bad, ID: 1, Incarnation: 1})
			m, err := p.Receive(ctx)
			require.NoError(t, err)
			require.ErrorIs(t, m.(Exit).Reason, ReasonNoConnection)
			return nil
		})

		// Well-formed but unreachable: dropped silently, as in Erlang.
		require.NoError(t, a.SendNode("x@10.9.9.9", "name", "hi"))
		require.NoError(t, a.Send(Pid{Node: "x@10.9.9.9", ID: 1, Incarnation: 1}, "hi"))
	})
}
