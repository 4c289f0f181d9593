package nodal

// Benchmarks mapped to the Erlang/OTP 25 figures in
// ../shared/reference/erlang/RESULTS.md (sections c and f, same kind of
// machine). Each reports the figure Erlang reports as a custom metric:
//
//	BenchmarkSpawnIdle/func, /actor   spawns/s   Erlang 115,565 (f)
//	BenchmarkSpawnExitAtOnce          spawns/s   Erlang 649,580 (f)
//	BenchmarkIdleProcessMemory/*      B/proc     Erlang 2,632   (f)
//	BenchmarkSendReceive/1x32B        msgs/s     Erlang 2,136,553 (c)
//	BenchmarkSendReceive/4x32B        msgs/s     Erlang 1,472,641 (c)
//	BenchmarkSelectiveReceive1000     matches/s  (no Erlang figure)
//	BenchmarkSpawnMonitorDown         trips/s    Erlang 612,481 (f)
//
// Run (as for the figures in the issue notes):
//
//	go test -run '^$' -bench 'SpawnIdle|SpawnExitAtOnce|SpawnMonitorDown|IdleProcessMemory|SelectiveReceive1000' -benchtime 100000x -count 3 .
//	go test -run '^$' -bench 'SendReceive' -benchtime 3000000x -count 3 .

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"
)

func benchNode(b *testing.B) *Node {
	b.Helper()
	n, err := Start(context.Background(), Config{})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

func benchStop(b *testing.B, n *Node) {
	b.Helper()
	if err := n.Stop(context.Background()); err != nil {
		b.Fatal(err)
	}
}

func waitIdle(p *Process) error {
	_, err := p.ReceiveMatch(context.Background(), func(m any) bool { return m == "stop" })
	return err
}

type idleActor struct{}

func (idleActor) Init(*Process) error               { return nil }
func (idleActor) HandleMessage(*Process, any) error { return nil }

// Erlang: spawn(fun() -> receive stop -> ok end end), 100,000 sequentially:
// 115,565 spawns/s.
func BenchmarkSpawnIdle(b *testing.B) {
	b.Run("func", func(b *testing.B) {
		n := benchNode(b)
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			if _, err := n.Spawn(waitIdle); err != nil {
				b.Fatal(err)
			}
		}
		el := time.Since(start)
		b.StopTimer()
		b.ReportMetric(float64(b.N)/el.Seconds(), "spawns/s")
		benchStop(b, n)
	})
	b.Run("actor", func(b *testing.B) {
		n := benchNode(b)
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			if _, err := n.SpawnActor(idleActor{}); err != nil {
				b.Fatal(err)
			}
		}
		el := time.Since(start)
		b.StopTimer()
		b.ReportMetric(float64(b.N)/el.Seconds(), "spawns/s")
		benchStop(b, n)
	})
}

// Erlang: spawn 100,000 processes that exit at once (rate of spawn/1 calls):
// 649,580 spawns/s.
func BenchmarkSpawnExitAtOnce(b *testing.B) {
	n := benchNode(b)
	exit := func(*Process) error { return nil }
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := n.Spawn(exit); err != nil {
			b.Fatal(err)
		}
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "spawns/s")
	benchStop(b, n)
}

// Erlang: memory per idle process, (Δ erlang:memory(processes)) / 100,000:
// 2,632 bytes. Here: Δ(heap in use + goroutine stacks), after GC, over b.N
// idle processes (run with -benchtime 100000x to match Erlang's count).
func BenchmarkIdleProcessMemory(b *testing.B) {
	measure := func(b *testing.B, spawn func(n *Node) error) {
		n := benchNode(b)
		defer benchStop(b, n)
		before := memInUse()
		b.ResetTimer()
		for range b.N {
			if err := spawn(n); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		after := memInUse()
		b.ReportMetric(float64(after-before)/float64(b.N), "B/proc")
	}
	b.Run("func", func(b *testing.B) {
		measure(b, func(n *Node) error { _, err := n.Spawn(waitIdle); return err })
	})
	b.Run("actor", func(b *testing.B) {
		measure(b, func(n *Node) error { _, err := n.SpawnActor(idleActor{}); return err })
	})
}

func memInUse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc + ms.StackInuse)
}

