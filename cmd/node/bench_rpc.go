package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/rpc"
)

// benchRPCOptions are the flags of nodal bench rpc.
type benchRPCOptions struct {
	Calls    int           // sequential calls measured per kind
	Duration time.Duration // per throughput figure
	Items    int           // pmap items
}

func parseBenchRPCFlags(args []string) (benchRPCOptions, error) {
	fs := newFlagSet("bench rpc")
	o := benchRPCOptions{Calls: 20000, Duration: 2 * time.Second, Items: 10000}
	fs.IntVar(&o.Calls, "calls", o.Calls, "sequential calls measured per kind (rpc, plain process Call, multicall)")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "how long each throughput figure is measured")
	fs.IntVar(&o.Items, "items", o.Items, "pmap items")
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, usagef("bench rpc: unexpected argument %q", fs.Arg(0))
	case o.Calls < 100:
		return o, usagef("--calls must be at least 100")
	case o.Duration <= 0:
		return o, usagef("--duration must be positive")
	case o.Items < 1:
		return o, usagef("--items must be positive")
	}
	return o, nil
}

// cmdBenchRPC runs nodal bench rpc: this process's node a and two child OS
// processes b and c on loopback. Sequential latency of an rpc call a->b
// next to a plain process Call a->b to an echo, interleaved in blocks in the
// same run; calls/s with 1 and 16 concurrent callers (rpc and plain);
// multicall to b and c next to one call; pmap of small items over a, b, c.
func cmdBenchRPC(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseBenchRPCFlags(args)
	if err != nil {
		return err
	}
	stderr = &lockedWriter{w: stderr} // both children copy their stderr into it
	bp, err := startBenchPair(ctx, stderr)
	if err != nil {
		return err
	}
	defer bp.close()
	third, err := startChild(ctx, bp.cookie, "bench-c@127.0.0.1", []string{bp.peer.Gossip}, stderr, io.Discard)
	if err != nil {
		return err
	}
	defer third.stop()
	up := third.up

	r := bp.local.RPC
	b, c := bp.peer.Name, up.Name
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := waitFor(wctx, func() bool {
		_ = bp.local.Connect(wctx, c) // fails until c's membership reaches a
		return len(r.Nodes()) >= 3
	}); err != nil {
		return fmt.Errorf("rpc on %s, %s: %w (have %v)", b, c, err, r.Nodes())
	}
	var figs []figure
	err = bp.inProcess(func(p *nodal.Process) error {
		f, err := benchRPCRun(ctx, p, r, b, c, o)
		figs = f
		return err
	})
	if err != nil {
		return err
	}
	for _, f := range figs {
		fmt.Fprintln(stdout, f)
	}
	return nil
}

func benchRPCRun(ctx context.Context, p *nodal.Process, r *rpc.RPC, b, c string, o benchRPCOptions) ([]figure, error) {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	echo, err := p.SpawnOn(sctx, b, "echo", nil)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("spawn echo on %s: %w", b, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Minute) // a deadline: no per-call timer
	defer cancel()
	plain := func() error { _, err := p.Call(cctx, echo, "ping"); return err }
	call := func() error { _, err := r.Call(cctx, b, "rpc.echo", "ping"); return err }
	multi := func() error {
		res, bad, err := r.Multicall(cctx, []string{b, c}, "rpc.echo", "ping")
		if err == nil && len(bad) > 0 {
			err = fmt.Errorf("bad nodes %v: %v", bad, res)
		}
		return err
	}
	kinds := []func() error{plain, call, multi}
	for _, f := range kinds { // warm-up
		for range 1000 {
			if err := f(); err != nil {
				return nil, fmt.Errorf("warm-up: %w", err)
			}
		}
	}
	// Interleave the kinds in blocks of 500 so that they share the
	// machine's conditions.
	lat := make([][]time.Duration, len(kinds))
	for done := 0; done < o.Calls; done += 500 {
		for k, f := range kinds {
			for range 500 {
				t := time.Now()
				if err := f(); err != nil {
					return nil, err
				}
				lat[k] = append(lat[k], time.Since(t))
			}
		}
	}
	q := func(l []time.Duration, f float64) float64 {
		i := min(int(f*float64(len(l))), len(l)-1)
		return float64(l[i].Nanoseconds()) / 1e3
	}
	for _, l := range lat {
		slices.Sort(l)
	}
	figs := []figure{
		{"plain_call_p50_us", q(lat[0], .5), "us"},
		{"plain_call_p99_us", q(lat[0], .99), "us"},
		{"rpc_call_p50_us", q(lat[1], .5), "us"},
		{"rpc_call_p99_us", q(lat[1], .99), "us"},
		{"rpc_vs_plain_p50_ratio", q(lat[1], .5) / q(lat[0], .5), "x"},
		{"rpc_vs_plain_p99_ratio", q(lat[1], .99) / q(lat[0], .99), "x"},
		{"multicall2_p50_us", q(lat[2], .5), "us"},
		{"multicall2_p99_us", q(lat[2], .99), "us"},
		{"multicall2_vs_call_p50_ratio", q(lat[2], .5) / q(lat[1], .5), "x"},
	}

	// Throughput: callers goroutines (rpc) or processes (plain) for the duration.
	rate := func(callers int, one func(pp *nodal.Process) error) (float64, error) {
		var n atomic.Int64
		var first atomic.Value
		end := time.Now().Add(o.Duration)
		var wg sync.WaitGroup
		start := time.Now()
		for range callers {
			wg.Add(1)
			_, err := p.Spawn(func(pp *nodal.Process) error {
				defer wg.Done()
				for time.Now().Before(end) {
					if err := one(pp); err != nil {
						first.CompareAndSwap(nil, err)
						return nil
					}
					n.Add(1)
				}
				return nil
			})
			if err != nil {
				wg.Done()
				return 0, err
			}
		}
		wg.Wait()
		if err, _ := first.Load().(error); err != nil {
			return 0, err
		}
		return float64(n.Load()) / time.Since(start).Seconds(), nil
	}
	rpcOne := func(*nodal.Process) error { _, err := r.Call(cctx, b, "rpc.echo", "ping"); return err }
	plainOne := func(pp *nodal.Process) error { _, err := pp.Call(cctx, echo, "ping"); return err }
	for _, tc := range []struct {
		name    string
		callers int
		one     func(*nodal.Process) error
	}{
		{"rpc_calls_per_s_1", 1, rpcOne},
		{"plain_calls_per_s_1", 1, plainOne},
		{"rpc_calls_per_s_16", 16, rpcOne},
		{"plain_calls_per_s_16", 16, plainOne},
	} {
		v, err := rate(tc.callers, tc.one)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tc.name, err)
		}
		figs = append(figs, figure{tc.name, v, "call/s"})
	}

	// Pmap of small items over the three nodes.
	items := make([]int, o.Items)
	for i := range items {
		items[i] = i
	}
	t := time.Now()
	res, err := rpc.Pmap[int, int](cctx, r, "rpc.echo", items)
	if err != nil {
		return nil, fmt.Errorf("pmap: %w", err)
	}
	el := time.Since(t)
	for i, v := range res {
		if v != i {
			return nil, fmt.Errorf("pmap: item %d came back as %d", i, v)
		}
	}
	figs = append(figs,
		figure{"pmap_items", float64(len(items)), "item"},
		figure{"pmap_ms", float64(el.Microseconds()) / 1e3, "ms"},
		figure{"pmap_items_per_s", float64(len(items)) / el.Seconds(), "item/s"},
	)
	return figs, nil
}

// lockedWriter serialises writes from several goroutines (the children's
// stderr copiers) to one writer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
