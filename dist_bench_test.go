package nodal

import (
	"context"
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

func benchDistSend(b *testing.B, size int) {
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
	defer stopNodes(nodes)
	a, bn := nodes[0], nodes[1]
	for len(a.Nodes()) == 0 || len(bn.Nodes()) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
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
	<-done
	b.ReportMetric(float64(total)/time.Since(start).Seconds(), "msgs/s")
}