type payload32 [32]byte

// Erlang: local throughput, process -> registered process, 32-byte binary:
// 1 sender 2,136,553 msgs/s, 4 senders 1,472,641 msgs/s. b.N messages in
// total go from the senders to one receiver; the clock stops when the
// receiver has taken the last one.
func BenchmarkSendReceive(b *testing.B) {
	for _, c := range []struct {
		name    string
		senders int
		actor   bool
	}{
		{"1x32B", 1, false},
		{"4x32B", 4, false},
		{"1x32B-actor-receiver", 1, true},
		{"4x32B-actor-receiver", 4, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			n := benchNode(b)
			defer benchStop(b, n)
			total := b.N
			done := make(chan struct{})
			var rpid Pid
			var err error
			if c.actor {
				got := 0
				rpid, err = n.SpawnActor(ActorFunc(func(p *Process, m any) error {
					if _, ok := m.(payload32); ok {
						got++
						if got == total {
							close(done)
						}
					}
					return nil
				}), WithName("sink"))
			} else {
				rpid, err = n.Spawn(func(p *Process) error {
					for i := 0; i < total; i++ {
						if _, err := p.Receive(context.Background()); err != nil {
							return err
						}
					}
					close(done)
					return nil
				}, WithName("sink"))
			}
			if err != nil {
				b.Fatal(err)
			}
			var ready, start sync.WaitGroup
			start.Add(1)
			per := total / c.senders
			for s := range c.senders {
				count := per
				if s == 0 {
					count += total - per*c.senders
				}
				ready.Add(1)
				if _, err := n.Spawn(func(p *Process) error {
					var msg payload32
					ready.Done()
					start.Wait()
					for i := 0; i < count; i++ {
						msg[0] = byte(i)
						p.Send(rpid, msg)
					}
					return nil
				}); err != nil {
					b.Fatal(err)
				}
			}
			ready.Wait()
			b.ReportAllocs()
			b.ResetTimer()
			t0 := time.Now()
			start.Done()
			waitForWithin(b, nil, done, 10*time.Minute, "done")
			el := time.Since(t0)
			b.StopTimer()
			b.ReportMetric(float64(total)/el.Seconds(), "msgs/s")
		})
	}
}

// Selective receive with 1,000 non-matching messages queued: each operation
// sends one matching message and takes it with ReceiveMatch, scanning past
// the 1,000 others (Erlang scans the same way unless the ref optimisation
// applies).
func BenchmarkSelectiveReceive1000(b *testing.B) {
	n := benchNode(b)
	defer benchStop(b, n)
	w := n.newBare()
	for i := range 1000 {
		n.Send(w.Self(), i)
	}
	match := func(m any) bool { return m == "match" }
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		n.Send(w.Self(), "match")
		if _, err := w.ReceiveMatch(context.Background(), match); err != nil {
			b.Fatal(err)
		}
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "matches/s")
	if l := w.queueLenLocked(); l != 1000 {
		b.Fatalf("queue %d, want 1000", l)
	}
}

// Erlang: spawn_monitor + wait for 'DOWN', sequentially: 612,481 round
// trips/s.
func BenchmarkSpawnMonitorDown(b *testing.B) {
	n := benchNode(b)
	defer benchStop(b, n)
	w := n.newBare()
	exit := func(*Process) error { return nil }
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		_, ref, err := w.SpawnMonitor(exit)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.ReceiveMatch(context.Background(), func(m any) bool {
			d, ok := m.(Down)
			return ok && d.Ref == ref
		}); err != nil {
			b.Fatal(err)
		}
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "trips/s")
}
