package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
)

// ctl rpc calls a built-in function on another node of the cluster,
// through the node ctl talks to, with JSON arguments and result.
func TestCtlRPC(t *testing.T) {
	defer leaktest.AfterTest(t)()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const cookie = "ctl-rpc-test-cookie"
	start := func(name string, join ...string) *runningNode {
		return startTestNode(t, ctx, startOptions{Name: name, Cookie: cookie, Join: join})
	}
	a := start("rpca@127.0.0.1")
	defer stopNode(a.Node)
	b := start("rpcb@127.0.0.1", a.Gossip)
	defer stopNode(b.Node)
	require.Eventually(t, func() bool { return len(a.RPC.Nodes()) == 2 }, 30*time.Second, 10*time.Millisecond)

	ctl := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := cmdCtl(ctx, append([]string{"--to", a.Listen, "--cookie", cookie}, args...), env(nil), &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, errs := ctl("--json", "rpc", "rpcb@127.0.0.1", "os.getpid")
	require.Equal(t, 0, code, errs)
	var got struct {
		Node   string
		Func   string
		Result int
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	require.Equal(t, "rpcb@127.0.0.1", got.Node)
	require.Equal(t, "os.getpid", got.Func)
	require.Equal(t, os.Getpid(), got.Result, "b runs in this test process")

	code, out, errs = ctl("rpc", "rpcb@127.0.0.1", "rpc.echo", `{"x":[1,2]}`)
	require.Equal(t, 0, code, errs)
	require.JSONEq(t, `{"x":[1,2]}`, out)

	code, out, _ = ctl("--json", "rpc", "rpcb@127.0.0.1", "node.info")
	require.Equal(t, 0, code)
	require.Contains(t, out, `"Name":"rpcb@127.0.0.1"`)

	code, out, _ = ctl("--json", "rpc", "rpcb@127.0.0.1", "no.such")
	require.Equal(t, 1, code)
	require.Contains(t, out, "no such function")

	code, _, errs = ctl("rpc", "rpcb@127.0.0.1", "rpc.echo", `{not json`)
	require.Equal(t, 2, code)
	require.Contains(t, errs, "not JSON")
}

func TestBenchRPCSmoke(t *testing.T) {
	defer leaktest.AfterTest(t)()
	t.Setenv(runMainEnv, "1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	require.NoError(t, cmdBench(ctx, []string{"rpc", "--calls", "100", "--duration", "100ms", "--items", "300"}, &out, &errb), errb.String())
	figs := parseFigures(t, out.String())
	for _, name := range []string{"plain_call_p50_us", "rpc_call_p50_us", "multicall2_p50_us", "rpc_calls_per_s_16", "plain_calls_per_s_16", "pmap_items_per_s"} {
		require.Greater(t, figs[name], 0.0, name)
	}
	require.Equal(t, 300.0, figs["pmap_items"])
	require.LessOrEqual(t, figs["rpc_call_p50_us"], figs["rpc_call_p99_us"])
}
