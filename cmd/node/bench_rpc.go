package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/rpc"
)

// benchRPCOptions are the flags of nodal bench rpc.
type benchRPCOptions struct {
	Calls    int             // sequential calls measured per kind
	Duration time.Duration   // per throughput figure
	Items    int             // pmap items
	Only     map[string]bool // the parts to run (benchRPCParts); all when empty
}

// benchRPCParts are the parts of nodal bench rpc, in the order they run.
var benchRPCParts = []string{"lat", "tput", "pmap"}

func (o benchRPCOptions) runs(part string) bool { return len(o.Only) == 0 || o.Only[part] }

func parseBenchRPCFlags(args []string) (benchRPCOptions, error) {
	fs := newFlagSet("bench rpc")
	o := benchRPCOptions{Calls: 20000, Duration: 2 * time.Second, Items: 10000}
	fs.IntVar(&o.Calls, "calls", o.Calls, "sequential calls measured per kind (rpc, plain process Call, multicall)")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "how long each throughput figure is measured")
	fs.IntVar(&o.Items, "items", o.Items, "pmap items")
	only := fs.String("only", "", "comma-separated parts to run: lat (sequential calls and multicall), tput (calls/s), pmap; all when empty")
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	if *only != "" {
		o.Only = map[string]bool{}
		for _, part := range strings.Split(*only, ",") {
			if !slices.Contains(benchRPCParts, part) {
				return o, usagef("--only: unknown part %q (want %s)", part, strings.Join(benchRPCParts, ", "))
			}
			o.Only[part] = true
		}
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
	pids := []int{bp.child.cmd.Process.Pid, third.cmd.Process.Pid}
	var figs []figure
	err = bp.inProcess(func(p *nodal.Process) error {
		f, err := benchRPCRun(ctx, p, r, b, c, pids, o)
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

// cpu3 is the CPU time this process and two others (b and c, or the two
// floor peers) used.
type cpu3 [3]time.Duration

func readCPU3(pids []int) (cpu3, error) {
	var c cpu3
	var err error
	if c[0], err = selfCPU(); err != nil {
		return c, err
	}
	for i, pid := range pids {
		if c[i+1], err = cpuOf(pid); err != nil {
			return c, err
		}
	}
	return c, nil
}

func (c cpu3) sub(c0 cpu3) cpu3 { return cpu3{c[0] - c0[0], c[1] - c0[1], c[2] - c0[2]} }

// sysCounts are a process's read and write syscalls (/proc/PID/io) and
// voluntary context switches (summed over its threads: a thread that
// blocked, in a futex sleep of the Go scheduler or a wait for the network;
// involuntary ones are other processes' load): what a call costs the
// kernel and the scheduler beyond CPU time.
type sysCounts struct{ reads, writes, switches uint64 }

// readSysCounts reads pid's counts ("self" for this process).
func readSysCounts(pid string) (sysCounts, error) {
	var c sysCounts
	b, err := os.ReadFile("/proc/" + pid + "/io")
	if err != nil {
		return c, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "syscr: "); ok {
			c.reads, _ = strconv.ParseUint(v, 10, 64)
		} else if v, ok := strings.CutPrefix(l, "syscw: "); ok {
			c.writes, _ = strconv.ParseUint(v, 10, 64)
		}
	}
	tasks, err := filepath.Glob("/proc/" + pid + "/task/*/status")
	if err != nil {
		return c, err
	}
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread ended
		}
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && k == "voluntary_ctxt_switches" {
				n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
				c.switches += n
			}
		}
	}
	return c, nil
}

func (c sysCounts) sub(c0 sysCounts) sysCounts {
	return sysCounts{c.reads - c0.reads, c.writes - c0.writes, c.switches - c0.switches}
}

// perCall is n per call.
func perCall(n uint64, calls int64) float64 { return float64(n) / float64(max(calls, 1)) }

// perOp is d per operation, in microseconds.
func perOp(d time.Duration, ops int) float64 {
	return float64(d.Nanoseconds()) / 1e3 / float64(max(ops, 1))
}

func benchRPCRun(ctx context.Context, p *nodal.Process, r *rpc.RPC, b, c string, pids []int, o benchRPCOptions) ([]figure, error) {
	var echoes [2]nodal.Pid
	for i, node := range []string{b, c} {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		echo, err := p.SpawnOn(sctx, node, "echo", nil)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("spawn echo on %s: %w", node, err)
		}
		echoes[i] = echo
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Minute) // a deadline: no per-call timer
	defer cancel()
	var figs []figure
	if o.runs("lat") {
		f, err := benchRPCLatency(cctx, p, r, b, c, echoes, pids, o)
		if err != nil {
			return nil, err
		}
		figs = append(figs, f...)
	}
	if o.runs("tput") {
		f, err := benchRPCThroughput(cctx, p, r, b, echoes[0], pids, o)
		if err != nil {
			return nil, err
		}
		figs = append(figs, f...)
	}
	if o.runs("pmap") {
		f, err := benchRPCPmap(cctx, r, o)
		if err != nil {
			return nil, err
		}
		figs = append(figs, f...)
	}
	return figs, nil
}

