package heal

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// A lost node that memberlist sees alive again before its connection is
// back, sooner than ReconnectInterval after it was lost, still counts as
// returned once the connection is up: Healed is reported and the
// reconcilers run. (It once left the missing set as a member without
// being reachable, so the connection's return was no return, and no
// Healed came; integration's TestHarnessBandwidthOnOneLink/real waited
// for one in vain about 1 run in 10.)
func TestReturnAsMemberBeforeConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New(p2ptest.WithSeed(1))
		defer net.Close()
		ms := startCluster(t, net, Config{ReconnectInterval: 2 * time.Second}, nil, "a@10.0.0.1")
		defer stopCluster(ms)
		a := ms[0]
		s := &service{a.h}
		b := nodal.Member{Name: "b@10.0.0.2", Incarnation: 7, GossipAddr: "10.0.0.2:7946", Services: []string{ServiceName}}
		joined := nodal.MemberEvent{Kind: nodal.MemberJoined, Member: b}

		s.MemberEvent(joined)
		s.NodeUp(b.Ref())
		p2ptest.Eventually(t, 10*time.Second, func() bool { return len(a.h.View().Reachable) == 2 }, "b reachable: %s", views(ms))

		s.MemberEvent(nodal.MemberEvent{Kind: nodal.MemberFailed, Member: b, Reason: nodal.ErrNodeFailed})
		s.NodeDown(b.Ref(), nodal.ErrNodeFailed)
		p2ptest.Eventually(t, 10*time.Second, func() bool { return a.h.View().Partitioned }, "b missing: %s", views(ms))

		time.Sleep(time.Second) // less than ReconnectInterval
		s.MemberEvent(joined)   // memberlist has it back...
		synctest.Wait()         // ...and the loop looked
		s.NodeUp(b.Ref())       // then the connection
		p2ptest.Eventually(t, 10*time.Second, func() bool { return len(a.healed()) == 1 }, "Healed for b: %v", a.all())
		require.Equal(t, []string{b.Name}, a.healed()[0].Returned)
	})
}
