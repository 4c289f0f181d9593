package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/p2p"
)

// benchOptions are the flags of nodal bench remote and nodal bench call.
type benchOptions struct {
	Senders  int
	Size     int
	Duration time.Duration
	Calls    int
	Floor    bool // also measure the transport floor, in the same run
}

// maxBenchSize bounds --size (a message must fit in one frame).
const maxBenchSize = 4 << 20

// parseBenchFlags parses the flags of bench remote or bench call.
func parseBenchFlags(kind string, args []string) (benchOptions, error) {
	fs := newFlagSet("bench " + kind)
	o := benchOptions{Senders: 1, Size: 32, Duration: 5 * time.Second}
	fs.DurationVar(&o.Duration, "duration", o.Duration, "how long to measure")
	switch kind {
	case "remote":
		fs.IntVar(&o.Senders, "senders", o.Senders, "sending processes")
		fs.IntVar(&o.Size, "size", o.Size, "payload bytes")
		fs.BoolVar(&o.Floor, "floor", false, "also measure Noise without a muxer on one TCP connection, and the ratio")
	case "call":
		fs.IntVar(&o.Calls, "calls", 0, "number of measured calls (instead of --duration)")
		fs.BoolVar(&o.Floor, "floor", false, "also measure the round trip on raw TCP, on Noise, and on Noise with one hand-off per direction, and the ratios")
	case "floor":
		fs.IntVar(&o.Size, "size", 1024, "payload bytes of the throughput run")
	default:
		return o, usagef("bench: unknown benchmark %q (want remote or call; or floor, rpc)", kind)
	}
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, usagef("bench %s: unexpected argument %q", kind, fs.Arg(0))
	}
	durationSet, callsSet := false, false
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "duration":
			durationSet = true
		case "calls":
			callsSet = true
		}
	})
	switch {
	case o.Duration <= 0:
		return o, usagef("--duration must be positive")
	case o.Senders < 1 || o.Senders > 1024:
		return o, usagef("--senders must be 1..1024")
	case o.Size < 0 || o.Size > maxBenchSize:
		return o, usagef("--size must be 0..%d", maxBenchSize)
	case o.Calls < 0:
		return o, usagef("--calls must be positive")
	case durationSet && callsSet:
		return o, usagef("give --duration or --calls, not both")
	}
	return o, nil
}

// cmdBench runs nodal bench remote or nodal bench call.
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("bench: want remote or call; or floor, rpc")
	}
	switch args[0] {
	case "rpc":
		return cmdBenchRPC(ctx, args[1:], stdout, stderr)
	case floorPeerArg:
		return runFloorPeer(args[1:], stdout)
	}
	if args[0] == "registry" {
		return cmdBenchRegistry(ctx, args[1:], stdout, stderr)
	}
	o, err := parseBenchFlags(args[0], args[1:])
	if err != nil {
		return err
	}
	if args[0] == "floor" {
		return benchFloor(ctx, o, stdout)
	}
	pair, err := startBenchPair(ctx, stderr)
	if err != nil {
		return err
	}
	defer func() {
		if pair != nil {
			pair.close()
		}
	}()
	var figs []figure
	if args[0] == "remote" {
		figs, err = pair.benchRemote(ctx, o)
	} else {
		figs, err = pair.benchCall(ctx, o)
	}
	if err != nil {
		return err
	}
	if o.Floor {
		pair.close() // the floor runs alone, as nodal did
		pair = nil
		if figs, err = withFloor(ctx, args[0], o, figs); err != nil {
			return err
		}
	}
	for _, f := range figs {
		fmt.Fprintln(stdout, f)
	}
	return nil
}

// figure is one benchmark result line: "name value unit".
type figure struct {
	Name  string
	Value float64
	Unit  string
}

func (f figure) String() string {
	v := strconv.FormatFloat(f.Value, 'f', 1, 64)
	if f.Value >= 1000 {
		v = strconv.FormatFloat(f.Value, 'f', 0, 64)
	}
	if f.Unit == "x" || f.Value < 10 { // a ratio, or a small figure (CPU per message)
		v = strconv.FormatFloat(f.Value, 'f', 2, 64)
	}
	return f.Name + " " + v + " " + f.Unit
}

