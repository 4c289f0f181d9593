package rpc

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nodal-go/nodal"
)

// benchNodes starts n nodes with rpc in this OS process on loopback TCP and
// waits until each sees the others running rpc. `nodal bench rpc` measures
// the same across OS processes.
func benchNodes(b *testing.B, n int) ([]*nodal.Node, []*RPC) {
	b.Helper()
	var nodes []*nodal.Node
	var rpcs []*RPC
	for i := range n {
		cfg := nodal.DefaultLocalConfig(fmt.Sprintf("bench%d@127.0.0.1", i), testCookie)
		if i > 0 {
			cfg.Seeds = []string{nodes[0].GossipAddr()}
		}
		node, err := nodal.Start(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		nodes = append(nodes, node)
		r, err := New(node, Config{})
		if err != nil {
			b.Fatal(err)
		}
		rpcs = append(rpcs, r)
	}
	b.Cleanup(func() {
		for _, node := range nodes {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = node.Stop(ctx)
			cancel()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for _, r := range rpcs {
		for len(r.Nodes()) < n {
			if time.Now().After(deadline) {
				b.Fatalf("rpc nodes: %v", r.Nodes())
			}
			for _, node := range nodes {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_ = r.Node().Connect(ctx, node.Name())
				cancel()
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nodes, rpcs
}

// echoProc answers CallRequests with the request: the plain process Call
// the rpc figures are compared to.
func echoProc(p *nodal.Process) error {
	for {
		m, err := p.Receive(p.Context())
		if err != nil {
			return nil
		}
		if c, ok := m.(nodal.CallRequest); ok {
			p.Reply(c.From, c.Req)
		}
	}
}

// inProc runs f on a process of n and waits for it.
func inProc(b *testing.B, n *nodal.Node, f func(p *nodal.Process) error) {
	b.Helper()
	done := make(chan error, 1)
	if _, err := n.Spawn(func(p *nodal.Process) error { done <- f(p); return nil }); err != nil {
		b.Fatal(err)
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCall measures sequential calls between two nodes: an rpc call of
// the built-in rpc.echo (with a deadline, and without one: the default
// timeout), and a plain process Call to an echo process, the reference in
// the same run.
func BenchmarkCall(b *testing.B) {
	nodes, rpcs := benchNodes(b, 2)
	echo, err := nodes[1].Spawn(echoProc)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	callee := nodes[1].Name()
	b.Run("rpc", func(b *testing.B) {
		b.ReportAllocs()
		c0 := cpuTime(b)
		for b.Loop() {
			if _, err := rpcs[0].Call(ctx, callee, "rpc.echo", "ping"); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, c0)
	})
	b.Run("rpc_no_deadline", func(b *testing.B) { // Config.DefaultTimeout applies
		b.ReportAllocs()
		c0 := cpuTime(b)
		for b.Loop() {
			if _, err := rpcs[0].Call(context.Background(), callee, "rpc.echo", "ping"); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, c0)
	})
	b.Run("plain", func(b *testing.B) {
		b.ReportAllocs()
		c0 := cpuTime(b)
		inProc(b, nodes[0], func(p *nodal.Process) error {
			for b.Loop() {
				if _, err := p.Call(ctx, echo, "ping"); err != nil {
					return err
				}
			}
			return nil
		})
		reportCPU(b, c0)
	})
}

// BenchmarkCallConcurrent measures calls from 16 concurrent callers on one
// node to another, rpc and plain process Call.
func BenchmarkCallConcurrent(b *testing.B) {
	const callers = 16
	nodes, rpcs := benchNodes(b, 2)
	echo, err := nodes[1].Spawn(echoProc)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	callee := nodes[1].Name()
	run := func(b *testing.B, one func(p *nodal.Process) error) {
		b.ReportAllocs()
		var wg sync.WaitGroup
		errs := make(chan error, callers)
		b.ResetTimer()
		c0 := cpuTime(b)
		for w := range callers {
			wg.Add(1)
			if _, err := nodes[0].Spawn(func(p *nodal.Process) error {
				defer wg.Done()
				for i := w; i < b.N; i += callers {
					if err := one(p); err != nil {
						errs <- err
						return nil
					}
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
		}
		wg.Wait()
		b.StopTimer()
		reportCPU(b, c0)
		close(errs)
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	b.Run("rpc", func(b *testing.B) {
		run(b, func(*nodal.Process) error { _, err := rpcs[0].Call(ctx, callee, "rpc.echo", "ping"); return err })
	})
	b.Run("plain", func(b *testing.B) {
		run(b, func(p *nodal.Process) error { _, err := p.Call(ctx, echo, "ping"); return err })
	})
}

// BenchmarkMulticall measures a multicall to two nodes next to one rpc call
// to one of them.
func BenchmarkMulticall(b *testing.B) {
	nodes, rpcs := benchNodes(b, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	to := []string{nodes[1].Name(), nodes[2].Name()}
	b.Run("multicall2", func(b *testing.B) {
		b.ReportAllocs()
		c0 := cpuTime(b)
		defer reportCPU(b, c0)
		for b.Loop() {
			res, bad, err := rpcs[0].Multicall(ctx, to, "rpc.echo", "ping")
			if err != nil || len(bad) > 0 {
				b.Fatal(err, res)
			}
		}
	})
	b.Run("call", func(b *testing.B) {
		b.ReportAllocs()
		c0 := cpuTime(b)
		defer reportCPU(b, c0)
		for b.Loop() {
			if _, err := rpcs[0].Call(ctx, to[0], "rpc.echo", "ping"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// cpuTime is the user and system CPU time this OS process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per operation since c0 (both nodes: they
// share this OS process), steadier than ns/op on a busy machine.
func reportCPU(b *testing.B, c0 time.Duration) {
	b.ReportMetric(float64((cpuTime(b)-c0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
}
