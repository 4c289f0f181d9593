package registry

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/crdt"
)

// benchCluster starts n nodes on loopback (real TCP and UDP), each with a
// registry, and waits for the mesh.
func benchCluster(b *testing.B, n int) ([]*nodal.Node, []*Registry) {
	b.Helper()
	var nodes []*nodal.Node
	var regs []*Registry
	for i := range n {
		cfg := nodal.DefaultLocalConfig(fmt.Sprintf("bench%d@127.0.0.1", i), "registry-bench-cookie")
		if i > 0 {
			cfg.Seeds = []string{nodes[0].GossipAddr()}
		}
		node, err := nodal.Start(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		r, err := New(node, Config{})
		if err != nil {
			b.Fatal(err)
		}
		nodes, regs = append(nodes, node), append(regs, r)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, r := range regs {
		for len(r.Nodes()) != n-1 {
			if time.Now().After(deadline) {
				b.Fatal("no mesh")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	b.Cleanup(func() {
		for _, node := range nodes {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = node.Stop(ctx)
			cancel()
		}
	})
	return nodes, regs
}

func spawnIdle(b *testing.B, n *nodal.Node, count int) []nodal.Pid {
	b.Helper()
	pids := make([]nodal.Pid, count)
	for i := range pids {
		pid, err := n.SpawnActor(nodal.ActorFunc(func(*nodal.Process, any) error { return nil }))
		if err != nil {
			b.Fatal(err)
		}
		pids[i] = pid
	}
	return pids
}

// Whereis of an existing name among 10,000 (Erlang's global: 474-623 ns).
func BenchmarkWhereis(b *testing.B) {
	nodes, regs := benchCluster(b, 1)
	const names = 10000
	pids := spawnIdle(b, nodes[0], names)
	keys := make([]string, names)
	for i := range keys {
		keys[i] = fmt.Sprintf("name-%05d", i)
		if err := regs[0].Register(context.Background(), keys[i], pids[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, ok := regs[0].Whereis(keys[i%names]); !ok {
				b.Fatal("missing")
			}
			i++
		}
	})
	// In-run references: the node's local name table (erlang:whereis) and
	// a bare Go map read, on the same machine at the same moment.
	for _, k := range keys {
		if _, err := nodes[0].SpawnActor(nodal.ActorFunc(func(*nodal.Process, any) error { return nil }), nodal.WithName(k)); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("node-local-names", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, ok := nodes[0].Whereis(keys[i%names]); !ok {
				b.Fatal("missing")
			}
			i++
		}
	})
	plain := map[string]nodal.Pid{}
	for i, k := range keys {
		plain[k] = pids[i]
	}
	b.Run("go-map", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, ok := plain[keys[i%names]]; !ok {
				b.Fatal("missing")
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		var worker atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			i := int(worker.Add(1)) * 7919 // each reader walks its own names
			for pb.Next() {
				if _, ok := regs[0].Whereis(keys[i%names]); !ok {
					b.Fatal("missing")
				}
				i++
			}
		})
	})
}

// processCPU is the user and system CPU time this process has used: what
// the three nodes of a benchmark cluster spent, whatever else the machine
// runs.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Registrations per second on one node of three, counted until every name
// is visible on the two others (Erlang's global: 348/s; syn 21-26 k/s).
// Registrations come from 64 concurrent callers. cpu-µs/registration is
// the CPU the three nodes spent per registration in that time: on a busy,
// shared machine it varies far less than the rate.
func BenchmarkRegisterVisibleEverywhere(b *testing.B) {
	nodes, regs := benchCluster(b, 3)
	const batch = 20000
	const callers = 64
	pids := spawnIdle(b, nodes[0], batch)
	round := 0
	var total, cpu time.Duration
	var regs0 int
	for b.Loop() {
		round++
		start, cpu0 := time.Now(), processCPU()
		var next atomic.Int64
		var wg sync.WaitGroup
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= batch {
						return
					}
					if err := regs[0].Register(context.Background(), fmt.Sprintf("r%d-%d", round, i), pids[i]); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		last := fmt.Sprintf("r%d-%d", round, batch-1)
		for _, r := range regs[1:] {
			for r.Len() < batch {
				time.Sleep(100 * time.Microsecond)
			}
			if _, ok := r.Whereis(last); !ok {
				b.Fatal("last name missing")
			}
		}
		total += time.Since(start)
		cpu += processCPU() - cpu0
		regs0 += batch
		b.StopTimer()
		for i := range batch {
			if err := regs[0].Unregister(context.Background(), fmt.Sprintf("r%d-%d", round, i)); err != nil {
				b.Fatal(err)
			}
		}
		for _, r := range regs {
			for r.Len() != 0 {
				time.Sleep(100 * time.Microsecond)
			}
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(regs0)/total.Seconds(), "registrations/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(regs0), "cpu-µs/registration")
}

// Time from Register on one node to Whereis finding the name on another
// (Erlang's global: p50 892 µs, p99 2,253 µs).
func BenchmarkRegisterToVisible(b *testing.B) {
	nodes, regs := benchCluster(b, 3)
	pid := spawnIdle(b, nodes[0], 1)[0]
	var lat []time.Duration
	i := 0
	for b.Loop() {
		name := fmt.Sprintf("v%d", i)
		i++
		start := time.Now()
		if err := regs[0].Register(context.Background(), name, pid); err != nil {
			b.Fatal(err)
		}
		for {
			if _, ok := regs[2].Whereis(name); ok {
				break
			}
			runtime.Gosched()
		}
		lat = append(lat, time.Since(start))
		b.StopTimer()
		if err := regs[0].Unregister(context.Background(), name); err != nil {
			b.Fatal(err)
		}
		for {
			if _, ok := regs[2].Whereis(name); !ok {
				break
			}
			runtime.Gosched()
		}
		b.StartTimer()
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// The in-run floor of BenchmarkRegisterToVisible: a plain message from a
// process on one node to a process on another, until it has been received.
func BenchmarkSendToReceivedReference(b *testing.B) {
	nodes, _ := benchCluster(b, 3)
	var got atomic.Int64
	pid, err := nodes[2].SpawnActor(nodal.ActorFunc(func(_ *nodal.Process, m any) error {
		got.Store(int64(m.(int)))
		return nil
	}))
	if err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	i := 0
	for b.Loop() {
		i++
		start := time.Now()
		if err := nodes[0].Send(pid, i); err != nil {
			b.Fatal(err)
		}
		for got.Load() != int64(i) {
			runtime.Gosched()
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// Heap bytes per registered name: on the owner's node alone (its read
// index, the CRDT, its own indexes and the exit monitor), and on a node
// that holds a replica only. The goal is 200 bytes.
func BenchmarkMemoryPerName(b *testing.B) {
	nodes, regs := benchCluster(b, 2)
	const names = 100000
	pids := spawnIdle(b, nodes[0], names)
	keys := make([]string, names)
	for i := range keys {
		keys[i] = fmt.Sprintf("mem-%06d", i)
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	for b.Loop() {
		b.StopTimer()
		before := heap()
		b.StartTimer()
		for i, k := range keys {
			if err := regs[0].Register(context.Background(), k, pids[i]); err != nil {
				b.Fatal(err)
			}
		}
		for regs[1].Len() < names {
			time.Sleep(time.Millisecond)
		}
		b.StopTimer()
		both := heap()
		// The replica's share: stop b's registry and see what goes.
		b.ReportMetric(float64(both-before)/names, "B/name(owner+replica)")
		b.StartTimer()
	}
	_ = nodes
}

// Heap bytes per name on a node that only holds a replica: the CRDT state
// joined from the owner's delta, plus the read index.
func BenchmarkMemoryPerNameReplica(b *testing.B) {
	const names = 100000
	owner := crdt.NewORMap(crdt.ReplicaID{Name: "a@127.0.0.1", Epoch: 1}, nameCodec{}, regCodec{})
	owner.SetLogLimit(0)
	for i := range names {
		owner.Add(fmt.Sprintf("mem-%06d", i), toClaim(Registration{Pid: nodal.Pid{Node: "a@127.0.0.1", ID: uint64(i + 1), Incarnation: 1}}))
	}
	enc, _ := owner.MarshalBinary()
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	for b.Loop() {
		b.StopTimer()
		before := heap()
		b.StartTimer()
		d, err := crdt.DecodeORMap(enc, nameCodec{}, regCodec{})
		if err != nil {
			b.Fatal(err)
		}
		m := crdt.NewORMap(crdt.ReplicaID{Name: "b@127.0.0.1", Epoch: 2}, nameCodec{}, regCodec{})
		m.SetLogLimit(0)
		m.Merge(d)
		d = nil
		x := newIndex()
		for k, sibs := range m.All() {
			x.swap(k, sibs[0].Value.ref(), sibs[0].Dot.Replica, false, true)
		}
		b.StopTimer()
		after := heap()
		b.ReportMetric(float64(after-before)/names, "B/name")
		runtime.KeepAlive(m)
		runtime.KeepAlive(x)
		b.StartTimer()
	}
}

// BenchmarkDeltaPipeline: the CRDT's share of one registration, without
// the network or goroutines: the owner's mutation into a batch of 4,096,
// the batch's encoding, its decoding and its join (with the change report)
// on a replica holding 100,000 names; ns per registration, and the CPU
// (GC included) per registration.
func BenchmarkDeltaPipeline(b *testing.B) {
	const batch = 4096
	owner := crdt.NewORMap(crdt.ReplicaID{Name: "a@127.0.0.1", Epoch: 1}, nameCodec{}, regCodec{})
	replica := crdt.NewORMap(crdt.ReplicaID{Name: "b@127.0.0.1", Epoch: 1}, nameCodec{}, regCodec{})
	names := make([]string, 100_000+batch)
	for i := range names {
		names[i] = fmt.Sprintf("pipe-%07d", i)
	}
	reg := func(i int) heldClaim {
		return toClaim(Registration{Pid: nodal.Pid{Node: "a@127.0.0.1", ID: uint64(i + 1), Incarnation: 1}, At: int64(i)})
	}
	var acc *crdt.ORMap[string, heldClaim]
	for i := range 100_000 {
		acc, _ = owner.AddInto(acc, names[i], reg(i))
		if (i+1)%batch == 0 || i == 100_000-1 {
			replica.Merge(acc)
			acc = nil
		}
	}
	var dots []crdt.Dot
	var joined []crdt.ValueChange[string, heldClaim]
	var cpu time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; {
		cpu0 := processCPU()
		var acc *crdt.ORMap[string, heldClaim]
		dots = dots[:0]
		for i := 0; i < batch && n < b.N; i, n = i+1, n+1 {
			var d crdt.Dot
			acc, d = owner.AddInto(acc, names[100_000+i], reg(i))
			dots = append(dots, d)
		}
		enc, _ := acc.MarshalBinary()
		d, err := crdt.DecodeORMap(enc, nameCodec{}, regCodec{})
		if err != nil {
			b.Fatal(err)
		}
		if joined = replica.JoinAppend(joined[:0], d); len(joined) != len(dots) { // as internal/replica joins
			b.Fatalf("%d changes for %d registrations", len(joined), len(dots))
		}
		cpu += processCPU() - cpu0
		b.StopTimer()
		rm := owner.RemoveDotsInto(nil, dots...)
		replica.Merge(rm)
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/registration")
}

// BenchmarkRegisterOwner: the owner's share of a registration, on one node
// without peers (no push is encoded or sent): b.N registrations of
// distinct names from 64 callers; the CPU per registration (the engine,
// the callers, the exit watcher and GC) and allocations.
func BenchmarkRegisterOwner(b *testing.B) {
	nodes, regs := benchCluster(b, 1)
	const callers = 64
	pids := spawnIdle(b, nodes[0], b.N)
	names := make([]string, b.N)
	for i := range names {
		names[i] = fmt.Sprintf("owner-%07d", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < b.N; i = int(next.Add(1)) - 1 {
				if err := regs[0].Register(context.Background(), names[i], pids[i]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	cpu := processCPU() - cpu0
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/registration")
}
