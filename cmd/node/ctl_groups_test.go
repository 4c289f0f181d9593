package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
)

// ctl spawn echo --group, join, leave, members and groups, with --json,
// across two nodes: members joined on b are listed by a.
func TestCtlGroups(t *testing.T) {
	defer leaktest.AfterTest(t)()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const cookie = "ctl-groups-test-cookie"
	start := func(name string, join ...string) *runningNode {
		return startTestNode(t, ctx, startOptions{Name: name, Cookie: cookie, Join: join})
	}
	a := start("grpa@127.0.0.1")
	defer stopNode(a.Node)
	b := start("grpb@127.0.0.1", a.Gossip)
	defer stopNode(b.Node)
	ctl := func(to *runningNode, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := cmdCtl(ctx, append([]string{"--to", to.Listen, "--cookie", cookie}, args...), env(nil), &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, errs := ctl(b, "--json", "spawn", "echo", "--group", "room")
	require.Equal(t, 0, code, errs)
	var sp struct{ Pid string }
	require.NoError(t, json.Unmarshal([]byte(out), &sp))
	code, out, errs = ctl(b, "--json", "join", "room", sp.Pid)
	require.Equal(t, 0, code, errs)
	require.JSONEq(t, `{"group":"room","pid":"`+sp.Pid+`"}`, out)

	var members struct {
		Group string
		Pids  []string
	}
	require.Eventually(t, func() bool {
		code, out, _ := ctl(a, "--json", "members", "room")
		return code == 0 && json.Unmarshal([]byte(out), &members) == nil && len(members.Pids) == 2
	}, 30*time.Second, 20*time.Millisecond)
	require.Equal(t, "room", members.Group)
	require.Equal(t, []string{sp.Pid, sp.Pid}, members.Pids, "joined twice: listed twice")

	code, out, _ = ctl(a, "--json", "groups")
	require.Equal(t, 0, code)
	require.JSONEq(t, `{"groups":{"room":2}}`, out)
	code, out, _ = ctl(a, "groups")
	require.Equal(t, 0, code)
	require.Equal(t, "room 2\n", out)

	// a pid of b cannot be joined through a
	code, out, _ = ctl(a, "--json", "join", "room", sp.Pid)
	require.Equal(t, 1, code)
	require.Contains(t, out, "not a process of this node")

	code, out, errs = ctl(b, "leave", "room", sp.Pid)
	require.Equal(t, 0, code, errs)
	require.Equal(t, sp.Pid+" left room\n", out)
	code, _, _ = ctl(b, "leave", "room", sp.Pid)
	require.Equal(t, 0, code)
	code, out, _ = ctl(b, "--json", "leave", "room", sp.Pid)
	require.Equal(t, 1, code)
	require.Contains(t, out, "not joined")
	code, out, _ = ctl(b, "--json", "members", "room")
	require.Equal(t, 0, code)
	require.JSONEq(t, `{"group":"room","pids":[]}`, out)

	code, _, errs = ctl(a, "members")
	require.Equal(t, 2, code)
	require.Contains(t, errs, "usage: members GROUP")
	code, _, errs = ctl(a, "spawn", "echo", "--group")
	require.Equal(t, 2, code)
	require.True(t, strings.Contains(errs, "--group GROUP"), errs)
}
