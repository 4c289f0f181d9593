package main

import (
	"context"
	"fmt"
	"io"
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
// --callers goroutines and counts registrations per second until the last
// one is visible on b and on c (asked through their ctl services; the pushes
// of one node arrive in order), then checks that b and c hold every name.
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
		for range o.Callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := int(next.Add(1)) - 1; i < o.Names; i = int(next.Add(1)) - 1 {
					if err := reg.Register(rctx, names[i], pids[i]); err != nil {
						errc <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		local := time.Since(start)
		select {
		case err := <-errc:
			return err
		default:
		}
		last := names[o.Names-1]
		poll := time.NewTicker(250 * time.Microsecond)
		defer poll.Stop()
		for _, node := range []string{b, c} {
			for {
				v, err := p.CallName(rctx, node, ctlServiceName, ctlRequest{Cmd: "whereis", Args: []string{last}})
				if err != nil {
					return err
				}
				if r, ok := v.(ctlResponse); ok && r.Pid == pids[o.Names-1].String() {
					break
				}
				// Not there yet: ask again shortly, so that the asking
				// costs the three processes little of the CPU measured.
				select {
				case <-rctx.Done():
					return rctx.Err()
				case <-poll.C:
				}
			}
		}
		visible := time.Since(start)
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
