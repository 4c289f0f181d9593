package p2p

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The flood benchmarks re-execute the test binary as the attacker, so
// that its sockets count against its own file-descriptor limit.
const floodChildEnv = "NODAL_P2P_FLOOD_CHILD"

// raiseFDLimit lifts the soft RLIMIT_NOFILE to the hard limit.
func raiseFDLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	rl.Cur = rl.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	return rl.Cur
}

// floodChild is the attacker: spec is "target n src1,src2,...". It opens
// n TCP connections to target, round robin over the source addresses,
// and never sends a byte. It prints "OPENED ok failed" once every dial is
// done, then, when stdin closes, "DROPS quick slow open slowP50ms
// slowMaxms quickP50ms": how many connections the target closed within a
// second (refused) or later (dropped for want of a handshake), how many
// it still holds, and how long they took to go.
func floodChild(spec string) {
	raiseFDLimit()
	f := strings.Fields(spec)
	target := f[0]
	n, _ := strconv.Atoi(f[1])
	srcs := strings.Split(f[2], ",")
	var mu sync.Mutex
	var drops []time.Duration
	var conns []net.Conn
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range 64 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(srcs[int(i)%len(srcs)])}, Timeout: 10 * time.Second}
				c, err := d.Dial("tcp", target)
				if err != nil {
					failed.Add(1)
					continue
				}
				ok.Add(1)
				t0 := time.Now()
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
				go func() {
					var b [64]byte
					for {
						if _, err := c.Read(b[:]); err != nil {
							break
						}
					}
					d := time.Since(t0)
					mu.Lock()
					drops = append(drops, d)
					mu.Unlock()
				}()
			}
		})
	}
	wg.Wait()
	fmt.Printf("OPENED %d %d\n", ok.Load(), failed.Load())
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	mu.Lock()
	var quick, slow []time.Duration
	for _, d := range drops {
		if d < time.Second {
			quick = append(quick, d)
		} else {
			slow = append(slow, d)
		}
	}
	open := len(conns) - len(drops)
	mu.Unlock()
	slices.Sort(quick)
	slices.Sort(slow)
	ms := func(ds []time.Duration, q float64) float64 {
		if len(ds) == 0 {
			return 0
		}
		return float64(ds[int(q*float64(len(ds)-1))]) / 1e6
	}
	fmt.Printf("DROPS %d %d %d %.1f %.1f %.2f\n", len(quick), len(slow), open, ms(slow, 0.5), ms(slow, 1), ms(quick, 0.5))
	os.Exit(0)
}

func procFDs() int {
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(es)
}

func procRSSMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			kb, _ := strconv.Atoi(strings.Fields(l)[1])
			return float64(kb) / 1024
		}
	}
	return -1
}

// calls measures n remote calls from one host to a node: a request frame
// that the node's Handler answers with a frame of its own (childHandler's
// echo), the round trip nodal's Call makes at this layer. Paced, so it is
// a call load and not a flood of its own.
func calls(tb testing.TB, from *Host, ph *parentHandler, to string, n int) []time.Duration {
	tb.Helper()
	out := make([]time.Duration, 0, n)
	req := []byte{benchEcho}
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t0 := time.Now()
		require.NoError(tb, from.Send(ctx, to, req), "a remote call must keep answering")
		select {
		case <-ph.echo:
		case <-ctx.Done():
			tb.Fatal("a remote call got no answer within 10 s")
		}
		out = append(out, time.Since(t0))
		cancel()
		time.Sleep(time.Millisecond)
	}
	return out
}

func quantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1))]
}

// BenchmarkHalfOpenFlood floods a node's libp2p port with TCP connections
// that never start a handshake, from one source address or from several,
// with the default limits (HandshakeTimeout 7 s, 64 pending per source,
// 1024 in total). It reports the p50/p99 of a remote call (a request
// answered by the node's Handler, over an established connection) during
// the flood as ratios to the same figures
// measured just before in the same run; whether a new hidden ctl node can
// connect and call during the flood; the node's process file descriptors
// and RSS before, during and after; and how long the flooder's
// connections lasted (refused at once, or dropped after the deadline).
//
// Run with -benchtime=1x: each case is one flood.
func BenchmarkHalfOpenFlood(b *testing.B) {
	requireLoopbackSources(b)
	raiseFDLimit()
	many := make([]string, 15)
	for i := range many {
		many[i] = fmt.Sprintf("127.0.0.%d", i+2)
	}
	for _, tc := range []struct {
		name string
		n    int
		srcs []string
	}{
		{"3000-one-source", 3000, []string{"127.0.0.2"}},
		{"15000-one-source", 15000, []string{"127.0.0.2"}},
		{"15000-15-sources", 15000, many},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for range b.N {
				floodOnce(b, tc.n, tc.srcs)
			}
		})
	}
}

