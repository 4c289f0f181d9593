package groups

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nodal-go/nodal"
)

// Benchmarks on two nodes in this OS process over real libp2p on loopback
// (a@127.0.0.1 joins, b@127.0.0.1 watches). pg's figures
// (../shared/reference/erlang/RESULTS.md §e): 10,000 joins into one group
// visible on another node after 4,338 ms, into 100 groups after 180 ms.

type benchPair struct {
	a, b   *nodal.Node
	sa, sb *Scope
}

func startBenchPair(b *testing.B) (*benchPair, func()) {
	b.Helper()
	var nodes []*nodal.Node
	var scopes []*Scope
	for i, name := range []string{"a@127.0.0.1", "b@127.0.0.1"} {
		cfg := nodal.DefaultLocalConfig(name, testCookie)
		if i > 0 {
			cfg.Seeds = []string{nodes[0].GossipAddr()}
		}
		n, err := nodal.Start(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		s, err := New(n, Config{Scope: "bench", MonitorBuffer: 1 << 20})
		if err != nil {
			b.Fatal(err)
		}
		nodes, scopes = append(nodes, n), append(scopes, s)
	}
	p := &benchPair{a: nodes[0], b: nodes[1], sa: scopes[0], sb: scopes[1]}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := true
		for _, n := range nodes {
			for _, m := range n.Members() {
				ok = ok && slices.Contains(m.Services, scopes[0].name) && slices.Contains(n.Nodes(), m.Name)
			}
			ok = ok && len(n.Members()) == 1
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("no mesh")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return p, func() {
		for _, n := range slices.Backward(nodes) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = n.Stop(ctx)
			cancel()
		}
	}
}

// actors spawns n idle handler-style processes (no goroutine while idle).
func actors(b *testing.B, n *nodal.Node, count int) []nodal.Pid {
	b.Helper()
	out := make([]nodal.Pid, count)
	for i := range out {
		pid, err := n.SpawnActor(nodal.ActorFunc(func(*nodal.Process, any) error { return nil }))
		if err != nil {
			b.Fatal(err)
		}
		out[i] = pid
	}
	return out
}

// waitCount waits until group has want memberships on s.
func waitCount(b *testing.B, s *Scope, want map[string]int) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		ok := true
		for g, n := range want {
			if s.Count(g) != n {
				ok = false
				break
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("not visible: want %v", want)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// processCPU is the user and system CPU time this process (both nodes of
// a benchmark pair) has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkJoin: b.N joins of distinct processes into 100 groups on node a,
// from 16 goroutines; joins/s on a, the time from each Join's return to
// its event on b's monitor (p50/p99), and the CPU both nodes spent per
// join until b saw the last (steadier than rates on a shared machine).
func BenchmarkJoin(b *testing.B) {
	p, stop := startBenchPair(b)
	defer stop()
	ps := actors(b, p.a, b.N)
	_, mon, err := p.sb.MonitorScope()
	if err != nil {
		b.Fatal(err)
	}
	defer mon.Stop()
	joined := make([]time.Time, b.N)
	idx := make(map[nodal.Pid]int, b.N)
	for i, pid := range ps {
		idx[pid] = i
	}
	lat := make([]time.Duration, 0, b.N)
	seen := make(chan struct{})
	go func() {
		defer close(seen)
		for ev := range mon.Events() {
			now := time.Now()
			for _, pid := range ev.Pids {
				lat = append(lat, now.Sub(joined[idx[pid]]))
			}
			if len(lat) == b.N {
				return
			}
		}
	}()
	ctx := context.Background()
	const workers = 16
	b.ResetTimer()
	t0, cpu0 := time.Now(), processCPU()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < b.N; i += workers {
				joined[i] = time.Now() // read by the monitor's reader after the event
				if err := p.sa.Join(ctx, groupName(i%100), ps[i]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	joinPhase := time.Since(t0)
	<-seen
	cpu := processCPU() - cpu0
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/joinPhase.Seconds(), "joins/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-visible-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-visible-ms")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/join")
}

func groupName(i int) string { return fmt.Sprintf("group-%03d", i) }

// BenchmarkJoin10kOneGroup: 10,000 sequential joins into one group on a,
// time from the first join until all are visible on b (pg: 4,338 ms).
func BenchmarkJoin10kOneGroup(b *testing.B) { bench10k(b, 1, 4338) }

// BenchmarkJoin10k100Groups: the same spread over 100 groups of 100
// (pg: 180 ms).
func BenchmarkJoin10k100Groups(b *testing.B) { bench10k(b, 100, 180) }

func bench10k(b *testing.B, groups int, pgMS float64) {
	p, stop := startBenchPair(b)
	defer stop()
	ctx := context.Background()
	var total, cpu time.Duration
	for range b.N {
		b.StopTimer()
		ps := actors(b, p.a, 10_000)
		want := map[string]int{}
		for i := range ps {
			want[groupName(i%groups)]++
		}
		b.StartTimer()
		t0, cpu0 := time.Now(), processCPU()
		for i, pid := range ps {
			if err := p.sa.Join(ctx, groupName(i%groups), pid); err != nil {
				b.Fatal(err)
			}
		}
		waitCount(b, p.sb, want)
		total += time.Since(t0)
		cpu += processCPU() - cpu0
		b.StopTimer()
		for i, pid := range ps {
			if err := p.sa.Leave(ctx, groupName(i%groups), pid); err != nil {
				b.Fatal(err)
			}
		}
		waitCount(b, p.sb, map[string]int{groupName(0): 0})
		for _, pid := range ps {
			p.a.Exit(pid, nodal.ReasonKill)
		}
	}
	ms := float64(total.Microseconds()) / 1000 / float64(b.N)
	b.ReportMetric(ms, "visible-ms")
	b.ReportMetric(pgMS/ms, "x-faster-than-pg")
	b.ReportMetric(float64(cpu.Microseconds())/1e3/float64(b.N), "cpu-ms")
}

// BenchmarkJoinCost: one join and one leave of a process in a group that
// already has 1,000 or 100,000 members, on a scope with a connected peer:
// the cost must not grow with the group (pg's does).
func BenchmarkJoinCost(b *testing.B) {
	for _, size := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("members=%d", size), func(b *testing.B) {
			p, stop := startBenchPair(b)
			defer stop()
			ctx := context.Background()
			ps := actors(b, p.a, size+1)
			for _, pid := range ps[:size] {
				if err := p.sa.Join(ctx, "big", pid); err != nil {
					b.Fatal(err)
				}
			}
			waitCount(b, p.sb, map[string]int{"big": size})
			x := ps[size]
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := p.sa.Join(ctx, "big", x); err != nil {
					b.Fatal(err)
				}
				if err := p.sa.Leave(ctx, "big", x); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			waitCount(b, p.sb, map[string]int{"big": size})
		})
	}
}

// BenchmarkJoinLeaveOneNode: the cost of a join and a leave on a node with
// no peer (the engine, the CRDT, the index and the exit watcher; no
// network), from parallel goroutines.
func BenchmarkJoinLeaveOneNode(b *testing.B) {
	cfg := nodal.DefaultLocalConfig("solo@127.0.0.1", testCookie)
	n, err := nodal.Start(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = n.Stop(context.Background()) }()
	s, err := New(n, Config{Scope: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	ps := actors(b, n, 1024)
	var next sync.Mutex
	k := 0
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(4) // 8 goroutines on 2 cores: the engine batches their ops
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		next.Lock()
		pid := ps[k%len(ps)]
		k++
		next.Unlock()
		for pb.Next() {
			if err := s.Join(ctx, "g", pid); err != nil {
				b.Error(err)
				return
			}
			if err := s.Leave(ctx, "g", pid); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkJoinVisible: one join at a time on a, each timed from the call
// until b's monitor reports it (p50/p99): the latency of one update
// reaching another node, without a queue in front of it.
func BenchmarkJoinVisible(b *testing.B) {
	p, stop := startBenchPair(b)
	defer stop()
	ps := actors(b, p.a, b.N)
	_, mon, err := p.sb.Monitor("lat")
	if err != nil {
		b.Fatal(err)
	}
	defer mon.Stop()
	ctx := context.Background()
	lat := make([]time.Duration, b.N)
	b.ResetTimer()
	for i, pid := range ps {
		t0 := time.Now()
		if err := p.sa.Join(ctx, "lat", pid); err != nil {
			b.Fatal(err)
		}
		if _, ok := <-mon.Events(); !ok {
			b.Fatal(mon.Err())
		}
		lat[i] = time.Since(t0)
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-visible-us")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-visible-us")
}
