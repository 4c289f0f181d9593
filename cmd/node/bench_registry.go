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
)

// benchRegistryOptions are the flags of nodal bench registry.
type benchRegistryOptions struct {
	Names   int // registrations measured
	Callers int // concurrent callers of Register
}

func parseBenchRegistryFlags(args []string) (benchRegistryOptions, error) {
	fs := newFlagSet("bench registry")
	o := benchRegistryOptions{Names: 20000, Callers: 64}
	fs.IntVar(&o.Names, "names", o.Names, "names registered on node a")
	fs.IntVar(&o.Callers, "callers", o.Callers, "concurrent callers of Register on a")
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, usagef("bench registry: unexpected argument %q", fs.Arg(0))
	case o.Names < 1:
		return o, usagef("--names must be positive")
	case o.Callers < 1:
		return o, usagef("--callers must be positive")
	}
	return o, nil
}

// cmdBenchRegistry runs nodal bench registry: node a in this process, b and
// c in child OS processes on loopback. It registers --names names on a from
// --callers goroutines and counts registrations per second until every
// one is visible on b and on c (their counts asked through their ctl
// services while a registers; the pushes of one node arrive in order, so
// the samples also bound each registration's time to be visible
// everywhere: its p50 and p99), then checks that b and c hold every name.
// Whereis on a is timed over the same names, and the CPU the three
// processes spent until the last name was visible is given per name,
// summed and for each process (a registers, b and c replicate).
func cmdBenchRegistry(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseBenchRegistryFlags(args)
	if err != nil {
		return err
	}
	stderr = &lockedWriter{w: stderr}
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

	reg := bp.local.Registry
	b, c := bp.peer.Name, up.Name
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := waitFor(wctx, func() bool {
		_ = bp.local.Connect(wctx, c) // fails until c's membership reaches a
		return len(reg.Nodes()) >= 2
	}); err != nil {
		return fmt.Errorf("registry on %s, %s: %w (have %v)", b, c, err, reg.Nodes())
	}
	n := bp.local.Node
	pids := make([]nodal.Pid, o.Names)
	names := make([]string, o.Names)
	for i := range pids {
		if pids[i], err = n.SpawnActor(nodal.ActorFunc(func(*nodal.Process, any) error { return nil })); err != nil {
			return err
		}
		names[i] = fmt.Sprintf("bench-%07d", i)
	}
	// cpu3 is the CPU time each of the three processes (a, b, c) has used
	// so far (the three-node figure; steadier than the rate on a shared
	// machine).
	cpu3 := func() ([3]time.Duration, error) {
		s, err := bp.cpu()
		if err != nil {
			return [3]time.Duration{}, err
		}
		t, err := cpuOf(third.cmd.Process.Pid)
		return [3]time.Duration{s.self, s.child, t}, err
	}
	var figs []figure
	err = bp.inProcess(func(p *nodal.Process) error {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		cpu0, err := cpu3()
		if err != nil {
			return err
		}
		start := time.Now()
		var next atomic.Int64
		var wg sync.WaitGroup
		errc := make(chan error, o.Callers)
		done := make([]time.Duration, o.Names) // when each Register returned, since start
		for range o.Callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := int(next.Add(1)) - 1; i < o.Names; i = int(next.Add(1)) - 1 {
					if err := reg.Register(rctx, names[i], pids[i]); err != nil {
						errc <- err
						return
					}
					done[i] = time.Since(start)
				}
			}()
		}
		// While they register, b and c are asked by turns how many names
		// they see, at most every 250 us, until both see all: the samples
		// (each timed by the node that counted) bound each registration's
		// time to be visible everywhere.
		polls, err := pollCounts(rctx, p, []string{b, c}, o.Names, 250*time.Microsecond, start)
		if err != nil {
			cancel() // the callers stop at their next Register
			wg.Wait()
			return err
		}
		wg.Wait()
		visible := time.Since(start)
		local := slices.Max(done)
		select {
		case err := <-errc:
			return err
		default:
		}
		lagP50, lagP99 := visibleLag(done, polls)
		cpu1, err := cpu3()
		if err != nil {
			return err
		}
		for _, node := range []string{b, c} {
			v, err := p.CallName(rctx, node, ctlServiceName, ctlRequest{Cmd: "registered", Args: []string{"--count"}})
			if err != nil {
				return err
			}
			if r, ok := v.(ctlResponse); !ok || r.Count < o.Names {
				return fmt.Errorf("%s holds %d of %d names when the last is visible", node, r.Count, o.Names)
			}
		}
		const lookups = 1_000_000
		t := time.Now()
		for i := range lookups {
			if _, ok := reg.Whereis(names[i%o.Names]); !ok {
				return fmt.Errorf("whereis %s: missing", names[i%o.Names])
			}
		}
		whereis := time.Since(t)
		perName := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(o.Names) }
		figs = append(figs,
			figure{"registrations_per_s_visible_on_3_nodes", float64(o.Names) / visible.Seconds(), "/s"},
			figure{"register_calls_per_s_on_a", float64(o.Names) / local.Seconds(), "/s"},
			figure{"all_visible_ms", float64(visible.Microseconds()) / 1e3, "ms"},
			figure{"visible_everywhere_p50_ms", float64(lagP50.Microseconds()) / 1e3, "ms"},
			figure{"visible_everywhere_p99_ms", float64(lagP99.Microseconds()) / 1e3, "ms"},
			figure{"cpu_us_per_registration_3_nodes", perName(cpu1[0] - cpu0[0] + cpu1[1] - cpu0[1] + cpu1[2] - cpu0[2]), "µs"},
			figure{"cpu_us_per_registration_a", perName(cpu1[0] - cpu0[0]), "µs"},
			figure{"cpu_us_per_registration_b", perName(cpu1[1] - cpu0[1]), "µs"},
			figure{"cpu_us_per_registration_c", perName(cpu1[2] - cpu0[2]), "µs"},
			figure{"whereis_ns", float64(whereis.Nanoseconds()) / lookups, "ns"},
		)
		return nil
	})
	if err != nil {
		return err
	}
	for _, f := range figs {
		fmt.Fprintln(stdout, f)
	}
	return nil
}

