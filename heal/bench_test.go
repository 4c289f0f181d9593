package heal

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// BenchmarkHeal measures, in real time on the in-process network, how long
// a cluster takes from the moment the network of a half/half split is
// restored to every node reaching every other again with its reconcilers
// done, with no manual join. The split lasts beyond memberlist's dead-node
// gossip window (lowered to 1 s here), so memberlist alone would never
// heal it, and long enough (4 × ReconnectInterval after every node saw it)
// for the backoff to reach its cap, ReconnectInterval. restore/interval is
// that time over ReconnectInterval (the goal: within ReconnectInterval
// plus 500 ms).
func BenchmarkHeal(b *testing.B) {
	for _, interval := range []time.Duration{500 * time.Millisecond, DefaultReconnectInterval} {
		for _, size := range []int{3, 10} {
			b.Run(fmt.Sprintf("interval=%v/nodes=%d", interval, size), func(b *testing.B) { benchHeal(b, interval, size) })
		}
	}
}

func benchHeal(b *testing.B, interval time.Duration, size int) {
	net := p2ptest.New(p2ptest.WithSeed(11))
	defer net.Close()
	var ms []*member
	var seeds []string
	var names []string
	for i := range size {
		name := fmt.Sprintf("n%d@10.0.1.%d", i, i+1)
		names = append(names, name)
		nc := nodal.DefaultLocalConfig(name, testCookie)
		nc.P2P.Network, nc.Stdout, nc.Seeds = net, io.Discard, seeds
		nc.P2P.TuneMemberlist = func(c *memberlist.Config) { c.GossipToTheDeadTime = time.Second }
		n, err := nodal.Start(context.Background(), nc)
		if err != nil {
			b.Fatal(err)
		}
		set, _ := newSetService(n)
		h, err := New(n, Config{ReconnectInterval: interval})
		if err != nil {
			b.Fatal(err)
		}
		_ = h.AddReconciler("set", set)
		m := &member{n: n, h: h, set: set, sub: h.Subscribe(1024), done: make(chan struct{})}
		go m.collect()
		ms = append(ms, m)
		if seeds == nil {
			seeds = []string{n.GossipAddr()}
		}
	}
	defer func() {
		for _, m := range ms {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = m.n.Stop(ctx)
			cancel()
			<-m.done
		}
	}()
	waitWhole(b, ms, 2*time.Minute)
	var total time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		half := size / 2
		net.Split(names[:half], names[half:])
		p2ptest.Eventually(b, 2*time.Minute, func() bool {
			for j, m := range ms {
				v := m.h.View()
				want := half
				if j >= half {
					want = size - half
				}
				if len(v.Reachable) != want || !v.Partitioned {
					return false
				}
			}
			return true
		}, "split seen")
		for j, m := range ms {
			m.set.put(fmt.Sprintf("k%d-%d", i, j), "v")
		}
		time.Sleep(4 * interval) // beyond the dead-node gossip window
		b.StartTimer()
		start := time.Now()
		net.Heal()
		for !whole(ms) {
			time.Sleep(5 * time.Millisecond)
		}
		total += time.Since(start)
	}
	b.StopTimer()
	b.ReportMetric(float64(total)/float64(b.N)/float64(time.Millisecond), "ms/restore")
	b.ReportMetric(float64(total)/float64(b.N)/float64(interval), "restore/interval")
	b.ReportMetric(0, "ns/op")
}
