package p2p

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The two-process benchmarks re-execute the test binary as the peer node:
// TestMain runs benchChild instead of the tests when this variable is set.
const childEnv = "NODAL_P2P_BENCH_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		benchChild(spec)
		return
	}
	if spec := os.Getenv(floodChildEnv); spec != "" {
		floodChild(spec)
		return
	}
	os.Exit(m.Run())
}

// Frame kinds of the benchmark protocol (first byte).
const (
	benchData  = 'D' // counted
	benchFlush = 'F' // answer with an ack carrying the count
	benchEcho  = 'E' // send back as is
	benchAck   = 'A'
)

// childHandler is the peer process's handler.
type childHandler struct {
	h     atomic.Pointer[Host]
	count atomic.Uint64
}

func (c *childHandler) NodeUp(Peer)          {}
func (c *childHandler) NodeDown(Peer, error) {}
func (c *childHandler) Frame(p Peer, data []byte) {
	if len(data) == 0 {
		return
	}
	switch data[0] {
	case benchData:
		c.count.Add(1)
	case benchEcho:
		_ = c.h.Load().Send(context.Background(), p.Name, data)
	case benchFlush:
		var b [9]byte
		b[0] = benchAck
		binary.BigEndian.PutUint64(b[1:], c.count.Swap(0))
		_ = c.h.Load().Send(context.Background(), p.Name, b[:])
	}
}

// benchChild runs the peer node: spec is "name profile [seed]". It prints
// "READY <listen> <gossip>" and runs until killed or stdin closes.
func benchChild(spec string) {
	f := strings.Fields(spec)
	cfg := Config{Name: f[0], Cookie: "bench-cookie", Profile: ProfileLAN}
	if f[1] == "local" {
		cfg.Profile = ProfileLocal
	}
	if len(f) > 2 {
		cfg.Seeds = []string{f[2]}
	}
	ch := &childHandler{}
	h, err := Start(context.Background(), cfg, ch)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	ch.h.Store(h)
	fmt.Printf("READY %s %s\n", h.ListenAddrs()[0], h.GossipAddr())
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // parent closes stdin to stop us
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = h.Stop(ctx)
	os.Exit(0)
}

type child struct {
	cmd    *exec.Cmd
	stdin  interface{ Close() error }
	listen string
	gossip string
}

func startChild(tb testing.TB, spec string) *child {
	tb.Helper()
	exe, err := os.Executable()
	require.NoError(tb, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+spec, "GOLOG_LOG_LEVEL=error")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	require.NoError(tb, err)
	out, err := cmd.StdoutPipe()
	require.NoError(tb, err)
	require.NoError(tb, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(tb, err)
	f := strings.Fields(line)
	require.Equal(tb, "READY", f[0], line)
	return &child{cmd: cmd, stdin: in, listen: f[1], gossip: f[2]}
}

func (c *child) stop() {
	_ = c.stdin.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// parentHandler collects acks and echoes.
type parentHandler struct {
	acks  chan uint64
	echo  chan struct{}
	downs chan error
}

func newParentHandler() *parentHandler {
	return &parentHandler{acks: make(chan uint64, 1), echo: make(chan struct{}, 1), downs: make(chan error, 16)}
}

func (p *parentHandler) NodeUp(Peer) {}
func (p *parentHandler) NodeDown(_ Peer, reason error) {
	select {
	case p.downs <- reason:
	default:
	}
}
func (p *parentHandler) Frame(_ Peer, data []byte) {
	switch data[0] {
	case benchAck:
		p.acks <- binary.BigEndian.Uint64(data[1:])
	case benchEcho:
		p.echo <- struct{}{}
	}
}

func benchPair(b *testing.B) (*Host, *parentHandler, string, *child) {
	b.Helper()
	c := startChild(b, "peer@127.0.0.1 lan")
	ph := newParentHandler()
	h, err := Start(context.Background(), Config{Name: "bench@127.0.0.1", Cookie: "bench-cookie", Hidden: true}, ph)
	require.NoError(b, err)
	p, err := h.ConnectAddr(context.Background(), c.listen)
	require.NoError(b, err)
	return h, ph, p.Name, c
}

// BenchmarkTwoProcessThroughput: one-way framed throughput to a node in
// another OS process over loopback TCP (Noise + yamux).
func BenchmarkTwoProcessThroughput(b *testing.B) {
	for _, size := range []int{32, 1024} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			h, ph, peer, c := benchPair(b)
			defer c.stop()
			defer func() { _ = h.Stop(context.Background()) }()
			frame := make([]byte, size)
			frame[0] = benchData
			ctx := context.Background()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				if err := h.Send(ctx, peer, frame); err != nil {
					b.Fatal(err)
				}
			}
			require.NoError(b, h.Send(ctx, peer, []byte{benchFlush}))
			got := <-ph.acks
			el := time.Since(start)
			b.StopTimer()
			require.Equal(b, uint64(b.N), got)
			b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
		})
	}
}