// benchPair is this process's node and a node in a child OS process,
// connected on loopback.
type benchPair struct {
	local  *runningNode
	child  *childNode
	peer   upInfo // the child's up line
	cookie string // the pair's cookie, for more children (bench rpc, bench registry)
}

// childNode is a node in a child OS process (startChild), its stdout
// copied to a writer until it exits.
type childNode struct {
	cmd   *exec.Cmd
	up    upInfo
	drain sync.WaitGroup
}

// stop ends the child: SIGTERM (so it leaves and writes its profile, if
// any), then SIGKILL if it has not exited within stopTimeout.
func (c *childNode) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan struct{})
	go func() { // ends when the child's stdout closes
		c.drain.Wait()
		close(exited)
	}()
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		_ = c.cmd.Process.Kill()
	}
	_ = c.cmd.Wait()
	c.drain.Wait()
}

// randomCookie returns a fresh secret for a benchmark's two nodes.
func randomCookie() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// startBenchPair re-executes this binary as "start --profile local" with a
// random cookie, reads its up line and joins it with a node in this process.
func startBenchPair(ctx context.Context, stderr io.Writer) (*benchPair, error) {
	cookie, err := randomCookie()
	if err != nil {
		return nil, err
	}
	child, err := startChild(ctx, cookie, "bench-b@127.0.0.1", nil, stderr, io.Discard)
	if err != nil {
		return nil, err
	}
	up := child.up
	bp := &benchPair{child: child, peer: up, cookie: cookie}
	bp.local, err = startNode(ctx, startOptions{
		Name: "bench-a@127.0.0.1", Cookie: cookie, Listen: "127.0.0.1:0", Gossip: "127.0.0.1:0",
		Join: []string{up.Gossip}, Profile: p2p.ProfileLocal,
	}, io.Discard)
	if err != nil {
		bp.close()
		return nil, fmt.Errorf("start local node: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err = bp.local.Connect(cctx, up.Name)
	if err == nil {
		err = awaitPeer(cctx, bp.local.Node, up.Name)
	}
	if err != nil {
		bp.close()
		return nil, fmt.Errorf("connect to %s: %w", up.Name, err)
	}
	return bp, nil
}

// startChild starts this binary as a node in a child process (the cookie
// travels in the environment, not on the command line) and waits for its
// up line; the rest of its stdout is copied to stdout. The caller must
// stop the child.
func startChild(ctx context.Context, cookie, name string, join []string, stderr, stdout io.Writer) (*childNode, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"start", "--profile", "local", "--name", name, "--listen", "127.0.0.1:0", "--gossip", "127.0.0.1:0"}
	if len(join) > 0 {
		args = append(args, "--join", strings.Join(join, ","))
	}
	cmd := exec.Command(exe, args...)
	dieWithParent(cmd)
	cmd.Env = append(os.Environ(), cookieEnv+"="+cookie, "GOLOG_LOG_LEVEL=error")
	if path := os.Getenv(cpuProfileEnv); path != "" {
		// one profile per child: <path>.child-<name's part before '@'>
		cmd.Env = append(cmd.Env, cpuProfileEnv+"="+path+".child-"+strings.SplitN(name, "@", 2)[0])
	}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start child node: %w", err)
	}
	type result struct {
		up  upInfo
		err error
	}
	br := bufio.NewReader(out)
	ch := make(chan result, 1)
	go func() { // ends at the first line or when the child's stdout closes
		line, err := br.ReadString('\n')
		if err != nil {
			ch <- result{err: fmt.Errorf("child node exited before it was up: %w", err)}
			return
		}
		up, err := parseUpLine(line)
		ch <- result{up: up, err: err}
	}()
	kill := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	select {
	case r := <-ch:
		if r.err != nil {
			kill()
			return nil, r.err
		}
		c := &childNode{cmd: cmd, up: r.up}
		c.drain.Add(1)
		go func() { // ends when the child exits and its stdout closes
			defer c.drain.Done()
			_, _ = io.Copy(stdout, br)
		}()
		return c, nil
	case <-time.After(startTimeout):
		kill()
		<-ch
		return nil, errors.New("child node not up within 30s")
	case <-ctx.Done():
		kill()
		<-ch
		return nil, ctx.Err()
	}
}