// benchRPCLatency measures sequential latency, interleaved in blocks of 500
// so that the kinds share the machine's conditions: a plain process Call
// a->b, an rpc call a->b, a multicall to b and c, the same fan-out by hand
// with async requests (timing its parts), and the floor of a fan-out with
// plain processes: one process sends a request to an echo on b and on c and
// waits for both replies (a monitor and a message to each; the monitors end
// after the replies).
func benchRPCLatency(cctx context.Context, p *nodal.Process, r *rpc.RPC, b, c string, echoes [2]nodal.Pid, pids []int, o benchRPCOptions) ([]figure, error) {
	// Parts of the fan-out by hand: both requests sent, first and second
	// reply in, from its start; and each request's send alone (a send
	// whose write woke a callee onto the caller's vCPU waits for it: the
	// tail of these, not their median, is what makes the fan-out serial).
	var parts [3][]time.Duration
	var sends [2][]time.Duration
	plain := func() error { _, err := p.Call(cctx, echoes[0], "ping"); return err }
	call := func() error { _, err := r.Call(cctx, b, "rpc.echo", "ping"); return err }
	multi := func() error {
		res, bad, err := r.Multicall(cctx, []string{b, c}, "rpc.echo", "ping")
		if err == nil && len(bad) > 0 {
			err = fmt.Errorf("bad nodes %v: %v", bad, res)
		}
		return err
	}
	byHand := func() error {
		t0 := time.Now()
		reqs := rpc.NewRequests[int](r)
		ts := t0
		for i, node := range []string{b, c} {
			if err := reqs.Send(cctx, node, "rpc.echo", "ping", i); err != nil {
				return err
			}
			te := time.Now()
			sends[i] = append(sends[i], te.Sub(ts))
			ts = te
		}
		t1 := ts
		var at [2]time.Time
		for i := range at {
			resp, err := reqs.Receive(cctx)
			if err == nil {
				err = resp.Err
			}
			if err != nil {
				return err
			}
			at[i] = time.Now()
		}
		parts[0] = append(parts[0], t1.Sub(t0))
		parts[1] = append(parts[1], at[0].Sub(t0))
		parts[2] = append(parts[2], at[1].Sub(t0))
		return nil
	}
	floor := func() error {
		var refs [2]nodal.Ref
		for i, echo := range echoes {
			refs[i] = p.Monitor(echo)
			if err := p.Send(echo, nodal.CallRequest{From: nodal.From{Pid: p.Self(), Ref: refs[i]}, Req: "ping"}); err != nil {
				return err
			}
		}
		for range refs {
			m, err := p.ReceiveMatch(cctx, func(m any) bool {
				rep, ok := m.(nodal.CallReply)
				return ok && (rep.Ref == refs[0] || rep.Ref == refs[1])
			})
			if err != nil {
				return err
			}
			_ = m
		}
		for _, ref := range refs {
			p.Demonitor(ref, true)
		}
		return nil
	}
	// The machine's floor: 32-byte round trips on raw TCP to one and to two
	// peer processes (written to both, then both answers read).
	var peers [2]*floorConn
	for i := range peers {
		fc, err := startFloor(cctx, "tcp", "lat")
		if err != nil {
			return nil, err
		}
		defer fc.close()
		peers[i] = fc
	}
	peerPids := []int{peers[0].cmd.Process.Pid, peers[1].cmd.Process.Pid}
	frame := make([]byte, 4+floorLatPayload)
	binary.LittleEndian.PutUint32(frame, floorLatPayload)
	answer := make([]byte, len(frame))
	tcpTo := func(fcs ...*floorConn) error {
		for _, fc := range fcs {
			if _, err := fc.bw.Write(frame); err != nil {
				return err
			}
			if err := fc.bw.Flush(); err != nil {
				return err
			}
		}
		for _, fc := range fcs {
			if _, err := io.ReadFull(fc.br, answer); err != nil {
				return err
			}
		}
		return nil
	}
	tcp1 := func() error { return tcpTo(peers[0]) }
	tcp2 := func() error { return tcpTo(peers[0], peers[1]) }
	names := []string{"plain_call", "rpc_call", "multicall2", "multicall2_by_hand", "plain_fanout2", "tcp_rtt", "tcp_fanout2"}
	kinds := []func() error{plain, call, multi, byHand, floor, tcp1, tcp2}
	for _, f := range kinds { // warm-up
		for range 1000 {
			if err := f(); err != nil {
				return nil, fmt.Errorf("warm-up: %w", err)
			}
		}
	}
	for i := range parts {
		parts[i] = parts[i][:0]
	}
	for i := range sends {
		sends[i] = sends[i][:0]
	}
	lat := make([][]time.Duration, len(kinds))
	cpu := make([]cpu3, len(kinds))
	for done := 0; done < o.Calls; done += 500 {
		for k, f := range kinds {
			pids := pids
			if strings.HasPrefix(names[k], "tcp_") {
				pids = peerPids
			}
			c0, err := readCPU3(pids)
			if err != nil {
				return nil, err
			}
			for range 500 {
				t := time.Now()
				if err := f(); err != nil {
					return nil, fmt.Errorf("%s: %w", names[k], err)
				}
				lat[k] = append(lat[k], time.Since(t))
			}
			c1, err := readCPU3(pids)
			if err != nil {
				return nil, err
			}
			d := c1.sub(c0)
			for i := range d {
				cpu[k][i] += d[i]
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
	for _, l := range parts {
		slices.Sort(l)
	}
	for _, l := range sends {
		slices.Sort(l)
	}
	var figs []figure
	for k, name := range names {
		figs = append(figs,
			figure{name + "_p50_us", q(lat[k], .5), "us"},
			figure{name + "_p99_us", q(lat[k], .99), "us"},
			figure{name + "_cpu_us_a", perOp(cpu[k][0], len(lat[k])), "us"},
			figure{name + "_cpu_us_b", perOp(cpu[k][1], len(lat[k])), "us"},
		)
		if k >= 2 && k != 5 {
			figs = append(figs, figure{name + "_cpu_us_c", perOp(cpu[k][2], len(lat[k])), "us"})
		}
	}
	figs = append(figs,
		figure{"multicall2_by_hand_sent_p50_us", q(parts[0], .5), "us"},
		figure{"multicall2_by_hand_sent_p90_us", q(parts[0], .9), "us"},
		figure{"multicall2_by_hand_send1_p50_us", q(sends[0], .5), "us"},
		figure{"multicall2_by_hand_send1_p90_us", q(sends[0], .9), "us"},
		figure{"multicall2_by_hand_send2_p50_us", q(sends[1], .5), "us"},
		figure{"multicall2_by_hand_send2_p90_us", q(sends[1], .9), "us"},
		figure{"multicall2_by_hand_first_reply_p50_us", q(parts[1], .5), "us"},
		figure{"multicall2_by_hand_second_reply_p50_us", q(parts[2], .5), "us"},
		figure{"rpc_vs_plain_p50_ratio", q(lat[1], .5) / q(lat[0], .5), "x"},
		figure{"rpc_vs_plain_p99_ratio", q(lat[1], .99) / q(lat[0], .99), "x"},
		figure{"multicall2_vs_call_p50_ratio", q(lat[2], .5) / q(lat[1], .5), "x"},
		figure{"plain_fanout2_vs_plain_call_p50_ratio", q(lat[4], .5) / q(lat[0], .5), "x"},
		figure{"multicall2_vs_plain_fanout2_p50_ratio", q(lat[2], .5) / q(lat[4], .5), "x"},
		figure{"tcp_fanout2_vs_tcp_rtt_p50_ratio", q(lat[6], .5) / q(lat[5], .5), "x"},
		figure{"rpc_call_vs_tcp_rtt_p50_ratio", q(lat[1], .5) / q(lat[5], .5), "x"},
		figure{"multicall2_vs_tcp_fanout2_p50_ratio", q(lat[2], .5) / q(lat[6], .5), "x"},
		// How much more a multicall costs over a call than the raw fan-out
		// over a raw round trip, in the same run: 1 means rpc fans out
		// as well as the machine does.
		figure{"multicall2_per_call_vs_tcp_fanout2_per_rtt_ratio", (q(lat[2], .5) / q(lat[1], .5)) / (q(lat[6], .5) / q(lat[5], .5)), "x"},
	)
	return figs, nil
}

// benchRPCThroughput measures calls/s with 1 and 16 concurrent callers
// (processes on a), rpc and plain process Call to b, and the CPU each call
// costs on a (caller) and b (callee).
func benchRPCThroughput(cctx context.Context, p *nodal.Process, r *rpc.RPC, b string, echo nodal.Pid, pids []int, o benchRPCOptions) ([]figure, error) {
	type sample struct {
		cpu            cpu3
		caller, callee sysCounts
		procs          uint64 // call processes the callee started
	}
	read := func() (sample, error) {
		var s sample
		var err error
		if s.cpu, err = readCPU3(pids); err != nil {
			return s, err
		}
		if s.caller, err = readSysCounts("self"); err != nil {
			return s, err
		}
		if s.callee, err = readSysCounts(strconv.Itoa(pids[0])); err != nil {
			return s, err
		}
		st, err := rpc.CallAs[rpc.Stats](cctx, r, b, "rpc.stats", nil)
		s.procs = st.CallProcs
		return s, err
	}
	rate := func(callers int, one func(pp *nodal.Process) error) (float64, sample, int64, error) {
		var n atomic.Int64
		var first atomic.Value
		s0, err := read()
		if err != nil {
			return 0, sample{}, 0, err
		}
		start := time.Now()
		end := start.Add(o.Duration)
		// Each caller is monitored: its Down comes however it ends, even
		// killed before its function ran.
		running := map[nodal.Ref]bool{}
		for range callers {
			_, ref, err := p.SpawnMonitor(func(pp *nodal.Process) error {
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
				return 0, sample{}, 0, err
			}
			running[ref] = true
		}
		wctx, cancel := context.WithDeadline(cctx, end.Add(time.Minute))
		defer cancel()
		for len(running) > 0 {
			m, err := p.ReceiveMatch(wctx, func(m any) bool { d, ok := m.(nodal.Down); return ok && running[d.Ref] })
			if err != nil {
				return 0, sample{}, 0, fmt.Errorf("callers still running: %w", err)
			}
			d := m.(nodal.Down)
			delete(running, d.Ref)
			if d.Reason != nil && !errors.Is(d.Reason, nodal.ReasonNormal) {
				first.CompareAndSwap(nil, fmt.Errorf("a caller ended: %w", d.Reason))
			}
		}
		el := time.Since(start)
		s1, err := read()
		if err != nil {
			return 0, sample{}, 0, err
		}
		if err, _ := first.Load().(error); err != nil {
			return 0, sample{}, 0, err
		}
		d := sample{cpu: s1.cpu.sub(s0.cpu), caller: s1.caller.sub(s0.caller), callee: s1.callee.sub(s0.callee), procs: s1.procs - s0.procs}
		return float64(n.Load()) / el.Seconds(), d, n.Load(), nil
	}
	rpcOne := func(*nodal.Process) error { _, err := r.Call(cctx, b, "rpc.echo", "ping"); return err }
	plainOne := func(pp *nodal.Process) error { _, err := pp.Call(cctx, echo, "ping"); return err }
	var figs []figure
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
		v, d, n, err := rate(tc.callers, tc.one)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tc.name, err)
		}
		base := strings.TrimSuffix(tc.name, "_per_s_1")
		base = strings.TrimSuffix(base, "_per_s_16")
		suffix := tc.name[strings.LastIndexByte(tc.name, '_'):]
		figs = append(figs, figure{tc.name, v, "call/s"},
			figure{base + "_cpu_us_caller" + suffix, perOp(d.cpu[0], int(n)), "us"},
			figure{base + "_cpu_us_callee" + suffix, perOp(d.cpu[1], int(n)), "us"},
			figure{base + "_writes_caller" + suffix, perCall(d.caller.writes, n), "/call"},
			figure{base + "_writes_callee" + suffix, perCall(d.callee.writes, n), "/call"},
			figure{base + "_reads_caller" + suffix, perCall(d.caller.reads, n), "/call"},
			figure{base + "_reads_callee" + suffix, perCall(d.callee.reads, n), "/call"},
			figure{base + "_switches_caller" + suffix, perCall(d.caller.switches, n), "/call"},
			figure{base + "_switches_callee" + suffix, perCall(d.callee.switches, n), "/call"})
		if strings.HasPrefix(tc.name, "rpc_") {
			figs = append(figs, figure{"rpc_call_procs_started" + suffix, perCall(d.procs, n), "/call"})
		}
	}
	return figs, nil
}

// benchRPCPmap measures a Pmap of small items over the three nodes.
func benchRPCPmap(cctx context.Context, r *rpc.RPC, o benchRPCOptions) ([]figure, error) {
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
	return []figure{
		{"pmap_items", float64(len(items)), "item"},
		{"pmap_ms", float64(el.Microseconds()) / 1e3, "ms"},
		{"pmap_items_per_s", float64(len(items)) / el.Seconds(), "item/s"},
	}, nil
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
