package nodal

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
)

// erlang:exit(Pid, Reason) to a pid on another node follows the local
// rules: kill cannot be trapped and ends the target as killed; normal does
// not end a process that does not trap exits; a trapping process gets an
// Exit message from the sender; any other reason ends a non-trapping one.
func TestDistExitSignalRules(t *testing.T) {
	defer leaktest.AfterTest(t)()
	nodes := startDistCluster(t, "a@127.0.0.1", "b@127.0.0.1")
	defer stopNodes(nodes)
	a, b := nodes[0], nodes[1]
	spawnOnB := func(trap bool, out chan any) Pid {
		pid, err := b.Spawn(func(p *Process) error {
			for {
				m, err := p.Receive(p.Context())
				if err != nil {
					return err
				}
				out <- m
			}
		}, func() SpawnOption {
			if trap {
				return WithTrapExit()
			}
			return nil
		}())
		require.NoError(t, err)
		return pid
	}
	watch := func(p *Process, pid Pid) Ref { return p.Monitor(pid) }
	distInProcess(t, a, func(t *procT, p *Process) error {
		trapped := make(chan any, 4)
		plain := spawnOnB(false, make(chan any, 4))
		trapper := spawnOnB(true, trapped)
		plainRef, trapRef := watch(p, plain), watch(p, trapper)

		// normal: no effect on a non-trapping process; a trapping one is told.
		p.SendExit(plain, ReasonNormal)
		p.SendExit(trapper, ReasonNormal)
		select {
		case m := <-trapped:
			require.Equal(t, Exit{From: p.Self(), Reason: ReasonNormal}, m)
		case <-time.After(10 * time.Second):
			t.Fatal("the trapping process got no Exit message")
		}
		// A reason: a trapping process gets it as a message and lives on.
		p.SendExit(trapper, errors.New("go away"))
		select {
		case m := <-trapped:
			require.Equal(t, "go away", m.(Exit).Reason.Error())
		case <-time.After(10 * time.Second):
			t.Fatal("the trapping process got no Exit message")
		}
		require.True(t, alive(b, plain))
		require.True(t, alive(b, trapper))

		// kill is untrappable; another reason ends a non-trapping process.
		p.SendExit(trapper, ReasonKill)
		p.SendExit(plain, errors.New("bye"))
		reasons := map[Ref]string{}
		for len(reasons) < 2 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			m, err := p.Receive(ctx)
			cancel()
			require.NoError(t, err)
			d := m.(Down)
			reasons[d.Ref] = d.Reason.Error()
		}
		require.Equal(t, "killed", reasons[trapRef])
		require.Equal(t, "bye", reasons[plainRef])
		return nil
	})
}
