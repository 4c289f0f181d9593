package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
)

// runMainEnv makes the test binary behave as the nodal binary, so that
// demo and bench can re-execute themselves (os.Executable) in tests.
const runMainEnv = "NODAL_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestDemo(t *testing.T) {
	defer leaktest.AfterTest(t)()
	t.Setenv(runMainEnv, "1")
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, cmdDemo(ctx, nil, &out))
	s := out.String()
	for _, want := range []string{
		"a@127.0.0.1 sees b@127.0.0.1 and c@127.0.0.1",
		"b@127.0.0.1 sees a@127.0.0.1 and c@127.0.0.1",
		"c@127.0.0.1 sees a@127.0.0.1 and b@127.0.0.1",
		`[b@127.0.0.1] inbox got "hello from a"`,
		`replied "are you there?"`,
		"reason noconnection",
		"NodeDown for c@127.0.0.1 (its connection closed)",
		"a@127.0.0.1 now sees b@127.0.0.1",
		"heal on x reports [y@127.0.0.1 z@127.0.0.1] missing",
		"my claim lost: exit signal registry: name conflict: \"leader\" kept by <x@127.0.0.1.",
		"Every node now sees leader -> <x@127.0.0.1.",
		"heal on y: x@127.0.0.1 is back; y's registry and groups exchanged ",
		" entries, 1 conflicts with it.",
		"Demo done.",
	} {
		require.Contains(t, s, want)
	}
	// The echo runs on c, and its output shows on a.
	require.Regexp(t, regexp.MustCompile(`\[a@127\.0\.0\.1\] echo <c@127\.0\.0\.1\.\d+\.\d+> got "printed by a process on c"`), s)
	require.Equal(t, 2, strings.Count(s, ", reason noconnection"), "the monitor and the link")
}

func TestBenchSmoke(t *testing.T) {
	defer leaktest.AfterTest(t)()
	figs := runBench(t, "remote", "--senders", "2", "--size", "16", "--duration", "200ms")
	require.Greater(t, figs["remote_send_messages"], 0.0)
	require.Greater(t, figs["remote_send_msgs_per_s"], 0.0)
	require.InDelta(t, figs["remote_send_msgs_per_s"]*16/1e6, figs["remote_send_mb_per_s"], 0.2)

	figs = runBench(t, "call", "--calls", "200")
	require.Equal(t, 200.0, figs["call_count"])
	require.LessOrEqual(t, figs["call_p50_us"], figs["call_p99_us"])
	require.LessOrEqual(t, figs["call_p99_us"], figs["call_p999_us"])
}

// bench floor measures each floor: round trips on raw TCP, on Noise, and
// on Noise through a goroutine hand-off per direction (each reply checked
// against its request), and Noise throughput.
func TestBenchFloor(t *testing.T) {
	defer leaktest.AfterTest(t)()
	figs := runBench(t, "floor", "--size", "64", "--duration", "100ms")
	for _, rtt := range []string{"floor_tcp_rtt_", "floor_noise_rtt_", "floor_noise_handoff_rtt_"} {
		require.Greater(t, figs[rtt+"p50_us"], 0.0, rtt)
		require.LessOrEqual(t, figs[rtt+"p50_us"], figs[rtt+"p99_us"], rtt)
		require.Greater(t, figs[rtt+"cpu_us_per_rtt"], 0.0, rtt)
	}
	for _, size := range []string{"32B", "64B"} {
		require.Greater(t, figs["floor_noise_"+size+"_msgs_per_s"], 0.0, size)
	}
}

// runBench runs nodal bench with args (its nodes and peers are child
// processes of the test binary, bounded by a minute) and returns its
// figures.
func runBench(t *testing.T, args ...string) map[string]float64 {
	t.Helper()
	t.Setenv(runMainEnv, "1")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	require.NoError(t, cmdBench(ctx, args, &out, &errb), errb.String())
	return parseFigures(t, out.String())
}

// parseFigures reads "name value unit" lines.
func parseFigures(t *testing.T, s string) map[string]float64 {
	t.Helper()
	figs := map[string]float64{}
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		f := strings.Fields(l)
		require.Len(t, f, 3, "figure line %q", l)
		v, err := strconv.ParseFloat(f[1], 64)
		require.NoError(t, err, l)
		figs[f[0]] = v
	}
	return figs
}

// The binary's GC target is defaultGCPercent unless GOGC says otherwise.
func TestGCDefault(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	require.True(t, applyGCDefault(getenv))
	require.Equal(t, defaultGCPercent, debug.SetGCPercent(100), "no GOGC: the binary's default")
	env["GOGC"] = "50"
	require.False(t, applyGCDefault(getenv))
	require.Equal(t, 100, debug.SetGCPercent(100), "GOGC set: left to the runtime")
}