// close stops the local node and the child.
func (bp *benchPair) close() {
	if bp.local != nil {
		_ = stopNode(bp.local.Node)
	}
	if bp.child != nil {
		bp.child.stop()
	}
}

// upInfo is what an up line tells.
type upInfo struct {
	Name        string
	Listen      string
	Gossip      string
	Incarnation uint64
}

// parseUpLine reads "node NAME up listen=HOST:PORT gossip=HOST:PORT incarnation=N".
func parseUpLine(line string) (upInfo, error) {
	f := strings.Fields(line)
	if len(f) != 6 || f[0] != "node" || f[2] != "up" {
		return upInfo{}, fmt.Errorf("not an up line: %q", strings.TrimSpace(line))
	}
	u := upInfo{Name: f[1]}
	for _, kv := range f[3:] {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "listen":
			u.Listen = v
		case "gossip":
			u.Gossip = v
		case "incarnation":
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return upInfo{}, fmt.Errorf("bad incarnation in up line: %q", v)
			}
			u.Incarnation = n
		}
	}
	if u.Listen == "" || u.Gossip == "" || u.Incarnation == 0 {
		return upInfo{}, fmt.Errorf("incomplete up line: %q", strings.TrimSpace(line))
	}
	return u, nil
}

// cpuSample is the CPU time both processes have used so far.
type cpuSample struct {
	self, child time.Duration
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times (100 on Linux).
const clockTicks = 100

func (bp *benchPair) cpu() (cpuSample, error) {
	self, err := selfCPU()
	if err != nil {
		return cpuSample{}, err
	}
	child, err := cpuOf(bp.child.cmd.Process.Pid)
	if err != nil {
		return cpuSample{}, err
	}
	return cpuSample{self: self, child: child}, nil
}

// selfCPU is the user and system CPU time this process has used.
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// cpuOf is the user and system CPU time the process pid has used.
func cpuOf(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the parenthesised command name: state is field 3,
	// utime 14 and stime 15.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc stat for process %d", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

func (c cpuSample) since(c0 cpuSample) time.Duration {
	return c.self - c0.self + c.child - c0.child
}

// peakRSS returns the peak resident set of this process and of the child, in MB.
func (bp *benchPair) peakRSS() (self, child float64) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		self = float64(ru.Maxrss) / 1024
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", bp.child.cmd.Process.Pid))
	if err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
				child = kb / 1024
			}
		}
	}
	return self, child
}

// inProcess runs f in a process of the local node and returns its error.
func (bp *benchPair) inProcess(f func(p *nodal.Process) error) error {
	errc := make(chan error, 1)
	_, err := bp.local.Spawn(func(p *nodal.Process) error {
		errc <- f(p)
		return nil
	})
	if err != nil {
		return err
	}
	return <-errc
}

