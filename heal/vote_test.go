package heal

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// A vote: every reachable node's handler answers; majority, no majority,
// and a timeout when a voter is late; a minority side cannot win one.
func TestVote(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New(p2ptest.WithSeed(8))
		defer net.Close()
		names := []string{"a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3"}
		ms := startCluster(t, net, Config{Expected: names, ReconnectInterval: time.Second, VoteTimeout: 3 * time.Second}, nil, names...)
		defer stopCluster(ms)
		a := ms[0]
		// Each node votes yes for the values it accepts.
		accept := func(late bool, vals ...string) VoteHandler {
			return func(ctx context.Context, p Proposal) bool {
				if late && string(p.Value) == "late" {
					<-ctx.Done() // answers only after the deadline
					return true
				}
				for _, v := range vals {
					if string(p.Value) == v && p.Topic == "leader" && p.From == a.name() {
						return true
					}
				}
				return false
			}
		}
		ms[0].h.HandleVotes(accept(true, "x", "y"))
		ms[1].h.HandleVotes(accept(false, "x"))
		ms[2].h.HandleVotes(accept(false, "x", "y"))

		ctx := context.Background()
		r, err := a.h.Propose(ctx, "leader", []byte("x"))
		require.NoError(t, err)
		require.Equal(t, Majority, r.Outcome)
		require.Equal(t, 3, r.Voters)
		require.GreaterOrEqual(t, len(r.Yes), 2)

		r, err = a.h.Propose(ctx, "leader", []byte("y")) // a and c: 2 of 3
		require.NoError(t, err)
		require.Equal(t, Majority, r.Outcome)

		r, err = a.h.Propose(ctx, "leader", []byte("z")) // only no
		require.NoError(t, err)
		require.Equal(t, NoMajority, r.Outcome)
		require.Empty(t, r.Yes)
		require.Len(t, r.No, 2, "decided once a majority is out of reach: %+v", r)

		// b and c say no at once, a is late: no majority either way, known
		// without waiting for a.
		start := time.Now()
		r, err = ms[1].h.Propose(ctx, "leader", []byte("late"))
		require.NoError(t, err)
		require.Equal(t, NoMajority, r.Outcome)
		require.Less(t, time.Since(start), time.Second)
		require.Equal(t, []string{a.name()}, r.Silent)

		// Here only a's own (late) vote could decide: the deadline passes.
		start = time.Now()
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ms[1].h.HandleVotes(accept(false))
		ms[2].h.HandleVotes(func(ctx context.Context, p Proposal) bool { return true })
		r, err = a.h.Propose(dctx, "leader", []byte("late"))
		cancel()
		// a (late) and c (yes) and b (no): c's yes alone is not a majority,
		// a's late yes would be; the vote times out at the deadline.
		require.ErrorIs(t, err, ErrTimeout)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, Timeout, r.Outcome)
		require.Contains(t, r.Silent, a.name())
		require.Equal(t, 2*time.Second, time.Since(start).Round(time.Second))

		// Without a deadline in ctx, Config.VoteTimeout bounds it.
		start = time.Now()
		_, err = a.h.Propose(ctx, "leader", []byte("late"))
		require.ErrorIs(t, err, ErrTimeout)
		require.Equal(t, 3*time.Second, time.Since(start).Round(time.Second))

		// On a minority side a vote fails at once: 1 of 3 can answer.
		net.Isolate(a.name())
		p2ptest.Eventually(t, 60*time.Second, func() bool { return len(a.h.View().Reachable) == 1 }, "a alone")
		ms[0].h.HandleVotes(accept(false, "x"))
		r, err = a.h.Propose(ctx, "leader", []byte("x"))
		require.NoError(t, err)
		require.Equal(t, NoMajority, r.Outcome)
		require.Subset(t, r.Silent, names[1:])

		_, err = a.h.Propose(ctx, string(make([]byte, maxTopic+1)), nil)
		require.ErrorIs(t, err, ErrBadOption)
	})
}

// A node whose horizon differs is refused: the older node flags it, the
// newer one (which joined the cluster) pauses, and neither counts the
// other.
func TestSettingsMismatchRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New(p2ptest.WithSeed(9))
		defer net.Close()
		a := startMember(t, net, "a@10.0.0.1", nil, Config{ReconnectInterval: time.Second})
		time.Sleep(time.Second)
		b := startMember(t, net, "b@10.0.0.2", []string{a.n.GossipAddr()}, Config{ReconnectInterval: time.Second, ReconnectHorizon: time.Hour})
		ms := []*member{a, b}
		defer stopCluster(ms)
		p2ptest.Eventually(t, 30*time.Second, func() bool {
			return len(a.h.View().Refused) == 1 && len(b.h.View().Refused) == 1
		}, "refused both ways")
		require.False(t, a.h.Paused(), "the older node goes on")
		require.True(t, b.h.Paused(), "the newer node is refused and pauses")
		require.Equal(t, []string{a.name()}, a.h.View().Expected, "b is not expected on a")
		refusedSelf := func(ev Event) bool { r, ok := ev.(Refused); return ok && r.Self }
		p2ptest.Eventually(t, 10*time.Second, func() bool { return b.count(refusedSelf) == 1 }, "b told it is refused: %v", b.all())
		require.Zero(t, a.count(refusedSelf))
	})
}

// Stop ends the service: subscriptions close, votes fail with ErrStopped,
// a second Stop is harmless, a slow subscriber's events were dropped and
// counted, never waited for.
func TestStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New(p2ptest.WithSeed(10))
		defer net.Close()
		names := []string{"a@10.0.0.1", "b@10.0.0.2"}
		ms := startCluster(t, net, Config{Expected: names, ReconnectInterval: time.Second}, nil, names...)
		defer stopCluster(ms)
		a := ms[0]
		slow := a.h.Subscribe(1) // never read
		net.Isolate(names[1])
		p2ptest.Eventually(t, 60*time.Second, func() bool { return a.h.View().Partitioned }, "b lost")
		net.Heal()
		waitWhole(t, ms, 60*time.Second)
		p2ptest.Eventually(t, 10*time.Second, func() bool { return len(a.healed()) > 0 }, "healed")
		require.Positive(t, slow.Dropped(), "PartitionDetected filled the buffer, Healed was dropped")

		require.NoError(t, a.h.Stop(context.Background()))
		require.NoError(t, a.h.Stop(context.Background()))
		<-a.done // the collector saw its subscription close
		_, err := a.h.Propose(context.Background(), "t", nil)
		require.ErrorIs(t, err, ErrStopped)
		_, open := <-a.h.Subscribe(0).Events()
		require.False(t, open, "a subscription after Stop is closed")
		require.NotContains(t, a.n.Services(), ServiceName)
	})
}
