package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nodal-go/nodal/internal/echo"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
)

// The harness commands: monitor arms a watcher on a remote echo that
// outlives the ctl command, monitored reads it (up, then down with
// noconnection once the echo's node is gone), rejoin joins the membership.
func TestCtlHarnessMonitorAndJoin(t *testing.T) {
	defer leaktest.AfterTest(t)()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const cookie = "ctl-harness-test-cookie"
	start := func(name string, join ...string) *runningNode {
		return startTestNode(t, ctx, startOptions{Name: name, Cookie: cookie, Join: join})
	}
	a := start("ha@127.0.0.1")
	defer stopNode(a.Node)
	b := start("hb@127.0.0.1", a.Gossip)
	bStopped := false
	defer func() {
		if !bStopped {
			stopNode(b.Node)
		}
	}()
	require.Eventually(t, func() bool { return len(a.Nodes()) == 1 }, 30*time.Second, 10*time.Millisecond)
	ctl := func(v any, args ...string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := cmdCtl(ctx, append([]string{"--to", a.Listen, "--cookie", cookie, "--json"}, args...), env(nil), &out, &errb)
		require.Equal(t, 0, code, "%v: %s %s", args, out.String(), errb.String())
		dec := json.NewDecoder(&out)
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(v))
	}

	echo, err := b.Spawn(func(p *nodal.Process) error { return echo.Behaviour(p, nil) })
	require.NoError(t, err)
	var m jsonMonitor
	ctl(&m, "monitor", echo.String())
	require.Equal(t, echo.String(), m.Target)
	var st jsonMonitored
	ctl(&st, "monitored", m.Watcher)
	require.Equal(t, jsonMonitored{Watcher: m.Watcher, Target: echo.String()}, st)

	before := time.Now()
	require.NoError(t, b.Disconnect(a.Name()))
	stopNode(b.Node)
	bStopped = true
	require.Eventually(t, func() bool {
		ctl(&st, "monitored", m.Watcher)
		return st.Down
	}, 30*time.Second, 10*time.Millisecond)
	require.Equal(t, "noconnection", st.Reason)
	require.GreaterOrEqual(t, st.AtUnixMS, before.UnixMilli())

	var j jsonJoin
	ctl(&j, "rejoin", a.Gossip)
	require.Equal(t, jsonJoin{Node: a.Name(), Joined: []string{a.Gossip}}, j)

	for _, args := range [][]string{{"monitor"}, {"monitor", "nope"}, {"monitored", "<x>"}, {"rejoin"}, {"rejoin", "nohost"}} {
		ok, err := harnessCheckArgs(args[0], args[1:])
		require.True(t, ok, "%v", args)
		require.Error(t, err, "%v", args)
	}
	ok, _ := harnessCheckArgs("nodes", nil)
	require.False(t, ok)
}