// BenchmarkTwoProcessRoundTrip: one frame there and back, sequentially.
func BenchmarkTwoProcessRoundTrip(b *testing.B) {
	for _, size := range []int{32, 1024} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			h, ph, peer, c := benchPair(b)
			defer c.stop()
			defer func() { _ = h.Stop(context.Background()) }()
			frame := make([]byte, size)
			frame[0] = benchEcho
			ctx := context.Background()
			lat := make([]time.Duration, b.N)
			b.ResetTimer()
			for i := range b.N {
				t0 := time.Now()
				if err := h.Send(ctx, peer, frame); err != nil {
					b.Fatal(err)
				}
				<-ph.echo
				lat[i] = time.Since(t0)
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkDetectKilled: time from SIGKILL of a member in another process
// to its NodeDown here (the connection closes). Run with -benchtime=1x.
func BenchmarkDetectKilled(b *testing.B) {
	benchDetect(b, syscall.SIGKILL)
}

// BenchmarkDetectFrozen: time from SIGSTOP of a member in another process
// to its NodeDown here (memberlist LAN failure detection). Run with -benchtime=1x.
func BenchmarkDetectFrozen(b *testing.B) {
	benchDetect(b, syscall.SIGSTOP)
}

func benchDetect(b *testing.B, sig syscall.Signal) {
	var total time.Duration
	for range b.N {
		ph := newParentHandler()
		h, err := Start(context.Background(), Config{Name: "watcher@127.0.0.1", Cookie: "bench-cookie", Profile: ProfileLAN}, ph)
		require.NoError(b, err)
		c := startChild(b, "victim@127.0.0.1 lan "+h.GossipAddr())
		for len(h.Peers()) == 0 {
			time.Sleep(10 * time.Millisecond)
		}
		start := time.Now()
		require.NoError(b, c.cmd.Process.Signal(sig))
		reason := <-ph.downs
		took := time.Since(start)
		total += took
		b.Logf("%v: node down after %v: %v", sig, took, reason)
		if sig == syscall.SIGSTOP {
			_ = c.cmd.Process.Signal(syscall.SIGCONT)
		}
		_ = c.cmd.Process.Kill()
		_ = c.cmd.Wait()
		require.NoError(b, h.Stop(context.Background()))
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/detect")
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// BenchmarkMemory reports heap per node (started, not connected) and per
// connection (both ends, in one process) on real loopback TCP.
func BenchmarkMemory(b *testing.B) {
	const n = 16
	for range b.N {
		before := heapInUse()
		g0 := runtime.NumGoroutine()
		var hs []*Host
		for i := range n {
			h, err := Start(context.Background(), Config{Name: fmt.Sprintf("m%02d@127.0.0.1", i), Cookie: "c", Profile: ProfileLAN}, newParentHandler())
			require.NoError(b, err)
			hs = append(hs, h)
		}
		afterNodes := heapInUse()
		g1 := runtime.NumGoroutine()
		var wg sync.WaitGroup
		for i := range hs {
			for j := i + 1; j < len(hs); j++ {
				wg.Go(func() {
					_, err := hs[i].ConnectAddr(context.Background(), hs[j].ListenAddrs()[0])
					require.NoError(b, err)
				})
			}
		}
		wg.Wait()
		conns := n * (n - 1) / 2
		afterConns := heapInUse()
		g2 := runtime.NumGoroutine()
		b.ReportMetric(float64(afterNodes-before)/n, "heapB/node")
		b.ReportMetric(float64(afterConns-afterNodes)/float64(conns), "heapB/conn")
		b.ReportMetric(float64(g1-g0)/n, "goroutines/node")
		b.ReportMetric(float64(g2-g1)/float64(conns), "goroutines/conn")
		for _, h := range hs {
			require.NoError(b, h.Stop(context.Background()))
		}
	}
}

// BenchmarkJoin: wall time until n real-loopback nodes (LAN profile) form a
// full mesh, each joining the first.
func BenchmarkJoin(b *testing.B) {
	for _, n := range []int{10, 50} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var total time.Duration
			for range b.N {
				var hs []*Host
				var recs []*recorder
				start := time.Now()
				for i := range n {
					cfg := Config{Name: fmt.Sprintf("j%02d@127.0.0.1", i), Cookie: "c", Profile: ProfileLAN}
					if i > 0 {
						cfg.Seeds = []string{hs[0].GossipAddr()}
					}
					r := newRecorder()
					h, err := Start(context.Background(), cfg, r)
					require.NoError(b, err)
					hs = append(hs, h)
					recs = append(recs, r)
				}
				for {
					done := true
					for _, h := range hs {
						if len(h.Peers()) != n-1 || len(h.Members()) != n {
							done = false
							break
						}
					}
					if done {
						break
					}
					time.Sleep(5 * time.Millisecond)
				}
				total += time.Since(start)
				for _, h := range hs {
					require.NoError(b, h.Stop(context.Background()))
				}
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/mesh")
		})
	}
}
