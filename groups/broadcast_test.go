package groups

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
)

type ping struct{ N int }

func init() { _ = nodal.RegisterType("groups-test.ping", ping{}) }

// Send reaches every distinct member once, on every node; Call collects
// the replies and names the members that did not answer by the deadline.
func TestSendAndCallEveryMember(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 7, Config{}, "a@10.0.0.1", "b@10.0.0.2")
		defer c.stop()
		ctx := context.Background()
		got := make(chan nodal.Pid, 16)
		echo := func(n *nodal.Node) nodal.Pid {
			pid, err := n.Spawn(func(p *nodal.Process) error {
				for {
					m, err := p.Receive(context.Background())
					if err != nil {
						return err
					}
					switch m := m.(type) {
					case ping:
						got <- p.Self()
					case nodal.CallRequest:
						p.Reply(m.From, m.Req.(ping).N+1)
					}
				}
			})
			require.NoError(t, err)
			return pid
		}
		ea, eb := echo(c.nodes[0]), echo(c.nodes[1])
		mute := idle(t, c.nodes[1])
		a, b := c.scopes[0], c.scopes[1]
		require.NoError(t, a.Join(ctx, "g", ea, ea)) // twice: still one message
		require.NoError(t, b.Join(ctx, "g", eb, mute))
		eventually(t, "members on a", func() bool { return a.Count("g") == 4 })

		n, err := a.Send("g", ping{1})
		require.NoError(t, err)
		require.Equal(t, 3, n)
		recv := map[nodal.Pid]int{}
		for range 2 {
			recv[<-got]++
		}
		require.Equal(t, map[nodal.Pid]int{ea: 1, eb: 1}, recv)
		n, err = a.Send("empty", ping{1})
		require.NoError(t, err)
		require.Zero(t, n)

		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		replies, failed, err := a.Call(cctx, "g", ping{41})
		cancel()
		require.NoError(t, err)
		require.Equal(t, []Reply{{ea, 42}, {eb, 42}}, replies)
		require.Len(t, failed, 1)
		require.Equal(t, mute, failed[0].Pid)
		require.ErrorIs(t, failed[0].Err, ErrTimeout)
		require.ErrorIs(t, failed[0].Err, context.DeadlineExceeded)

		// a member that is gone fails at once, not at the deadline
		c.nodes[1].Exit(mute, nodal.ReasonKill)
		eventually(t, "mute gone", func() bool { return a.Count("g") == 3 })
		replies, failed, err = a.Call(ctx, "g", ping{1})
		require.NoError(t, err)
		require.Len(t, replies, 2)
		require.Empty(t, failed)

		// a message the codec cannot encode for another node fails there
		type unregistered struct{}
		n, err = a.Send("g", unregistered{})
		require.Equal(t, 1, n, "the local member got it")
		require.True(t, errors.Is(err, nodal.ErrCodec), "%v", err)
	})
}
