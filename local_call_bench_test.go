package nodal

import (
	"context"
	"testing"
)

// BenchmarkLocalCall measures sequential calls between two processes of
// one node: a Func process calls a Func process that replies.
func BenchmarkLocalCall(b *testing.B) {
	n := benchNode(b)
	defer benchStop(b, n)
	echo, err := n.Spawn(func(p *Process) error {
		for {
			m, err := p.Receive(context.Background())
			if err != nil {
				return err
			}
			if r, ok := m.(CallRequest); ok {
				p.Reply(r.From, r.Req)
			}
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	if _, err := n.Spawn(func(p *Process) error {
		ctx := context.Background()
		for i := range b.N {
			if _, err := p.Call(ctx, echo, i); err != nil {
				done <- err
				return err
			}
		}
		done <- nil
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
