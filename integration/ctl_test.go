package integration

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
)

type nodesJSON struct {
	Self  string   `json:"self"`
	Nodes []string `json:"nodes"`
}

type infoJSON struct {
	Name        string   `json:"name"`
	Incarnation uint64   `json:"incarnation"`
	Listen      []string `json:"listen"`
	Gossip      string   `json:"gossip"`
	ListenBound []string `json:"bound_listen"`
	GossipBound string   `json:"bound_gossip"`
	Nodes       []string `json:"nodes"`
	Hidden      []string `json:"hidden_nodes"`
	Processes   int      `json:"processes"`
	Registered  []string `json:"registered"`
}

type pidJSON struct {
	Pid string `json:"pid"`
}

type callJSON struct {
	Reply string `json:"reply"`
	Pid   string `json:"pid"`
}

type sendJSON struct {
	Sent bool   `json:"sent"`
	To   string `json:"to"`
}

type killJSON struct {
	Pid    string `json:"pid"`
	Reason string `json:"reason"`
}

type pingJSON struct {
	Node  string  `json:"node"`
	Pong  bool    `json:"pong"`
	RTTUS float64 `json:"rtt_us"`
}

type processJSON struct {
	Pid    string `json:"pid"`
	Name   string `json:"name"`
	Status string `json:"status"`
	Queue  int    `json:"queue"`
}

type processesJSON struct {
	Node      string        `json:"node"`
	Processes []processJSON `json:"processes"`
}

type errorJSON struct {
	Error string `json:"error"`
}

// startPair starts a and b, b joining a, and waits until ctl nodes on
// either shows both.
func startPair(t *testing.T, c *cluster) (a, b *nodeProc) {
	t.Helper()
	a = c.start("a@127.0.0.1")
	b = c.start("b@127.0.0.1", "--join", a.Gossip)
	want := []string{"a@127.0.0.1", "b@127.0.0.1"}
	for _, n := range []*nodeProc{a, b} {
		eventually(t, func() bool {
			var v nodesJSON
			ctlJSON(t, n, &v, "nodes")
			return slices.Equal(v.Nodes, want)
		}, "%s to see both nodes", n.Name)
	}
	return a, b
}

func TestTwoNodesJoin(t *testing.T) {
	defer leaktest.AfterTest(t)()
	c := newCluster(t, "join-cookie")
	defer c.close()
	a, b := startPair(t, c)
	for _, n := range []*nodeProc{a, b} {
		var v nodesJSON
		ctlJSON(t, n, &v, "nodes")
		require.Equal(t, n.Name, v.Self)
		require.Equal(t, []string{"a@127.0.0.1", "b@127.0.0.1"}, v.Nodes)
	}
	var info infoJSON
	ctlJSON(t, b, &info, "info")
	require.Equal(t, "b@127.0.0.1", info.Name)
	require.Equal(t, b.Inc, info.Incarnation)
	require.Equal(t, []string{b.Listen}, info.Listen)
	require.Equal(t, b.Gossip, info.Gossip)
	require.Equal(t, []string{"a@127.0.0.1", "b@127.0.0.1"}, info.Nodes)
	require.Contains(t, info.Registered, "nodal_ctl")
	require.Len(t, info.Hidden, 1, "the ctl tool itself is the one hidden node")
	require.True(t, strings.HasPrefix(info.Hidden[0], "ctl-"), "hidden %v", info.Hidden)
}

