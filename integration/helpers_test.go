package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// binary is the nodal binary TestMain builds.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "nodal-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "nodal")
	build := exec.Command("go", "build", "-o", binary, "github.com/nodal-go/nodal/cmd/node")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build nodal:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// waitTimeout bounds every wait for a condition in these tests; it is a
// safety net, not an assertion on speed.
const waitTimeout = 20 * time.Second

// baseEnv is the environment for the binary: the test's, without a cookie
// or log settings that would change what the binary does.
func baseEnv(extra ...string) []string {
	var env []string
	for _, e := range os.Environ() {
		if strings.HasPrefix(e, "NODAL_COOKIE=") || strings.HasPrefix(e, "GOLOG_") {
			continue
		}
		env = append(env, e)
	}
	return append(env, extra...)
}

// nodeProc is a "nodal start" OS process.
type nodeProc struct {
	Name   string
	Listen string
	Gossip string
	Inc    uint64
	Cookie string

	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{} // closed when the stdout reader has ended

	mu    sync.Mutex
	lines []string // stdout lines after the up line
}

// Lines returns what the node printed after its up line.
func (n *nodeProc) Lines() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.lines...)
}

// Pid is the OS process id.
func (n *nodeProc) Pid() int { return n.cmd.Process.Pid }

// Kill9 kills the node with SIGKILL and waits for it.
func (n *nodeProc) Kill9() {
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
}

// stop ends the process (SIGTERM, then SIGKILL after a grace period) and
// returns its exit error.
func (n *nodeProc) stop(sig syscall.Signal) error {
	_ = n.cmd.Process.Signal(sig)
	select {
	case <-n.done:
	case <-time.After(waitTimeout):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
	return n.cmd.Wait()
}

// cluster owns the node processes of one test.
type cluster struct {
	t      *testing.T
	cookie string
	mu     sync.Mutex
	nodes  []*nodeProc
	closed bool
}

// newCluster returns an empty cluster whose processes are killed when the
// test ends (call close earlier in tests that check for leaks).
func newCluster(t *testing.T, cookie string) *cluster {
	c := &cluster{t: t, cookie: cookie}
	t.Cleanup(c.close)
	return c
}

// close kills every process still running and waits for their readers.
func (c *cluster) close() {
	c.mu.Lock()
	nodes := c.nodes
	c.nodes = nil
	c.mu.Unlock()
	for _, n := range nodes {
		_ = n.cmd.Process.Kill()
		<-n.done
		_ = n.cmd.Wait()
	}
}

// start runs "nodal start --name name" with the cluster's cookie (in
// NODAL_COOKIE), loopback port 0 addresses and --profile local, plus
// extra flags, and waits for its up line.
func (c *cluster) start(name string, extra ...string) *nodeProc {
	c.t.Helper()
	args := append([]string{"start", "--name", name, "--listen", "127.0.0.1:0", "--gossip", "127.0.0.1:0", "--profile", "local"}, extra...)
	n, err := c.startArgs(args, baseEnv("NODAL_COOKIE="+c.cookie, "GOLOG_LOG_LEVEL=error"))
	require.NoError(c.t, err)
	n.Cookie = c.cookie
	return n
}

// startArgs starts the binary with args and env and waits for an up line.
func (c *cluster) startArgs(args, env []string) (*nodeProc, error) {
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	return startCmd(c, cmd)
}

// startCmd starts cmd, a "nodal start" command (possibly wrapped, as in
// "ip netns exec NS nodal start ..."), as one of c's nodes and waits for
// its up line.
func startCmd(c *cluster, cmd *exec.Cmd) (*nodeProc, error) {
	n := &nodeProc{cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = n.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.nodes = append(c.nodes, n)
	c.mu.Unlock()
	up := make(chan error, 1)
	go func() { // ends when the process's stdout closes (it exited)
		defer close(n.done)
		sc := bufio.NewScanner(out)
		first := true
		for sc.Scan() {
			line := sc.Text()
			if first {
				first = false
				up <- n.parseUp(line)
				continue
			}
			n.mu.Lock()
			n.lines = append(n.lines, line)
			n.mu.Unlock()
		}
		if first {
			up <- fmt.Errorf("exited before its up line; stderr: %s", strings.TrimSpace(n.stderr.String()))
		}
	}()
	select {
	case err := <-up:
		if err != nil {
			return nil, err
		}
		return n, nil
	case <-time.After(waitTimeout):
		return nil, errors.New("no up line in time")
	}
}

// parseUp reads "node NAME up listen=HOST:PORT gossip=HOST:PORT incarnation=N".
func (n *nodeProc) parseUp(line string) error {
	f := strings.Fields(line)
	if len(f) != 6 || f[0] != "node" || f[2] != "up" {
		return fmt.Errorf("not an up line: %q", line)
	}
	n.Name = f[1]
	for _, kv := range f[3:] {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "listen":
			n.Listen = v
		case "gossip":
			n.Gossip = v
		case "incarnation":
			i, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return fmt.Errorf("bad incarnation in %q", line)
			}
			n.Inc = i
		}
	}
	if n.Listen == "" || n.Gossip == "" || n.Inc == 0 {
		return fmt.Errorf("incomplete up line %q", line)
	}
	return nil
}

// result is a finished run of the binary.
type result struct {
	Stdout, Stderr string
	Code           int
}

// runBinary runs the binary to completion.
func runBinary(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

// ctl runs "nodal ctl --to n.Listen --cookie cookie args...".
func ctl(t *testing.T, to, cookie string, args ...string) result {
	t.Helper()
	return runBinary(t, baseEnv("GOLOG_LOG_LEVEL=error"), append([]string{"ctl", "--to", to, "--cookie", cookie}, args...)...)
}

// ctlJSON runs ctl with --json, requires success and exactly one JSON
// object on stdout, and decodes it into v.
func ctlJSON(t *testing.T, n *nodeProc, v any, args ...string) {
	t.Helper()
	r := ctl(t, n.Listen, n.Cookie, append([]string{"--json"}, args...)...)
	require.Equal(t, 0, r.Code, "ctl %v: stdout %q stderr %q", args, r.Stdout, r.Stderr)
	decodeOne(t, r.Stdout, v)
}

// decodeOne decodes exactly one JSON object from s into v.
func decodeOne(t *testing.T, s string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(v), "json %q", s)
	require.False(t, dec.More(), "more than one JSON value in %q", s)
}

// eventually polls cond until it holds or waitTimeout passes.
func eventually(t *testing.T, cond func() bool, what string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for "+what, args...)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func regexpContains(s, expr string) bool { return regexp.MustCompile(expr).MatchString(s) }

func regexpQuote(s string) string { return regexp.QuoteMeta(s) }