// benchRemote measures one-way throughput to a sink on the child node:
// senders send for the duration, then a done marker each; the sink acks
// the total it received once every marker is in. Only acknowledged
// messages count, over the time from the first send to the ack.
func (bp *benchPair) benchRemote(ctx context.Context, o benchOptions) ([]figure, error) {
	var figs []figure
	err := bp.inProcess(func(p *nodal.Process) error {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		sink, err := p.SpawnOn(sctx, bp.peer.Name, "bench_sink", benchSinkArgs{Reply: p.Self(), Senders: o.Senders})
		cancel()
		if err != nil {
			return fmt.Errorf("spawn bench_sink on %s: %w", bp.peer.Name, err)
		}
		ref := p.Monitor(sink)
		st0 := bp.local.DistStats().P2P.Total
		c0, err := bp.cpu()
		if err != nil {
			return err
		}
		start := time.Now()
		end := start.Add(o.Duration)
		for range o.Senders {
			if _, err := p.Spawn(func(s *nodal.Process) error {
				// Boxed once: the conversion of a []byte to the
				// message's interface is the caller's allocation, not
				// nodal's.
				var payload any = make([]byte, o.Size)
				for time.Now().Before(end) {
					for range 64 {
						s.Send(sink, payload)
					}
				}
				s.Send(sink, benchDone{})
				return nil
			}); err != nil {
				return err
			}
		}
		wctx, cancel := context.WithTimeout(ctx, o.Duration+2*time.Minute)
		defer cancel()
		m, err := p.ReceiveMatch(wctx, func(m any) bool {
			switch m := m.(type) {
			case benchAck:
				return true
			case nodal.Down:
				return m.Ref == ref
			}
			return false
		})
		if err != nil {
			return fmt.Errorf("wait for the sink's ack: %w", err)
		}
		elapsed := time.Since(start)
		ack, ok := m.(benchAck)
		if !ok {
			return fmt.Errorf("sink exited before its ack: %v", m.(nodal.Down).Reason)
		}
		c1, err := bp.cpu()
		if err != nil {
			return err
		}
		st1 := bp.local.DistStats().P2P.Total
		secs := elapsed.Seconds()
		selfRSS, childRSS := bp.peakRSS()
		figs = []figure{
			{"remote_send_msgs_per_s", float64(ack.Messages) / secs, "msg/s"},
			{"remote_send_mb_per_s", float64(ack.Bytes) / 1e6 / secs, "MB/s"},
			{"remote_send_cpu_us_per_msg", float64(c1.since(c0).Microseconds()) / float64(max(ack.Messages, 1)), "us"},
			{"remote_send_cpu_us_per_msg_sender", float64((c1.self - c0.self).Nanoseconds()) / 1e3 / float64(max(ack.Messages, 1)), "us"},
			{"remote_send_cpu_us_per_msg_receiver", float64((c1.child - c0.child).Nanoseconds()) / 1e3 / float64(max(ack.Messages, 1)), "us"},
			{"remote_send_messages", float64(ack.Messages), "msg"},
			{"remote_send_frame_bytes_per_msg", float64(st1.BytesOut-st0.BytesOut) / float64(max(ack.Messages, 1)), "B"},
			{"remote_send_elapsed_s", secs, "s"},
			{"remote_send_sender_peak_rss_mb", selfRSS, "MB"},
			{"remote_send_receiver_peak_rss_mb", childRSS, "MB"},
		}
		return nil
	})
	return figs, err
}

// benchCall measures sequential call latency to an echo on the child node:
// 1,000 warm-up calls, then --calls calls or calls for --duration.
func (bp *benchPair) benchCall(ctx context.Context, o benchOptions) ([]figure, error) {
	var figs []figure
	err := bp.inProcess(func(p *nodal.Process) error {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		echo, err := p.SpawnOn(sctx, bp.peer.Name, "echo", nil)
		cancel()
		if err != nil {
			return fmt.Errorf("spawn echo on %s: %w", bp.peer.Name, err)
		}
		call := func() error {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_, err := p.Call(cctx, echo, "ping")
			return err
		}
		for range 1000 {
			if err := call(); err != nil {
				return fmt.Errorf("warm-up call: %w", err)
			}
		}
		lat := make([]time.Duration, 0, max(o.Calls, 1<<16))
		st0 := bp.local.DistStats().P2P.Total
		c0, err := bp.cpu()
		if err != nil {
			return err
		}
		start := time.Now()
		end := start.Add(o.Duration)
		for i := 0; ; i++ {
			if o.Calls > 0 && i == o.Calls || o.Calls == 0 && !time.Now().Before(end) {
				break
			}
			t := time.Now()
			if err := call(); err != nil {
				return fmt.Errorf("call: %w", err)
			}
			lat = append(lat, time.Since(t))
		}
		elapsed := time.Since(start)
		c1, err := bp.cpu()
		if err != nil {
			return err
		}
		st1 := bp.local.DistStats().P2P.Total
		slices.Sort(lat)
		q := func(f float64) float64 {
			i := min(int(f*float64(len(lat))), len(lat)-1)
			return float64(lat[i].Nanoseconds()) / 1e3
		}
		var sum time.Duration
		for _, d := range lat {
			sum += d
		}
		n := float64(len(lat))
		figs = []figure{
			{"call_p50_us", q(0.50), "us"},
			{"call_p99_us", q(0.99), "us"},
			{"call_p999_us", q(0.999), "us"},
			{"call_mean_us", float64(sum.Nanoseconds()) / 1e3 / n, "us"},
			{"call_per_s", n / elapsed.Seconds(), "call/s"},
			{"call_cpu_us_per_call", float64(c1.since(c0).Microseconds()) / n, "us"},
			{"call_cpu_us_per_call_caller", float64((c1.self - c0.self).Nanoseconds()) / 1e3 / n, "us"},
			{"call_cpu_us_per_call_callee", float64((c1.child - c0.child).Nanoseconds()) / 1e3 / n, "us"},
			{"call_frames_out_per_call", float64(st1.FramesOut-st0.FramesOut) / n, "frame"},
			{"call_frames_in_per_call", float64(st1.FramesIn-st0.FramesIn) / n, "frame"},
			{"call_count", n, "call"},
		}
		return nil
	})
	return figs, err
}

