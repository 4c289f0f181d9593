package supervisor

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/nodal-go/nodal"
)

// modelChild is the reference model's view of one static child.
type modelChild struct {
	id      string
	restart RestartType
	pid     nodal.Pid // last pid seen; zero when stopped
	fresh   bool      // the next observation must show a new pid
}

// TestSupervisorModel drives a static supervisor (random strategy, random
// restart types) through random crashes, normal exits and management calls,
// and checks after every step that its children match a model of the OTP
// rules: which children are listed, which run, and which were restarted
// (new pid) or left alone (same pid). The intensity is never reached here;
// the tests above cover it.
func TestSupervisorModel(t *testing.T) {
	defer leaktest.AfterTest(t)()
	rapid.Check(t, func(rt *rapid.T) {
		ctx, cancel := context.WithTimeout(context.Background(), supWait)
		defer cancel()
		n, err := nodal.Start(ctx, nodal.Config{})
		require.NoError(rt, err)
		defer func() { require.NoError(rt, n.Stop(ctx)) }()

		strategy := rapid.SampledFrom([]Strategy{OneForOne, OneForAll, RestForOne}).Draw(rt, "strategy")
		k := rapid.IntRange(1, 5).Draw(rt, "children")
		rec := &recorder{}
		var model []*modelChild
		var specs []Child
		for i := range k {
			c := &modelChild{
				id:      fmt.Sprintf("c%d", i),
				restart: rapid.SampledFrom([]RestartType{Permanent, Transient, Temporary}).Draw(rt, "restart"),
				fresh:   true,
			}
			model = append(model, c)
			specs = append(specs, Child{ID: c.id, Start: testWorker(rec, c.id, workerOpts{}), Restart: c.restart, Shutdown: time.Minute})
		}
		sup, err := startSup(n, Spec{Strategy: strategy, Intensity: 1 << 20, Period: time.Hour, Children: specs})
		require.NoError(rt, err)

		check := func(step string) {
			got := children(rt, n, sup)
			ids := make([]string, len(got))
			for i, g := range got {
				ids[i] = g.ID
			}
			want := make([]string, len(model))
			for i, m := range model {
				want[i] = m.id
			}
			require.Equal(rt, want, ids, "%s: listed children", step)
			for i, m := range model {
				g := got[i].Pid
				switch {
				case m.fresh:
					require.False(rt, g.IsZero(), "%s: %s should run", step, m.id)
					require.NotEqual(rt, m.pid, g, "%s: %s should be restarted", step, m.id)
				default:
					require.Equal(rt, m.pid, g, "%s: %s should be unchanged", step, m.id)
				}
				m.pid, m.fresh = g, false
			}
		}
		check("start")

		remove := func(c *modelChild) {
			model = slices.DeleteFunc(model, func(x *modelChild) bool { return x == c })
		}
		// restart applies the strategy to a child that exited and must be
		// restarted (OTP restart/2).
		restart := func(c *modelChild) {
			group := []*modelChild{c}
			switch strategy {
			case OneForAll:
				group = slices.Clone(model)
			case RestForOne:
				group = slices.Clone(model[slices.Index(model, c):])
			}
			for _, g := range group {
				if g != c && g.restart == Temporary {
					remove(g)
					continue
				}
				g.fresh = true
			}
		}
		// exitAndWait makes child c exit with msg and waits until its nodal.Down,
		// after which the supervisor has handled its exit signal.
		exitAndWait := func(c *modelChild, msg string) {
			down := watch(rt, n, c.pid)
			n.Send(c.pid, msg)
			awaitDown(rt, down)
		}

		steps := rapid.IntRange(1, 12).Draw(rt, "steps")
		for s := range steps {
			if len(model) == 0 {
				break
			}
			c := model[rapid.IntRange(0, len(model)-1).Draw(rt, "child")]
			op := rapid.SampledFrom([]string{"crash", "normal", "terminate", "restart", "delete"}).Draw(rt, "op")
			step := fmt.Sprintf("step %d: %s %s (%v, %v)", s, op, c.id, c.restart, strategy)
			switch op {
			case "crash", "normal":
				if c.pid.IsZero() {
					continue
				}
				exitAndWait(c, op)
				c.pid = nodal.Pid{}
				switch {
				case c.restart == Temporary:
					remove(c)
				case c.restart == Transient && op == "normal":
					// stopped, spec kept
				default:
					restart(c)
				}
			case "terminate":
				require.NoError(rt, TerminateChild(ctx, n, sup, c.id), step)
				c.pid = nodal.Pid{}
				if c.restart == Temporary {
					remove(c)
				}
			case "restart":
				pid, err := RestartChild(ctx, n, sup, c.id)
				if !c.pid.IsZero() {
					require.ErrorIs(rt, err, ErrChildRunning, step)
					continue
				}
				require.NoError(rt, err, step)
				require.False(rt, pid.IsZero(), step)
				c.fresh = true
			case "delete":
				err := DeleteChild(ctx, n, sup, c.id)
				if !c.pid.IsZero() {
					require.ErrorIs(rt, err, ErrChildRunning, step)
					continue
				}
				require.NoError(rt, err, step)
				remove(c)
			}
			check(step)
		}
	})
}
