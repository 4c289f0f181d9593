package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
)

// The registry's ctl commands, through two nodes: spawn echo --global on
// one, whereis / registered / call global:NAME through the other, then
// unregister, register by pid, and sync.
func TestCtlRegistry(t *testing.T) {
	defer leaktest.AfterTest(t)()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const cookie = "ctl-registry-test-cookie"
	start := func(name string, join ...string) *runningNode {
		return startTestNode(t, ctx, startOptions{Name: name, Cookie: cookie, Join: join})
	}
	a := start("rega@127.0.0.1")
	defer stopNode(a.Node)
	b := start("regb@127.0.0.1", a.Gossip)
	defer stopNode(b.Node)
	require.Eventually(t, func() bool { return len(a.Registry.Nodes()) == 1 && len(b.Registry.Nodes()) == 1 }, 30*time.Second, 10*time.Millisecond)

	ctl := func(to *runningNode, args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := cmdCtl(ctx, append([]string{"--to", to.Listen, "--cookie", cookie}, args...), env(nil), &out, &errb)
		return code, out.String() + errb.String()
	}
	code, out := ctl(a, "--json", "spawn", "echo", "--global", "greeter")
	require.Equal(t, 0, code, out)
	var spawned struct{ Pid string }
	require.NoError(t, json.Unmarshal([]byte(out), &spawned))

	require.Eventually(t, func() bool {
		_, out := ctl(b, "--json", "whereis", "greeter")
		return out == `{"name":"greeter","pid":"`+spawned.Pid+`"}`+"\n"
	}, 10*time.Second, 10*time.Millisecond, "visible on b")
	code, out = ctl(b, "--json", "registered")
	require.Equal(t, 0, code, out)
	require.JSONEq(t, `{"names":{"greeter":"`+spawned.Pid+`"}}`, out)
	code, out = ctl(b, "--json", "registered", "--count")
	require.Equal(t, 0, code, out)
	require.JSONEq(t, `{"count":1}`, out)
	code, out = ctl(b, "registered", "--count")
	require.Equal(t, 0, code, out)
	require.Equal(t, "1\n", out)
	code, out = ctl(b, "--json", "call", "global:greeter", "hi")
	require.Equal(t, 0, code, out)
	require.JSONEq(t, `{"reply":"hi","pid":"`+spawned.Pid+`"}`, out)
	code, out = ctl(b, "send", "global:greeter", "hello")
	require.Equal(t, 0, code, out)

	code, out = ctl(b, "--json", "unregister", "greeter")
	require.Equal(t, 1, code, "only the holder's node unregisters")
	require.Contains(t, out, "another node")
	code, out = ctl(a, "--json", "unregister", "greeter")
	require.Equal(t, 0, code, out)
	require.Eventually(t, func() bool {
		_, out := ctl(b, "--json", "whereis", "greeter")
		return out == `{"name":"greeter","pid":null}`+"\n"
	}, 10*time.Second, 10*time.Millisecond, "gone on b")
	code, out = ctl(b, "call", "global:greeter", "hi")
	require.Equal(t, 1, code)
	require.Contains(t, out, "not registered")

	code, out = ctl(a, "--json", "register", "again", spawned.Pid)
	require.Equal(t, 0, code, out)
	code, out = ctl(b, "--json", "sync")
	require.Equal(t, 0, code, out)
	require.JSONEq(t, `{"node":"regb@127.0.0.1","synced":true,"peers":["rega@127.0.0.1"]}`, out)
	code, out = ctl(b, "whereis", "again")
	require.Equal(t, 0, code, out)
	require.Equal(t, "again "+spawned.Pid+"\n", out, "registered on a, visible on b after sync")
	code, out = ctl(a, "--json", "register", "again2", spawned.Pid)
	require.Equal(t, 1, code)
	require.Contains(t, out, "already registered as")

	code, _ = ctl(a, "whereis")
	require.Equal(t, 2, code, "usage error")
	code, _ = ctl(a, "call", "global:", "x")
	require.Equal(t, 2, code, "empty global name")
}

func TestBenchRegistrySmoke(t *testing.T) {
	defer leaktest.AfterTest(t)()
	t.Setenv(runMainEnv, "1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	require.NoError(t, cmdBench(ctx, []string{"registry", "--names", "500", "--callers", "8"}, &out, &errb), errb.String())
	figs := parseFigures(t, out.String())
	for _, name := range []string{"registrations_per_s_visible_on_3_nodes", "register_calls_per_s_on_a", "all_visible_ms", "whereis_ns"} {
		require.Greater(t, figs[name], 0.0, name)
	}
	require.GreaterOrEqual(t, figs["register_calls_per_s_on_a"], figs["registrations_per_s_visible_on_3_nodes"])
}
