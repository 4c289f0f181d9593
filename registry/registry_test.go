package registry

import (
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/crdt"
	"github.com/nodal-go/nodal/internal/replica"
	"github.com/nodal-go/nodal/p2p/p2ptest"
)

func seesOn(r *Registry, name string, pid nodal.Pid) bool {
	got, ok := r.Whereis(name)
	return ok && got == pid
}

func absentOn(r *Registry, name string) bool {
	_, ok := r.Whereis(name)
	return !ok
}

// A registration is visible on every node at once; Send reaches the
// holder; Unregister and the holder's exit remove it everywhere; monitors
// see each change with its reason.
func TestRegisterSpreadsAndGoes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 1, Config{}, "a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3")
		defer c.stop()
		a, b := c.regs[0], c.regs[1]
		snap, w, err := b.Monitor(ctx10(t))
		require.NoError(t, err)
		require.Empty(t, snap)
		defer w.Stop()

		got := make(chan any, 1)
		pid, err := c.nodes[0].Spawn(func(p *nodal.Process) error {
			m, err := p.Receive(p.Context())
			if err == nil {
				got <- m
			}
			<-p.Context().Done()
			return nil
		})
		require.NoError(t, err)
		require.NoError(t, a.Register(ctx10(t), "svc", pid, WithMeta("m1")))
		for _, r := range c.regs {
			p2ptest.Eventually(t, 5*time.Second, func() bool { return seesOn(r, "svc", pid) }, "visible everywhere")
		}
		g, ok, err := c.regs[2].Lookup(ctx10(t), "svc")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, "m1", g.Meta)
		require.NoError(t, c.regs[2].Send("svc", "hi"))
		require.Equal(t, "hi", <-got)
		require.Equal(t, map[string]nodal.Pid{"svc": pid}, b.Registered())

		// Re-registering the same pid updates the metadata only.
		require.NoError(t, a.Register(ctx10(t), "svc", pid, WithMeta("m2")))
		p2ptest.Eventually(t, 5*time.Second, func() bool { g, _, _ := b.Lookup(ctx10(t), "svc"); return g.Meta == "m2" }, "meta updated")

		require.NoError(t, a.Unregister(ctx10(t), "svc"))
		for _, r := range c.regs {
			p2ptest.Eventually(t, 5*time.Second, func() bool { return absentOn(r, "svc") }, "gone everywhere")
		}
		require.ErrorIs(t, c.regs[2].Send("svc", "x"), ErrNotRegistered)

		pid2 := idle(t, c.nodes[0])
		require.NoError(t, a.Register(ctx10(t), "svc", pid2))
		p2ptest.Eventually(t, 5*time.Second, func() bool { return seesOn(b, "svc", pid2) }, "second holder")
		c.nodes[0].Exit(pid2, nodal.ReasonKill)
		for _, r := range c.regs {
			p2ptest.Eventually(t, 5*time.Second, func() bool { return absentOn(r, "svc") }, "gone after exit")
		}

		want := []Event{
			{Registered, "svc", pid, ReasonRegistered},
			{Unregistered, "svc", pid, ReasonUnregistered},
			{Registered, "svc", pid2, ReasonRegistered},
			{Unregistered, "svc", pid2, ReasonUnregistered},
		}
		for _, e := range want {
			require.Equal(t, e, <-w.C)
		}
	})
}

// The owner's own monitor sees its process's exit as such.
func TestExitReasonOnOwner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 2, Config{}, "a@10.0.0.1")
		defer c.stop()
		a := c.regs[0]
		_, w, err := a.Monitor(ctx10(t))
		require.NoError(t, err)
		pid := idle(t, c.nodes[0])
		require.NoError(t, a.Register(ctx10(t), "x", pid))
		c.nodes[0].Exit(pid, nodal.ReasonKill)
		require.Equal(t, Event{Registered, "x", pid, ReasonRegistered}, <-w.C)
		require.Equal(t, Event{Unregistered, "x", pid, ReasonProcessExit}, <-w.C)
		// A pid that was dead when registered goes at once.
		require.NoError(t, a.Register(ctx10(t), "y", pid))
		require.Equal(t, Event{Registered, "y", pid, ReasonRegistered}, <-w.C)
		require.Equal(t, Event{Unregistered, "y", pid, ReasonProcessExit}, <-w.C)
	})
}

