package p2ptest_test

import (
	"fmt"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// converge is the fake-time bound for memberlist to notice a change with
// DefaultLocalConfig (probe every second, suspicion of a few seconds).
const converge = 60 * time.Second

// cluster is a set of raw memberlist instances on one p2ptest network.
type cluster struct {
	t     *testing.T
	net   *p2ptest.Network
	names []string
	ml    map[string]*memberlist.Memberlist
}

func newCluster(t *testing.T, n int) *cluster {
	c := &cluster{t: t, net: p2ptest.New(), ml: map[string]*memberlist.Memberlist{}}
	for i := range n {
		name := fmt.Sprintf("n%d@10.0.0.%d", i+1, i+1)
		c.names = append(c.names, name)
		c.start(name)
	}
	return c
}

func (c *cluster) start(name string) {
	c.t.Helper()
	tr, err := c.net.NewTransport(name, "")
	require.NoError(c.t, err)
	cfg := memberlist.DefaultLocalConfig()
	cfg.Name = name
	cfg.Transport = tr
	cfg.LogOutput = io.Discard
	m, err := memberlist.Create(cfg)
	require.NoError(c.t, err)
	c.ml[name] = m
}

func (c *cluster) addr(name string) string {
	c.t.Helper()
	a, ok := c.net.GossipAddr(name)
	require.True(c.t, ok, name)
	return a
}

// join makes every node join the first one.
func (c *cluster) join() {
	c.t.Helper()
	seed := c.addr(c.names[0])
	for _, name := range c.names[1:] {
		_, err := c.ml[name].Join([]string{seed})
		require.NoError(c.t, err, name)
	}
}

// sees waits until each named node counts want live members.
func (c *cluster) sees(want int, names ...string) {
	c.t.Helper()
	for _, name := range names {
		m := c.ml[name]
		p2ptest.Eventually(c.t, converge, func() bool { return m.NumMembers() == want },
			"%s sees %d members (has %d)", name, want, m.NumMembers())
	}
}

// stop shuts every member down without leaving and closes the network,
// then lets memberlist's probe goroutines, which its Shutdown does not
// wait for, run out: the bubble's clock stops when the test function
// returns, so they must finish before it does.
func (c *cluster) stop() {
	for _, name := range c.names {
		if m, ok := c.ml[name]; ok {
			require.NoError(c.t, m.Shutdown())
		}
	}
	require.NoError(c.t, c.net.Close())
	time.Sleep(10 * time.Second)
}

func TestMemberlistSplitAndHeal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 4)
		defer c.stop()
		c.join()
		c.sees(4, c.names...)

		left, right := c.names[:2], c.names[2:]
		c.net.Split(left, right)
		c.sees(2, c.names...)
		require.NotZero(t, c.net.PairStats(left[0], right[0]).DroppedCut)

		// Once the split is lifted, one re-Join across it merges the halves.
		c.net.Heal()
		_, err := c.ml[right[0]].Join([]string{c.addr(left[0])})
		require.NoError(t, err)
		c.sees(4, c.names...)
	})
}

func TestMemberlistIsolate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 4)
		defer c.stop()
		c.join()
		c.sees(4, c.names...)

		lone := c.names[3]
		c.net.Isolate(lone)
		c.sees(3, c.names[:3]...)
		c.sees(1, lone)

		c.net.Heal()
		_, err := c.ml[lone].Join([]string{c.addr(c.names[0])})
		require.NoError(t, err)
		c.sees(4, c.names...)
	})
}

func TestMemberlistDropAllIsACut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 4)
		defer c.stop()
		c.join()
		c.sees(4, c.names...)

		lone := c.names[3]
		for _, other := range c.names[:3] {
			c.net.Drop(lone, other, 1)
			c.net.Drop(other, lone, 1)
		}
		c.sees(3, c.names[:3]...)
		c.sees(1, lone)
		s := c.net.Stats()
		require.NotZero(t, s.DroppedRate)
		require.Zero(t, s.DroppedCut, "no cut was set; the drops did it")
		_, err := c.ml[lone].Join([]string{c.addr(c.names[0])})
		require.ErrorContains(t, err, "unreachable")
	})
}

func TestMemberlistJoinFailsAcrossCut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 2)
		defer c.stop()
		c.net.Partition(c.names[0], c.names[1])
		_, err := c.ml[c.names[1]].Join([]string{c.addr(c.names[0])})
		require.Error(t, err)
		c.net.Heal()
		c.join()
		c.sees(2, c.names...)
	})
}

// A peer that stops without leaving must not block anyone: its packets are
// dropped, dials to it refused, and the bubble ends with no goroutine left
// (synctest.Test panics "blocked goroutines remain" otherwise, as it does
// with memberlist's own MockTransport).
func TestMemberlistPeerShutdownBlocksNobody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 4)
		defer c.stop()
		c.join()
		c.sees(4, c.names...)

		gone := c.names[3]
		require.NoError(t, c.ml[gone].Shutdown())
		delete(c.ml, gone)
		c.sees(3, c.names[:3]...)
		require.NotZero(t, c.net.Stats().DroppedDown)

		// A restart under the same name on a new port joins again.
		c.start(gone)
		_, err := c.ml[gone].Join([]string{c.addr(c.names[0])})
		require.NoError(t, err)
		c.sees(4, c.names...)
	})
}

func TestMemberlistGracefulLeave(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3)
		defer c.stop()
		c.join()
		c.sees(3, c.names...)
		require.NoError(t, c.ml[c.names[2]].Leave(time.Second))
		c.sees(2, c.names[:2]...)
	})
}

// Outside a bubble the transport runs on real time; after Shutdown no
// goroutine is left once memberlist's probes time out.
func TestMemberlistOutsideBubble(t *testing.T) {
	defer leaktest.AfterTest(t)()
	c := newCluster(t, 2)
	c.join()
	c.sees(2, c.names...)
	for _, name := range c.names {
		require.NoError(t, c.ml[name].Shutdown())
	}
	require.NoError(t, c.net.Close())
	require.NotZero(t, c.net.Stats().StreamsOpened)
}