// countSample is how many names a node saw, and when (since the start, by
// the node's own clock: bench registry's three processes share one).
type countSample struct {
	at    time.Duration
	count int
}

// pollCounts asks nodes by turns, every interval, how many global names
// they see (ctl registered --count, a count without a copy of the names),
// until each sees want; it returns each node's samples in time order.
func pollCounts(ctx context.Context, p *nodal.Process, nodes []string, want int, interval time.Duration, start time.Time) ([][]countSample, error) {
	polls := make([][]countSample, len(nodes))
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for left, k := len(nodes), 0; left > 0; k = (k + 1) % len(nodes) {
		if s := polls[k]; len(s) > 0 && s[len(s)-1].count >= want {
			continue // this one is done
		}
		v, err := p.CallName(ctx, nodes[k], ctlServiceName, ctlRequest{Cmd: "registered", Args: []string{"--count"}})
		if err != nil {
			return nil, err
		}
		r, ok := v.(ctlResponse)
		if !ok || !r.NamesCounted {
			return nil, fmt.Errorf("%s: unexpected answer %v to registered --count", nodes[k], v)
		}
		polls[k] = append(polls[k], countSample{at: time.Unix(0, r.CountedAt).Sub(start), count: r.Count})
		if r.Count >= want {
			left--
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
	return polls, nil
}

// visibleLag returns the median and the 99th percentile of the time from a
// registration's return to its being visible on every polled node. One
// owner's names reach a replica in the order they were registered, so the
// k-th registration to return is visible on a node from its first sample
// counting more than k names: an upper bound, by up to the time between
// two samples.
func visibleLag(done []time.Duration, polls [][]countSample) (p50, p99 time.Duration) {
	order := slices.Clone(done)
	slices.Sort(order)
	lags := make([]time.Duration, len(order))
	for _, samples := range polls {
		j := 0
		for k, at := range order {
			for j < len(samples) && samples[j].count <= k {
				j++
			}
			if j == len(samples) {
				break // not seen by the last sample: cannot happen when it counted all
			}
			lags[k] = max(lags[k], samples[j].at-at)
		}
	}
	slices.Sort(lags)
	return lags[len(lags)/2], lags[min(len(lags)*99/100, len(lags)-1)]
}
