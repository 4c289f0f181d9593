package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// start --expect names the nodes heal expects; ctl partitions and ctl
// quorum show the view: a node expected but never started is unreachable,
// and two of three is still a majority.
func TestCtlPartitionsAndQuorum(t *testing.T) {
	defer leaktest.AfterTest(t)()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const cookie = "ctl-heal-test-cookie"
	o, err := parseStartFlags([]string{"--name", "ha@127.0.0.1", "--cookie", cookie, "--expect", "ha@127.0.0.1,hb@127.0.0.1,ghost@127.0.0.1"}, env(nil))
	require.NoError(t, err)
	require.Equal(t, []string{"ha@127.0.0.1", "hb@127.0.0.1", "ghost@127.0.0.1"}, o.Expect)
	_, err = parseStartFlags([]string{"--name", "ha@127.0.0.1", "--cookie", cookie, "--expect", "nohost"}, env(nil))
	require.ErrorContains(t, err, "--expect")

	start := func(name string, join ...string) *runningNode {
		return startTestNode(t, ctx, startOptions{Name: name, Cookie: cookie, Join: join, Expect: o.Expect})
	}
	a := start("ha@127.0.0.1")
	defer stopNode(a.Node)
	b := start("hb@127.0.0.1", a.Gossip)
	defer stopNode(b.Node)
	require.Eventually(t, func() bool { return a.Heal.View().Partitioned && len(a.Heal.View().Reachable) == 2 },
		30*time.Second, 10*time.Millisecond, "a reports the ghost missing")

	ctl := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := cmdCtl(ctx, append([]string{"--to", a.Listen, "--cookie", cookie}, args...), env(nil), &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, errs := ctl("--json", "partitions")
	require.Equal(t, 0, code, errs)
	var p jsonPartitions
	require.NoError(t, json.Unmarshal([]byte(out), &p), out)
	require.Equal(t, "ha@127.0.0.1", p.Node)
	require.True(t, p.Partitioned)
	require.Equal(t, []string{"ghost@127.0.0.1", "ha@127.0.0.1", "hb@127.0.0.1"}, p.Expected)
	require.Equal(t, []string{"ha@127.0.0.1", "hb@127.0.0.1"}, p.Reachable)
	require.Len(t, p.Unreachable, 1)
	require.Equal(t, "ghost@127.0.0.1", p.Unreachable[0].Node)

	code, out, errs = ctl("--json", "quorum")
	require.Equal(t, 0, code, errs)
	var q jsonQuorum
	require.NoError(t, json.Unmarshal([]byte(out), &q), out)
	require.Equal(t, jsonQuorum{Node: "ha@127.0.0.1", Expected: 3, Reachable: 2, Majority: true, Strategy: "none"}, q)

	code, out, errs = ctl("quorum")
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "ha@127.0.0.1: majority (2 of 3 expected reachable)")
	code, out, errs = ctl("partitions")
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "unreachable ghost@127.0.0.1 since")

	code, _, _ = ctl("quorum", "extra")
	require.Equal(t, 2, code)
}

// Nodes started on an in-process network (startOptions.Network, what the
// demo uses to split a local cluster) heal by themselves after a split.
func TestStartedNodesHealOnInProcessNetwork(t *testing.T) {
	defer leaktest.AfterTest(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	net := p2ptest.New(p2ptest.WithSeed(1))
	defer net.Close()
	start := func(name string, join ...string) *runningNode {
		return startTestNode(t, ctx, startOptions{Name: name, Cookie: "c", Join: join, Network: net})
	}
	a := start("sa@127.0.0.1")
	defer stopNode(a.Node)
	b := start("sb@127.0.0.1", a.Gossip)
	defer stopNode(b.Node)
	require.Eventually(t, func() bool { return len(a.Heal.View().Reachable) == 2 }, 30*time.Second, 10*time.Millisecond)
	net.Isolate(a.Name())
	require.Eventually(t, func() bool { return a.Heal.View().Partitioned && b.Heal.View().Partitioned }, time.Minute, 10*time.Millisecond)
	net.Heal()
	require.Eventually(t, func() bool {
		va, vb := a.Heal.View(), b.Heal.View()
		return !va.Partitioned && !vb.Partitioned && len(va.Reachable) == 2 && len(vb.Reachable) == 2
	}, time.Minute, 10*time.Millisecond, "healed with no join")
}