func TestCtlCommands(t *testing.T) {
	defer leaktest.AfterTest(t)()
	c := newCluster(t, "ctl-cookie")
	defer c.close()
	a, b := startPair(t, c)

	// spawn an echo on b under a name, and one without.
	var named, anon pidJSON
	ctlJSON(t, b, &named, "spawn", "echo", "--name", "e1")
	ctlJSON(t, b, &anon, "spawn", "echo")
	require.True(t, strings.HasPrefix(named.Pid, "<b@127.0.0.1."), named.Pid)
	require.NotEqual(t, named.Pid, anon.Pid)

	// call by pid and by NAME@NODE, asked through a (the call crosses nodes).
	var r callJSON
	ctlJSON(t, a, &r, "call", anon.Pid, "hello")
	require.Equal(t, callJSON{Reply: "hello", Pid: anon.Pid}, r)
	ctlJSON(t, a, &r, "call", "e1@b@127.0.0.1", "by name")
	require.Equal(t, callJSON{Reply: "by name", Pid: named.Pid}, r)

	// send: the echo prints what it gets on its node's stdout.
	var s sendJSON
	ctlJSON(t, a, &s, "send", "e1@b@127.0.0.1", "a remote text")
	require.Equal(t, sendJSON{Sent: true, To: "e1@b@127.0.0.1"}, s)
	eventually(t, func() bool {
		return slices.ContainsFunc(b.Lines(), func(l string) bool {
			return strings.Contains(l, named.Pid) && strings.Contains(l, `"a remote text"`)
		})
	}, "b to print the sent text")

	// processes lists the named echo.
	var ps processesJSON
	ctlJSON(t, b, &ps, "processes")
	require.Equal(t, "b@127.0.0.1", ps.Node)
	idx := slices.IndexFunc(ps.Processes, func(p processJSON) bool { return p.Pid == named.Pid })
	require.GreaterOrEqual(t, idx, 0, "%v", ps.Processes)
	require.Equal(t, "e1", ps.Processes[idx].Name)
	require.True(t, slices.ContainsFunc(ps.Processes, func(p processJSON) bool { return p.Name == "nodal_ctl" }))

	// ping from a to b.
	var p pingJSON
	ctlJSON(t, a, &p, "ping", "b@127.0.0.1")
	require.Equal(t, "b@127.0.0.1", p.Node)
	require.True(t, p.Pong)
	require.Greater(t, p.RTTUS, 0.0)

	// kill from a, then the pid is gone: kill and call fail with one error object.
	var k killJSON
	ctlJSON(t, a, &k, "kill", named.Pid)
	require.Equal(t, killJSON{Pid: named.Pid, Reason: "killed"}, k)
	ctlJSON(t, b, &ps, "processes")
	require.False(t, slices.ContainsFunc(ps.Processes, func(p processJSON) bool { return p.Pid == named.Pid }))
	ctlJSON(t, a, &k, "kill", anon.Pid, "shutdown")
	require.Equal(t, killJSON{Pid: anon.Pid, Reason: "shutdown"}, k)

	for _, args := range [][]string{
		{"kill", named.Pid},
		{"call", anon.Pid, "anyone?"},
		{"call", "e1@b@127.0.0.1", "anyone?"},
		{"ping", "nobody@127.0.0.1"},
	} {
		res := ctl(t, a.Listen, a.Cookie, append([]string{"--json"}, args...)...)
		require.NotEqual(t, 0, res.Code, "%v", args)
		var e errorJSON
		decodeOne(t, res.Stdout, &e)
		require.NotEmpty(t, e.Error, "%v", args)
	}

	// Without --json: plain lines.
	res := ctl(t, a.Listen, a.Cookie, "nodes")
	require.Equal(t, 0, res.Code)
	require.Equal(t, "a@127.0.0.1 (self)\nb@127.0.0.1\n", res.Stdout)
}

func TestWrongCookieRefused(t *testing.T) {
	defer leaktest.AfterTest(t)()
	c := newCluster(t, "right-cookie")
	defer c.close()
	a := c.start("a@127.0.0.1")
	res := ctl(t, a.Listen, "wrong-cookie", "--json", "nodes")
	require.NotEqual(t, 0, res.Code)
	var e errorJSON
	decodeOne(t, res.Stdout, &e)
	require.Contains(t, e.Error, "cookie mismatch")
	require.NotContains(t, e.Error, "right-cookie")
	require.NotContains(t, e.Error, "wrong-cookie")

	res = ctl(t, a.Listen, "wrong-cookie", "nodes")
	require.NotEqual(t, 0, res.Code)
	require.Empty(t, res.Stdout)
	require.Contains(t, res.Stderr, "cookie mismatch")
	require.Equal(t, 1, strings.Count(res.Stderr, "\n"), "one line: %q", res.Stderr)

	// A node with another cookie cannot join either.
	other := &cluster{t: t, cookie: "other-cookie"}
	defer other.close()
	_, err := other.startArgs([]string{"start", "--name", "x@127.0.0.1", "--listen", "127.0.0.1:0",
		"--gossip", "127.0.0.1:0", "--profile", "local", "--join", a.Gossip},
		baseEnv("NODAL_COOKIE=other-cookie", "GOLOG_LOG_LEVEL=error"))
	if err == nil {
		// It may start alone if the join is not refused outright; then a
		// must still not see it.
		var v nodesJSON
		ctlJSON(t, a, &v, "nodes")
		require.Equal(t, []string{"a@127.0.0.1"}, v.Nodes)
	}
}