// latencyFloors are the round-trip floors bench call is measured against,
// as floorLatency's variant and mode: raw TCP; Noise on it; Noise with one
// goroutine hand-off per direction.
var latencyFloors = [][2]string{{"tcp", "lat"}, {"noise", "lat"}, {"noise", "lat-handoff"}}

// floorLatencies measures each of latencyFloors for d, one after another.
func floorLatencies(ctx context.Context, d time.Duration) ([]figure, error) {
	var figs []figure
	for _, f := range latencyFloors {
		fl, err := floorLatency(ctx, f[0], f[1], d)
		if err != nil {
			return nil, err
		}
		figs = append(figs, fl...)
	}
	return figs, nil
}

// benchFloor runs the floor alone: the round-trip floors, then Noise
// throughput at 32 bytes and at --size.
func benchFloor(ctx context.Context, o benchOptions, stdout io.Writer) error {
	figs, err := floorLatencies(ctx, o.Duration)
	if err != nil {
		return err
	}
	for _, size := range []int{32, o.Size} {
		t, err := floorThroughput(ctx, size, o.Duration)
		if err != nil {
			return err
		}
		for _, f := range t {
			f.Name = strings.Replace(f.Name, "floor_noise_", fmt.Sprintf("floor_noise_%dB_", size), 1)
			figs = append(figs, f)
		}
	}
	for _, f := range figs {
		fmt.Fprintln(stdout, f)
	}
	return nil
}

// withFloor measures the floor of a bench call or remote run right after
// it and adds the floor's figures and nodal's ratios to them.
func withFloor(ctx context.Context, kind string, o benchOptions, figs []figure) ([]figure, error) {
	get := func(fs []figure, name string) float64 {
		for _, f := range fs {
			if f.Name == name {
				return f.Value
			}
		}
		return 0
	}
	ratio := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	if kind == "call" {
		fl, err := floorLatencies(ctx, o.Duration)
		if err != nil {
			return nil, err
		}
		figs = append(figs, fl...)
		return append(figs,
			figure{"call_p50_vs_tcp_rtt_p50", ratio(get(figs, "call_p50_us"), get(fl, "floor_tcp_rtt_p50_us")), "x"},
			figure{"call_p99_vs_tcp_rtt_p99", ratio(get(figs, "call_p99_us"), get(fl, "floor_tcp_rtt_p99_us")), "x"},
			figure{"noise_rtt_p50_vs_tcp_rtt_p50", ratio(get(fl, "floor_noise_rtt_p50_us"), get(fl, "floor_tcp_rtt_p50_us")), "x"},
			figure{"call_p50_vs_noise_handoff_rtt_p50", ratio(get(figs, "call_p50_us"), get(fl, "floor_noise_handoff_rtt_p50_us")), "x"},
			figure{"call_p99_vs_noise_handoff_rtt_p99", ratio(get(figs, "call_p99_us"), get(fl, "floor_noise_handoff_rtt_p99_us")), "x"},
		), nil
	}
	fl, err := floorThroughput(ctx, o.Size, o.Duration)
	if err != nil {
		return nil, err
	}
	figs = append(figs, fl...)
	return append(figs,
		figure{"remote_send_vs_noise_floor", ratio(get(figs, "remote_send_msgs_per_s"), get(fl, "floor_noise_msgs_per_s")), "x"},
	), nil
}
