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
	Rate    int // registrations started per second; 0: as fast as they go
}

func parseBenchRegistryFlags(args []string) (benchRegistryOptions, error) {
	fs := newFlagSet("bench registry")
	o := benchRegistryOptions{Names: 20000, Callers: 64}
	fs.IntVar(&o.Names, "names", o.Names, "names registered on node a")
	fs.IntVar(&o.Callers, "callers", o.Callers, "concurrent callers of Register on a")
	fs.IntVar(&o.Rate, "rate", 0, "registrations started per second (0: as fast as the callers go); the visibility figures are then those of that rate")
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
	case o.Rate < 0:
		return o, usagef("--rate must not be negative")
	}
	return o, nil
}

// cmdBenchRegistry runs nodal bench registry: node a in this process, b and
// c in child OS processes on loopback. It registers --names names on a from
// --callers goroutines (at --rate a second, or as fast as they go) and
// counts registrations per second until every one is visible on b and on
// c (each counts what it sees every 250 us while a registers, a
// bench_regwatch; the pushes of one node arrive in order, so the counts
// also bound each registration's time to be visible everywhere: its p50
// and p99), then checks that b and c hold every name.
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
		// b and c count the names they see while a registers (a
		// bench_regwatch on each): their samples bound each registration's
		// time to be visible everywhere.
		for _, node := range []string{b, c} {
			if _, err := p.SpawnOn(rctx, node, "bench_regwatch", benchRegWatchArgs{Reply: p.Self(), Want: o.Names}); err != nil {
				return fmt.Errorf("spawn bench_regwatch on %s: %w", node, err)
			}
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
					if o.Rate > 0 { // registration i starts at its slot of the schedule
						time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(o.Rate))))
					}
					if err := reg.Register(rctx, names[i], pids[i]); err != nil {
						errc <- err
						return
					}
					done[i] = time.Since(start)
				}
			}()
		}
		wg.Wait()
		local := slices.Max(done)
		select {
		case err := <-errc:
			return err
		default:
		}
		var polls [][]countSample
		var visible time.Duration // when the last name was visible on both
		for len(polls) < 2 {
			m, err := p.Receive(rctx)
			if err != nil {
				return fmt.Errorf("waiting for b and c to see %d names: %w", o.Names, err)
			}
			if s, ok := m.(benchRegSamples); ok && len(s.At) > 0 {
				ss := samplesOf(s, start)
				polls = append(polls, ss)
				visible = max(visible, ss[len(ss)-1].at)
			}
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

// samplesOf returns a bench_regwatch's samples as countSamples since start.
func samplesOf(s benchRegSamples, start time.Time) []countSample {
	out := make([]countSample, min(len(s.At), len(s.Count)))
	for i := range out {
		out[i] = countSample{at: time.Unix(0, s.At[i]).Sub(start), count: s.Count[i]}
	}
	return out
}

// visibleLag returns the median and the 99th percentile of the time from a
// registration's return to its being visible on every polled node. One
// owner's names reach a replica in the order they were registered, so the
// k-th registration to return is visible on a node from its first sample
// counting more than k names: an upper bound, by up to the time between
// two samples (a bench_regwatch's looks, 250 us apart).
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
