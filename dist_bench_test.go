package nodal

import (
	"context"
	"runtime"
	"slices"
	"testing"
	"time"
)

// BenchmarkDistSend measures one-way remote throughput between two nodes in
// this OS process over loopback: b.N 32-byte messages, acknowledged by the
// receiver once all have arrived. `nodal bench remote` measures the same
// across two OS processes.
func BenchmarkDistSend32(b *testing.B) { benchDistSend(b, 32) }

// BenchmarkDistSend1K is BenchmarkDistSend32 with 1 KiB payloads.
func BenchmarkDistSend1K(b *testing.B) { benchDistSend(b, 1024) }

func benchDistPair(b *testing.B) (a, bn *Node, stop func()) {
	var nodes []*Node
	for i, name := range []string{"a@127.0.0.1", "b@127.0.0.1"} {
		cfg := DefaultLocalConfig(name, testCookie)
		if i > 0 {
			cfg.Seeds = []string{nodes[0].GossipAddr()}
		}
		n, err := Start(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	a, bn = nodes[0], nodes[1]
	for len(a.Nodes()) == 0 || len(bn.Nodes()) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	return a, bn, func() { stopNodes(nodes) }
}

// BenchmarkDistCall measures sequential remote calls (gen_server:call)
// between two nodes in this OS process over loopback, from a process to an
// Actor, with p50/p99 latency. `nodal bench call` measures the same across
// two OS processes.
func BenchmarkDistCall(b *testing.B) {
	a, bn, stop := benchDistPair(b)
	defer stop()
	echo, err := bn.SpawnActor(distEchoActor{})
	if err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, b.N)
	done := make(chan error, 1)
	b.ResetTimer()
	_, err = a.Spawn(func(p *Process) error {
		ctx := context.Background()
		for i := range lat {
			t0 := time.Now()
			if _, err := p.Call(ctx, echo, i); err != nil {
				done <- err
				return err
			}
			lat[i] = time.Since(t0)
		}
		done <- nil
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := waitForWithin(b, nil, done, 10*time.Minute, "done"); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

func benchDistSend(b *testing.B, size int) {
	a, bn, stop := benchDistPair(b)
	defer stop()
	total := b.N
	done := make(chan struct{})
	sink, err := bn.Spawn(func(p *Process) error {
		for i := 0; i < total; i++ {
			if _, err := p.Receive(context.Background()); err != nil {
				return err
			}
		}
		close(done)
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, size)
	b.SetBytes(int64(size))
	b.ResetTimer()
	start := time.Now()
	_, err = a.Spawn(func(p *Process) error {
		for i := 0; i < total; i++ {
			if err := p.Send(sink, payload); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	waitForWithin(b, nil, done, 10*time.Minute, "done")
	b.ReportMetric(float64(total)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkDistSlowReceiverMemory reports the peak heap of two nodes while
// a sender outpaces a receiver that takes 64 messages per millisecond, for
// 5 s, with the default RemoteBacklog and with no bound (-1, Erlang's
// unbounded mailbox). Run it with -benchtime 1x.
func BenchmarkDistSlowReceiverMemory(b *testing.B) {
	for _, tc := range []struct {
		name    string
		backlog int
	}{{"default", 0}, {"unbounded", -1}} {
		b.Run(tc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				peak, queued := slowReceiverPeak(b, tc.backlog, 5*time.Second)
				b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
				b.ReportMetric(float64(queued), "mailbox-at-end")
			}
		})
	}
}

func slowReceiverPeak(b *testing.B, backlog int, d time.Duration) (peak uint64, queued int) {
	var nodes []*Node
	defer func() { stopNodes(nodes) }()
	for i, name := range []string{"a@127.0.0.1", "b@127.0.0.1"} {
		cfg := DefaultLocalConfig(name, testCookie)
		cfg.RemoteBacklog = backlog
		if i > 0 {
			cfg.Seeds = []string{nodes[0].GossipAddr()}
		}
		n, err := Start(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	a, bn := nodes[0], nodes[1]
	for len(a.Nodes()) == 0 || len(bn.Nodes()) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	sink, err := bn.Spawn(func(p *Process) error {
		for {
			for i := 0; i < 64; i++ {
				if _, err := p.Receive(p.Context()); err != nil {
					return nil
				}
			}
			time.Sleep(time.Millisecond)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	stop := make(chan struct{})
	_, err = a.Spawn(func(p *Process) error {
		payload := make([]byte, 32)
		for {
			select {
			case <-stop:
				return nil
			case <-p.Context().Done():
				return nil
			default:
			}
			for i := 0; i < 1000; i++ {
				if err := p.Send(sink, payload); err != nil {
					return err
				}
			}
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		time.Sleep(100 * time.Millisecond)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
	}
	close(stop)
	info, _ := bn.ProcessInfo(sink)
	return peak, info.MessageQueueLen
}
