package groups

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
)

// Joins spread to every node; pg's multiplicity (join twice, leave twice);
// leave of a non-member fails with ErrNotJoined; pids of other nodes are
// refused with ErrNotLocal.
func TestJoinLeaveAcrossNodes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 1, Config{}, "a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3")
		defer c.stop()
		ctx := context.Background()
		a, b := c.scopes[0], c.scopes[1]
		pa, pb := idle(t, c.nodes[0]), idle(t, c.nodes[1])

		require.NoError(t, a.Join(ctx, "g", pa, pa))
		require.Equal(t, pids(pa, pa), a.Members("g"), "visible on the joining node when Join returns")
		require.NoError(t, b.Join(ctx, "g", pb))
		want := sortedPids(pa, pa, pb)
		for i, s := range c.scopes {
			eventually(t, "members everywhere", func() bool { return equalPids(s.Members("g"), want) })
			require.Equal(t, []string{"g"}, s.WhichGroups(), "node %d", i)
		}
		require.Equal(t, pids(pa, pa), a.LocalMembers("g"))
		require.Equal(t, pids(pb), b.LocalMembers("g"))
		require.Empty(t, c.scopes[2].LocalMembers("g"))

		var nl *NotLocalError
		err := a.Join(ctx, "g", pb)
		require.ErrorAs(t, err, &nl)
		require.ErrorIs(t, err, ErrNotLocal)
		require.ErrorIs(t, a.Leave(ctx, "g", pb), ErrNotLocal)

		require.NoError(t, a.Leave(ctx, "g", pa))
		require.Equal(t, sortedPids(pa, pb), a.Members("g"))
		require.NoError(t, a.Leave(ctx, "g", pa))
		err = a.Leave(ctx, "g", pa)
		var nj *NotJoinedError
		require.ErrorAs(t, err, &nj)
		require.ErrorIs(t, err, ErrNotJoined)
		require.Equal(t, "g", nj.Group)
		for _, s := range c.scopes {
			eventually(t, "leaves everywhere", func() bool { return equalPids(s.Members("g"), pids(pb)) })
		}
		require.NoError(t, b.Leave(ctx, "g", pb))
		for _, s := range c.scopes {
			eventually(t, "empty group is gone", func() bool { return len(s.WhichGroups()) == 0 && s.Members("g") == nil })
		}
		require.ErrorIs(t, a.Join(ctx, "", pa), ErrBadGroup)
		require.ErrorIs(t, a.JoinMeta(ctx, "g", make([]byte, MaxMeta+1), pa), ErrMetaTooLarge)
		require.True(t, errors.Is(a.Leave(ctx, string(make([]byte, MaxGroupName+1)), pa), ErrBadGroup))
	})
}

// A member that exits leaves every group it is in, on every node.
func TestProcessExitLeaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 2, Config{}, "a@10.0.0.1", "b@10.0.0.2")
		defer c.stop()
		ctx := context.Background()
		a, b := c.scopes[0], c.scopes[1]
		p, q := idle(t, c.nodes[0]), idle(t, c.nodes[0])
		require.NoError(t, a.Join(ctx, "x", p, p, q))
		require.NoError(t, a.Join(ctx, "y", p))
		eventually(t, "joined on b", func() bool { return b.Count("x") == 3 && b.Count("y") == 1 })
		_, mon, err := b.MonitorScope()
		require.NoError(t, err)
		defer mon.Stop()

		c.nodes[0].Exit(p, errors.New("crash"))
		for _, s := range c.scopes {
			eventually(t, "exited member gone", func() bool {
				return equalPids(s.Members("x"), pids(q)) && s.Members("y") == nil
			})
		}
		require.Equal(t, uint64(1), a.Stats().Exits)
		// b saw p leave both groups, told as remote leaves.
		got := drain(mon)
		require.Equal(t, []Event{
			{Kind: Left, Group: "x", Pids: pids(p, p), Cause: CauseRemote},
			{Kind: Left, Group: "y", Pids: pids(p), Cause: CauseRemote},
		}, got)
		// A pid that is already dead when it joins leaves at once.
		dead := idle(t, c.nodes[0])
		c.nodes[0].Exit(dead, nodal.ReasonKill)
		require.NoError(t, a.Join(ctx, "z", dead))
		eventually(t, "dead joiner removed", func() bool { return a.Members("z") == nil })
	})
}

// Metadata travels with a membership; each membership keeps its own.
func TestJoinMetaTravels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, 10, Config{}, "a@10.0.0.1", "b@10.0.0.2")
		defer c.stop()
		ctx := context.Background()
		p := idle(t, c.nodes[0])
		require.NoError(t, c.scopes[0].JoinMeta(ctx, "g", []byte("role=primary"), p))
		require.NoError(t, c.scopes[0].Join(ctx, "g", p))
		b := c.scopes[1]
		eventually(t, "both memberships on b", func() bool { return b.Count("g") == 2 })
		ms := b.Memberships("g")
		require.Len(t, ms, 2)
		metas := []string{string(ms[0].Meta), string(ms[1].Meta)}
		require.ElementsMatch(t, []string{"role=primary", ""}, metas)
		ms[0].Meta = append(ms[0].Meta[:0], 'x') // the caller's copy
		require.ElementsMatch(t, metas, []string{string(b.Memberships("g")[0].Meta), string(b.Memberships("g")[1].Meta)})
	})
}
