package nodal

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkSupervisorRestart measures supervisor restart latency: from the
// moment a child is told to crash to the moment its replacement runs,
// registered under the child's name (one op = one crash and restart).
//
//   - one_for_one: one child; the replacement's goroutine reports in.
//   - one_for_one+call: the same, then a Call to the name's new owner
//     answers (the replacement is reachable).
//   - one_for_all-10: ten children, the fifth crashes; all ten are stopped
//     (shutdown signal, wait for Down) and started again.
func BenchmarkSupervisorRestart(b *testing.B) {
	for _, bc := range []struct {
		name     string
		strategy Strategy
		children int
		call     bool
	}{
		{"one_for_one", OneForOne, 1, false},
		{"one_for_one+call", OneForOne, 1, true},
		{"one_for_all-10", OneForAll, 10, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			n, err := Start(ctx, Config{})
			require.NoError(b, err)
			defer func() { require.NoError(b, n.Stop(ctx)) }()

			started := make(chan Pid, bc.children)
			worker := func(w *Process) error {
				started <- w.Self()
				for {
					msg, err := w.Receive(w.Context())
					if err != nil {
						return err
					}
					switch m := msg.(type) {
					case CallRequest:
						w.Reply(m.From, m.Req)
					case string:
						return errors.New("crash")
					}
				}
			}
			var specs []ChildSpec
			for i := range bc.children {
				name := fmt.Sprintf("w%d", i)
				specs = append(specs, ChildSpec{ID: name, Start: func(p *Process) (Pid, error) {
					return p.SpawnLink(worker, WithName(name))
				}})
			}
			_, err = StartSupervisor(n, SupervisorSpec{
				Strategy:  bc.strategy,
				Intensity: 1 << 30, // never reached: every crash is restarted
				Period:    time.Second,
				Children:  specs,
			})
			require.NoError(b, err)
			victim := fmt.Sprintf("w%d", bc.children/2)
			for range bc.children {
				<-started
			}

			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				pid, ok := n.Whereis(victim)
				if !ok {
					b.Fatal("victim not registered")
				}
				n.Send(pid, "crash")
				for range bc.children {
					<-started
				}
				if bc.call {
					next, ok := n.Whereis(victim)
					if !ok || next == pid {
						b.Fatal("replacement not registered")
					}
					if _, err := n.Call(ctx, next, "ping"); err != nil {
						b.Fatal(err)
					}
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(elapsed.Microseconds())/float64(b.N), "µs/restart")
		})
	}
}