func floodOnce(b *testing.B, n int, srcs []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ah := &childHandler{}
	a, err := Start(ctx, Config{Name: "a@127.0.0.1", Cookie: "bench-cookie", Profile: ProfileLAN}, ah)
	require.NoError(b, err)
	ah.h.Store(a)
	defer func() { _ = a.Stop(context.Background()) }()
	ph := newParentHandler()
	peer, err := Start(ctx, Config{Name: "b@127.0.0.1", Cookie: "bench-cookie", Profile: ProfileLAN, Seeds: []string{a.GossipAddr()}}, ph)
	require.NoError(b, err)
	defer func() { _ = peer.Stop(context.Background()) }()
	require.NoError(b, peer.Connect(ctx, "a@127.0.0.1"))
	const samples = 400
	calls(b, peer, ph, "a@127.0.0.1", 50) // warm up
	base := calls(b, peer, ph, "a@127.0.0.1", samples)
	fdBase, rssBase := procFDs(), procRSSMB()

	// Peak sampler for the flood's duration.
	var peakFD atomic.Int64
	var peakRSS atomic.Uint64
	stopSampler := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if fd := int64(procFDs()); fd > peakFD.Load() {
				peakFD.Store(fd)
			}
			if r := uint64(procRSSMB() * 1024); r > peakRSS.Load() {
				peakRSS.Store(r)
			}
			select {
			case <-t.C:
			case <-stopSampler:
				return
			}
		}
	})

	exe, err := os.Executable()
	require.NoError(b, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), floodChildEnv+"="+fmt.Sprintf("%s %d %s", a.ListenAddrs()[0], n, strings.Join(srcs, ",")))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	require.NoError(b, err)
	outPipe, err := cmd.StdoutPipe()
	require.NoError(b, err)
	out := bufio.NewReader(outPipe)
	t0 := time.Now()
	require.NoError(b, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	// Calls while the flood is dialing and held.
	during := make(chan []time.Duration, 1)
	go func() { during <- calls(b, peer, ph, "a@127.0.0.1", samples) }()
	line, err := out.ReadString('\n')
	require.NoError(b, err)
	openedAt := time.Since(t0)
	var opened, dialFailed int
	_, err = fmt.Sscanf(line, "OPENED %d %d", &opened, &dialFailed)
	require.NoError(b, err, line)
	flood := recvWithin(b, during, time.Minute, "the calls during the flood")
	flood = append(flood, calls(b, peer, ph, "a@127.0.0.1", samples)...) // while the pending ones are held

	// ctl: a new hidden node connects and calls during the flood.
	ctlOK := 0
	var ctlLat time.Duration
	for range 3 {
		ctl, err := Start(ctx, Config{Name: "ctl@127.0.0.1", Cookie: "bench-cookie", Hidden: true}, newParentHandler())
		require.NoError(b, err)
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		t1 := time.Now()
		if _, err := ctl.ConnectAddr(cctx, a.ListenAddrs()[0]); err == nil {
			if _, err := ctl.Ping(cctx, "a@127.0.0.1"); err == nil {
				ctlOK++
				ctlLat = max(ctlLat, time.Since(t1))
			}
		}
		ccancel()
		_ = ctl.Stop(context.Background())
	}
	gDuring := a.Stats().Guard

	// After: every pending connection dropped by the deadline.
	deadline := time.Now().Add(30 * time.Second)
	for a.Stats().Guard.PendingConns > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	require.Zero(b, a.Stats().Guard.PendingConns, "pending connections are dropped")
	close(stopSampler)
	sampler.Wait()
	_ = in.Close()
	line, err = out.ReadString('\n')
	require.NoError(b, err)
	var quick, slow, stillOpen int
	var slowP50, slowMax, quickP50 float64
	_, err = fmt.Sscanf(line, "DROPS %d %d %d %f %f %f", &quick, &slow, &stillOpen, &slowP50, &slowMax, &quickP50)
	require.NoError(b, err, line)
	time.Sleep(200 * time.Millisecond) // let closed sockets leave the fd table (not a timing assertion)
	after := calls(b, peer, ph, "a@127.0.0.1", samples)
	fdAfter, rssAfter := procFDs(), procRSSMB()
	g := a.Stats().Guard

	b.ReportMetric(float64(quantile(flood, 0.5))/float64(quantile(base, 0.5)), "p50-ratio")
	b.ReportMetric(float64(quantile(flood, 0.99))/float64(quantile(base, 0.99)), "p99-ratio")
	b.ReportMetric(float64(quantile(after, 0.5))/float64(quantile(base, 0.5)), "p50-after-ratio")
	b.ReportMetric(float64(quantile(base, 0.5).Microseconds()), "base-p50-us")
	b.ReportMetric(float64(quantile(base, 0.99).Microseconds()), "base-p99-us")
	b.ReportMetric(float64(ctlOK)/3, "ctl-ok-frac")
	b.ReportMetric(float64(fdBase), "fd-before")
	b.ReportMetric(float64(peakFD.Load()), "fd-peak")
	b.ReportMetric(float64(fdAfter), "fd-after")
	b.ReportMetric(rssBase, "rss-before-MB")
	b.ReportMetric(float64(peakRSS.Load())/1024, "rss-peak-MB")
	b.ReportMetric(rssAfter, "rss-after-MB")
	b.ReportMetric(slowP50/1000, "drop-p50-s")
	b.ReportMetric(slowMax/1000, "drop-max-s")
	b.ReportMetric(quickP50, "refuse-p50-ms")
	b.Logf("%d sources: %d opened (%d dial failures) in %s; refused at once %d, dropped at the deadline %d, still open %d; "+
		"guard during %+v, after %+v; ctl %d/3 (slowest %s); call p50 %s -> %s, p99 %s -> %s",
		len(srcs), opened, dialFailed, openedAt.Round(time.Millisecond), quick, slow, stillOpen, gDuring, g, ctlOK, ctlLat.Round(time.Millisecond),
		quantile(base, 0.5), quantile(flood, 0.5), quantile(base, 0.99), quantile(flood, 0.99))
	require.Equal(b, 3, ctlOK, "ctl keeps connecting during the flood")
}