// Every refusal is typed and names what is in the way.
func TestRegisterErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 3, Config{}, "a@10.0.0.1", "b@10.0.0.2")
		defer c.stop()
		a, b := c.regs[0], c.regs[1]
		p1, p2 := idle(t, c.nodes[0]), idle(t, c.nodes[0])
		require.NoError(t, a.Register(ctx10(t), "x", p1))

		err := a.Register(ctx10(t), "x", p2)
		var taken *AlreadyRegisteredError
		require.ErrorAs(t, err, &taken)
		require.ErrorIs(t, err, ErrAlreadyRegistered)
		require.Equal(t, p1, taken.Holder)

		err = a.Register(ctx10(t), "y", p1)
		var has *PidHasNameError
		require.ErrorAs(t, err, &has)
		require.Equal(t, "x", has.Name)

		require.ErrorIs(t, a.Register(ctx10(t), strings.Repeat("n", MaxNameLen+1), p2), ErrNameTooLong)
		require.ErrorIs(t, a.Register(ctx10(t), "", p2), ErrNameTooLong)
		require.ErrorIs(t, a.Register(ctx10(t), "z", p2, WithMeta(strings.Repeat("m", MaxMetaLen+1))), ErrMetaTooLong)
		require.ErrorIs(t, a.Register(ctx10(t), "z", p2, WithResolver("nope")), ErrUnknownResolver)
		require.ErrorIs(t, b.Register(ctx10(t), "z", p2), ErrNotLocal)

		p2ptest.Eventually(t, 5*time.Second, func() bool { return seesOn(b, "x", p1) }, "visible on b")
		err = b.Register(ctx10(t), "x", idle(t, c.nodes[1]))
		require.ErrorAs(t, err, &taken, "taken as seen from b too")
		var notOwner *NotOwnerError
		require.ErrorAs(t, b.Unregister(ctx10(t), "x"), &notOwner)
		require.Equal(t, p1, notOwner.Holder)
		require.ErrorIs(t, a.Unregister(ctx10(t), "nothing"), ErrNotRegistered)

		// Ensure: nil when held, registers when free.
		require.NoError(t, a.Ensure(ctx10(t), "x", p1))
		require.NoError(t, a.Ensure(ctx10(t), "w", p2))
		require.True(t, seesOn(a, "w", p2))
		require.ErrorIs(t, a.Ensure(ctx10(t), "w", idle(t, c.nodes[0])), ErrAlreadyRegistered)

		require.NoError(t, a.Stop(ctx10(t)))
		require.ErrorIs(t, a.Register(ctx10(t), "q", p2), ErrStopped)
		require.True(t, errors.Is(a.Sync(ctx10(t)), ErrStopped))
	})
}

// Scopes are independent registries.
func TestScopes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 4, Config{}, "a@10.0.0.1", "b@10.0.0.2")
		defer c.stop()
		other := make([]*Registry, 2)
		for i, n := range c.nodes {
			r, err := New(n, Config{Scope: "other"})
			require.NoError(t, err)
			other[i] = r
		}
		p1, p2 := idle(t, c.nodes[0]), idle(t, c.nodes[0])
		require.NoError(t, c.regs[0].Register(ctx10(t), "x", p1))
		require.NoError(t, other[0].Register(ctx10(t), "x", p2), "the same name in another scope")
		p2ptest.Eventually(t, 5*time.Second, func() bool { return seesOn(c.regs[1], "x", p1) && seesOn(other[1], "x", p2) }, "each scope its own holder")
		_, err := New(c.nodes[0], Config{Scope: "other"})
		require.Error(t, err, "one registry per scope per node")
		_, err = New(c.nodes[0], Config{Scope: "bad scope"})
		require.ErrorIs(t, err, nodal.ErrBadOption)
	})
}

// A delta carrying a claim whose pid is not of the node (and incarnation)
// that wrote it is bad input: dropped whole and counted, nothing of it
// shows; the sender's own claims still spread.
func TestForeignClaimRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 12, Config{}, "a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3")
		defer c.stop()
		a, b := c.regs[0], c.regs[1]
		onC := idle(t, c.nodes[2])
		onB := idle(t, c.nodes[1])
		stale := onB
		stale.Incarnation++
		for i, forged := range []nodal.Pid{onC, stale} {
			d := crdt.NewORMap(b.rep.Self(), nameCodec{}, regCodec{})
			d.Add("mine", toClaim(Registration{Pid: onB}))
			d.Add("stolen", toClaim(Registration{Pid: forged}))
			enc, err := d.MarshalBinary()
			require.NoError(t, err)
			// 1: the replica's delta frame.
			require.NoError(t, c.nodes[1].SendService(ctx10(t), c.nodes[0].Name(), ServicePrefix+DefaultScope, append([]byte{1}, enc...)))
			p2ptest.Eventually(t, 5*time.Second, func() bool { return a.Stats().Refused == uint64(i+1) }, "refused")
			require.True(t, absentOn(a, "stolen"))
			require.True(t, absentOn(a, "mine"), "the whole delta is dropped")
		}
		require.NoError(t, b.Register(ctx10(t), "real", onB))
		p2ptest.Eventually(t, 5*time.Second, func() bool { return seesOn(a, "real", onB) }, "b's own claim spreads")
		require.Zero(t, a.Stats().BadFrames)
	})
}

// Two registrations of one name in one engine turn (before the read index
// shows the first): the second is refused, not added as a second claim of
// this node.
func TestRegisterTwiceInOneTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 5, Config{}, "a@10.0.0.1")
		defer c.stop()
		a := c.regs[0]
		p1, p2 := idle(t, c.nodes[0]), idle(t, c.nodes[0])
		var first, second error
		require.NoError(t, a.rep.Update(ctx10(t), func(s *replica.State[string, heldClaim]) error {
			first = a.register(s, "x", Registration{Pid: p1, Resolver: LowerNodeExit})
			second = a.register(s, "x", Registration{Pid: p2, Resolver: LowerNodeExit})
			return nil
		}))
		require.NoError(t, first)
		var taken *AlreadyRegisteredError
		require.ErrorAs(t, second, &taken)
		require.Equal(t, p1, taken.Holder)
		require.True(t, seesOn(a, "x", p1))
		require.NoError(t, a.rep.Update(ctx10(t), func(s *replica.State[string, heldClaim]) error {
			require.Len(t, s.Siblings(nil, "x"), 1, "one claim of x")
			return nil
		}))
	})
}
