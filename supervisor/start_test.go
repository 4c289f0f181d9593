package supervisor

import (
	"context"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// ctx bounds the start only: a start that outlives it returns an error
// that is both nodal.ErrTimeout and context.DeadlineExceeded, and the
// half-started supervisor is killed with its children.
func TestStartBoundedByCtx(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, err := nodal.Start(context.Background(), nodal.Config{})
		require.NoError(t, err)
		defer func() { require.NoError(t, n.Stop(context.Background())) }()
		started := make(chan nodal.Pid, 1)
		spec := Spec{Children: []Child{
			{ID: "fast", Start: func(p *nodal.Process) (nodal.Pid, error) {
				pid, err := p.Spawn(func(w *nodal.Process) error {
					<-w.Context().Done()
					return nil
				}, nodal.WithLink())
				started <- pid
				return pid, err
			}},
			{ID: "slow", Start: func(p *nodal.Process) (nodal.Pid, error) {
				_, err := p.Receive(p.Context()) // never answered: ends when killed
				return nodal.Pid{}, err
			}},
		}}
		before := len(n.Processes())
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err = Start(ctx, n, spec)
		require.ErrorIs(t, err, nodal.ErrTimeout)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		fast := <-started
		p2ptest.Eventually(t, 10*time.Second, func() bool {
			return len(n.Processes()) == before && !alive(n, fast)
		}, "the supervisor and its started child gone")

		// Within its ctx the same start succeeds once the slow child is fast.
		spec.Children[1].Start = spec.Children[0].Start
		ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
		defer cancel2()
		sup, err := Start(ctx2, n, Spec{Children: spec.Children[1:]})
		require.NoError(t, err)
		require.True(t, alive(n, sup))
	})
}

type job struct {
	Name string
	N    int
}

// Nodes with their own codecs (Config.Codec) need no set-up for the
// management calls, and StartDynamicChild's args travel in them: encoded
// by the caller node's codec, decoded by the supervisor node's.
func TestStartDynamicChildArgsThroughNodeCodecs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New(p2ptest.WithSeed(21))
		defer net.Close()
		var nodes []*nodal.Node
		for i, name := range []string{"a@10.0.0.1", "b@10.0.0.2"} {
			cfg := nodal.DefaultLocalConfig(name, testCookie)
			cfg.P2P.Network = net
			cfg.Stdout = io.Discard
			cfg.Codec = nodal.NewCodec()
			require.NoError(t, cfg.Codec.Register("test.job", job{}))
			if i > 0 {
				cfg.Seeds = []string{nodes[0].GossipAddr()}
			}
			n, err := nodal.Start(context.Background(), cfg)
			require.NoError(t, err)
			nodes = append(nodes, n)
		}
		defer stopSimNodes(nodes)
		a, b := nodes[0], nodes[1]
		p2ptest.Eventually(t, 60*time.Second, func() bool { return len(a.Nodes()) == 1 && len(b.Nodes()) == 1 }, "mesh")

		got := make(chan any, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sup, err := Start(ctx, b, Spec{Strategy: SimpleOneForOne, Template: &ChildTemplate{
			Start: func(p *nodal.Process, args any) (nodal.Pid, error) {
				got <- args
				return distSupWorker(p)
			},
		}})
		require.NoError(t, err)
		child, err := StartDynamicChild(ctx, a, sup, job{Name: "j", N: 7})
		require.NoError(t, err)
		require.Equal(t, b.Name(), child.Node)
		require.Equal(t, job{Name: "j", N: 7}, <-got)

		// A value a's codec cannot encode fails at the caller.
		_, err = StartDynamicChild(ctx, a, sup, struct{ X int }{1})
		require.ErrorIs(t, err, nodal.ErrUnregisteredType)
		// On the supervisor's node the args are not encoded at all.
		_, err = StartDynamicChild(ctx, b, sup, func() {})
		require.NoError(t, err)
		require.IsType(t, func() {}, <-got)

		count, err := CountChildren(ctx, a, sup)
		require.NoError(t, err)
		require.Equal(t, 2, count.Active)
	})
}

// A management call to a process that is not a supervisor fails with
// ErrNotSupervisor, and a supervisor answers a call it does not know the
// same way, staying up.
func TestNotSupervisor(t *testing.T) {
	n := startSupNode(t)
	ctx := callCtx(t)
	pong, err := n.Spawn(func(p *nodal.Process) error {
		for {
			m, err := p.Receive(p.Context())
			if err != nil {
				return err
			}
			if c, ok := m.(nodal.CallRequest); ok {
				p.Reply(c.From, "pong")
			}
		}
	})
	require.NoError(t, err)
	_, err = WhichChildren(ctx, n, pong)
	require.ErrorIs(t, err, ErrNotSupervisor)

	sup, err := startSup(n, Spec{})
	require.NoError(t, err)
	r, err := n.Call(ctx, sup, "hello")
	require.NoError(t, err)
	require.ErrorIs(t, r.(reply).err, ErrNotSupervisor)
	require.Contains(t, r.(reply).err.Error(), "string")
	count, err := CountChildren(ctx, n, sup)
	require.NoError(t, err)
	require.Equal(t, ChildCount{}, count)
}