func TestCookieSources(t *testing.T) {
	defer leaktest.AfterTest(t)()
	c := newCluster(t, "file-cookie")
	defer c.close()
	dir := t.TempDir()
	file := filepath.Join(dir, "cookie")
	require.NoError(t, os.WriteFile(file, []byte("  file-cookie\n"), 0o600))
	a, err := c.startArgs([]string{"start", "--name", "a@127.0.0.1", "--cookie-file", file,
		"--listen", "127.0.0.1:0", "--gossip", "127.0.0.1:0"}, baseEnv("GOLOG_LOG_LEVEL=error"))
	require.NoError(t, err)
	// ctl with the cookie from the environment.
	res := runBinary(t, baseEnv("NODAL_COOKIE=file-cookie"), "ctl", "--to", a.Listen, "--json", "nodes")
	require.Equal(t, 0, res.Code, res.Stdout+res.Stderr)
	var v nodesJSON
	decodeOne(t, res.Stdout, &v)
	require.Equal(t, "a@127.0.0.1", v.Self)

	// A cookie file others can read is refused.
	open := filepath.Join(dir, "open")
	require.NoError(t, os.WriteFile(open, []byte("file-cookie"), 0o644))
	require.NoError(t, os.Chmod(open, 0o644))
	res = runBinary(t, baseEnv(), "start", "--name", "b@127.0.0.1", "--cookie-file", open)
	require.Equal(t, 2, res.Code)
	require.Contains(t, res.Stderr, "group or others")
}

func TestGracefulStop(t *testing.T) {
	defer leaktest.AfterTest(t)()
	c := newCluster(t, "stop-cookie")
	defer c.close()
	a, b := startPair(t, c)
	require.NoError(t, b.stop(syscall.SIGTERM), "a SIGTERM ends the node with status 0")
	require.Contains(t, b.Lines(), "node b@127.0.0.1 down")
	eventually(t, func() bool {
		var v nodesJSON
		ctlJSON(t, a, &v, "nodes")
		return slices.Equal(v.Nodes, []string{"a@127.0.0.1"})
	}, "a to see b leave")
	require.NoError(t, a.stop(syscall.SIGINT))
}

// A node killed with kill -9 and started again at once with the same
// addresses (what a process supervisor such as systemd does) rejoins at
// once with a new incarnation, LAN profile, long before failure detection
// would have declared its previous start dead.
func TestKill9ThenImmediateRestart(t *testing.T) {
	defer leaktest.AfterTest(t)()
	c := newCluster(t, "restart-cookie")
	defer c.close()
	a := c.start("a@127.0.0.1", "--profile", "lan")
	// b's ports come from below the ephemeral range, so that no process
	// binding port 0 takes them between the kill and the restart.
	listen, gossip := lowFreePort(t), lowFreePort(t)
	b := c.start("b@127.0.0.1", "--profile", "lan", "--join", a.Gossip, "--listen", listen, "--gossip", gossip)
	eventually(t, func() bool {
		var v nodesJSON
		ctlJSON(t, a, &v, "nodes")
		return len(v.Nodes) == 2
	}, "a to see b")
	var old pidJSON
	ctlJSON(t, b, &old, "spawn", "echo", "--name", "e")
	b.Kill9()
	b2 := c.start("b@127.0.0.1", "--profile", "lan", "--join", a.Gossip, "--listen", listen, "--gossip", gossip)
	require.NotEqual(t, b.Inc, b2.Inc)
	eventually(t, func() bool {
		var v nodesJSON
		ctlJSON(t, a, &v, "nodes")
		if !slices.Equal(v.Nodes, []string{"a@127.0.0.1", "b@127.0.0.1"}) {
			return false
		}
		var info infoJSON
		ctlJSON(t, b2, &info, "info")
		return slices.Equal(info.Nodes, []string{"a@127.0.0.1", "b@127.0.0.1"})
	}, "the restarted b to be in the cluster")
	var echo pidJSON
	ctlJSON(t, b2, &echo, "spawn", "echo", "--name", "e")
	var reply callJSON
	ctlJSON(t, a, &reply, "call", "e@b@127.0.0.1", "back")
	require.Equal(t, "back", reply.Reply)
	require.NotEqual(t, old.Pid, echo.Pid, "a new start never reuses a pid")
	// A pid of the killed start is dead, even though the new start has an
	// echo process with the same local id.
	r := ctl(t, a.Listen, a.Cookie, "--json", "call", old.Pid, "to the dead")
	require.NotEqual(t, 0, r.Code)
	require.Contains(t, r.Stdout, "noproc", "stderr: %s", r.Stderr)
}

// lowFreePort returns "127.0.0.1:PORT" for a port below Linux's ephemeral
// range (32768 and up) that is free for TCP and UDP right now.
func lowFreePort(t *testing.T) string {
	t.Helper()
	for range 200 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return addr
	}
	t.Fatal("no free port below the ephemeral range")
	return ""
}
