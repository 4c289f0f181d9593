package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/nodal-go/nodal/internal/echo"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/p2p"
)

// demoCookie is the demo cluster's cookie; a fixed one is fine on loopback.
const demoCookie = "nodal-demo"

// demoStepTimeout bounds each step of the demo.
const demoStepTimeout = 10 * time.Second

// console serialises the demo's narration and the nodes' output lines.
type console struct {
	mu    sync.Mutex
	w     io.Writer
	lines []string      // every node output line so far, prefixed
	seen  chan struct{} // signalled on each new line
}

func newConsole(w io.Writer) *console {
	return &console{w: w, seen: make(chan struct{}, 1)}
}

// sayf prints one narration line.
func (c *console) sayf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.w, format+"\n", args...)
}

// nodeOutput returns a writer for node's group leader: each line it gets is
// printed as "  [node] line".
func (c *console) nodeOutput(node string) io.Writer {
	return &lineWriter{c: c, prefix: "  [" + node + "] "}
}

// waitLine waits until a node printed a line containing all of parts.
func (c *console) waitLine(ctx context.Context, parts ...string) error {
	for {
		c.mu.Lock()
		for _, l := range c.lines {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(l, p)
			}
			if ok {
				c.mu.Unlock()
				return nil
			}
		}
		c.mu.Unlock()
		select {
		case <-c.seen:
		case <-ctx.Done():
			return fmt.Errorf("no output line with %q: %w", parts, ctx.Err())
		}
	}
}

type lineWriter struct {
	c      *console
	prefix string
	buf    []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		line := l.prefix + string(l.buf[:i])
		l.buf = l.buf[i+1:]
		fmt.Fprintln(l.c.w, line)
		l.c.lines = append(l.c.lines, line)
		select {
		case l.c.seen <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// cmdDemo runs nodal demo: three nodes on loopback, a and b in this
// process and c in a child OS process, and a narrated tour.
func cmdDemo(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 {
		return usagef("demo takes no arguments")
	}
	con := newConsole(stdout)
	d := &demo{con: con}
	defer d.close()
	return d.run(ctx)
}

type demo struct {
	con   *console
	a, b  *runningNode
	c     *childNode // node c, the child process
	cName string
}

func (d *demo) close() {
	if d.c != nil {
		d.c.stop()
	}
	for _, n := range []*runningNode{d.b, d.a} {
		if n != nil {
			_ = stopNode(n.Node)
		}
	}
}

func (d *demo) step(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, demoStepTimeout)
}

func (d *demo) run(ctx context.Context) error {
	con := d.con
	con.sayf("nodal demo: three nodes on loopback sharing the cookie %q.", demoCookie)
	con.sayf("Nodes a and b run in this process; node c runs in a second OS process.")
	con.sayf("")
	var err error
	start := func(name string, join []string) (*runningNode, error) {
		return startNode(ctx, startOptions{Name: name, Cookie: demoCookie, Listen: "127.0.0.1:0", Gossip: "127.0.0.1:0",
			Join: join, Profile: p2p.ProfileLocal}, con.nodeOutput(name))
	}
	con.sayf("== Starting the cluster")
	if d.a, err = start("a@127.0.0.1", nil); err != nil {
		return fmt.Errorf("start a: %w", err)
	}
	con.sayf("node a@127.0.0.1 is up; it listens on %s and gossips on %s.", d.a.Listen, d.a.Gossip)
	if d.b, err = start("b@127.0.0.1", []string{d.a.Gossip}); err != nil {
		return fmt.Errorf("start b: %w", err)
	}
	con.sayf("node b@127.0.0.1 is up and joined the cluster through a's gossip address.")
	child, err := startChild(ctx, demoCookie, "c@127.0.0.1", []string{d.a.Gossip}, io.Discard, con.nodeOutput("c@127.0.0.1 stdout"))
	if err != nil {
		return fmt.Errorf("start c: %w", err)
	}
	d.c = child
	up := child.up
	d.cName = up.Name
	con.sayf("node %s is up in OS process %d and joined the same way.", up.Name, child.cmd.Process.Pid)
	con.sayf("")

	con.sayf("== Membership: who sees whom")
	sctx, cancel := d.step(ctx)
	defer cancel()
	want := []string{"a@127.0.0.1", "b@127.0.0.1", "c@127.0.0.1"}
	var cNodes []string
	for {
		if equal(withSelf(d.a.Node), want) && equal(withSelf(d.b.Node), want) {
			v, err := d.a.CallName(sctx, d.cName, ctlServiceName, ctlRequest{Cmd: "nodes"})
			if err == nil {
				if r, ok := v.(ctlResponse); ok && equal(r.Nodes, want) {
					cNodes = r.Nodes
					break
				}
			}
		}
		select {
		case <-sctx.Done():
			return fmt.Errorf("the three nodes did not see each other: a sees %v, b sees %v", d.a.Nodes(), d.b.Nodes())
		case <-time.After(20 * time.Millisecond):
		}
	}
	con.sayf("a@127.0.0.1 sees %s", strings.Join(others(withSelf(d.a.Node), "a@127.0.0.1"), " and "))
	con.sayf("b@127.0.0.1 sees %s", strings.Join(others(withSelf(d.b.Node), "b@127.0.0.1"), " and "))
	con.sayf("c@127.0.0.1 sees %s (asked through c's ctl service)", strings.Join(others(cNodes, "c@127.0.0.1"), " and "))
	con.sayf("")

	con.sayf("== A remote message")
	if _, err := d.b.Spawn(func(p *nodal.Process) error {
		m, err := p.Receive(p.Context())
		if err != nil {
			return nil
		}
		p.Printf("inbox got %q\n", m)
		return nil
	}, nodal.WithName("inbox")); err != nil {
		return err
	}
	con.sayf("b registers a process under the name inbox; a sends {inbox, b@127.0.0.1} a string.")
	if err := d.a.SendNode("b@127.0.0.1", "inbox", "hello from a"); err != nil {
		return err
	}
	if err := con.waitLine(sctx, "[b@127.0.0.1]", "inbox got"); err != nil {
		return err
	}
	con.sayf("")

	if err := d.demoGlobalName(sctx); err != nil {
		return err
	}
	con.sayf("== A process group")
	if err := d.groupsDemo(ctx); err != nil {
		return fmt.Errorf("process group: %w", err)
	}
	con.sayf("== A remote spawn and a remote call")
	return d.rest(ctx)
}

func (d *demo) rest(ctx context.Context) error {
	con := d.con
	events := make(chan string, 8)
	ready := make(chan error, 1)
	var echoPid nodal.Pid
	// The spawner lives on a: the echo it spawns on c inherits its group
	// leader, so what the echo prints shows up on a.
	if _, err := d.a.Spawn(func(p *nodal.Process) error {
		sctx, cancel := context.WithTimeout(p.Context(), demoStepTimeout)
		defer cancel()
		pid, err := p.SpawnOn(sctx, d.cName, "echo", nil)
		if err != nil {
			ready <- err
			return nil
		}
		echoPid = pid
		v, err := p.Call(sctx, pid, "are you there?")
		if err != nil {
			ready <- err
			return nil
		}
		r := v.(echo.Reply)
		events <- fmt.Sprintf("a called the echo on c and it replied %q with its pid %v.", r.Text, r.Pid)
		p.Send(pid, "printed by a process on c")
		ready <- nil
		return nil
	}); err != nil {
		return err
	}
	if err := <-ready; err != nil {
		return fmt.Errorf("remote spawn and call: %w", err)
	}
	con.sayf("a spawned the behaviour \"echo\" on %s: pid %v.", d.cName, echoPid)
	con.sayf("%s", <-events)
	con.sayf("a sent the echo a string; the echo prints it, and since it inherited a's group leader the line appears on a:")
	sctx, cancel := d.step(ctx)
	defer cancel()
	if err := con.waitLine(sctx, "[a@127.0.0.1]", "printed by a process on c"); err != nil {
		return err
	}
	con.sayf("")

	con.sayf("== Monitors and links across nodes")
	fired := make(chan string, 3)
	armed := make(chan struct{}, 3)
	// A monitor on a.
	if _, err := d.a.Spawn(func(p *nodal.Process) error {
		ref := p.Monitor(echoPid)
		armed <- struct{}{}
		m, err := p.ReceiveMatch(p.Context(), func(m any) bool { d, ok := m.(nodal.Down); return ok && d.Ref == ref })
		if err == nil {
			fired <- fmt.Sprintf("monitor on a: Down for %v, reason %v", m.(nodal.Down).Pid, m.(nodal.Down).Reason)
		}
		return nil
	}); err != nil {
		return err
	}
	// A link on a, trapping exits.
	if _, err := d.a.Spawn(func(p *nodal.Process) error {
		p.TrapExit(true)
		p.Link(echoPid)
		armed <- struct{}{}
		m, err := p.ReceiveMatch(p.Context(), func(m any) bool { _, ok := m.(nodal.Exit); return ok })
		if err == nil {
			fired <- fmt.Sprintf("link on a: Exit from %v, reason %v", m.(nodal.Exit).From, m.(nodal.Exit).Reason)
		}
		return nil
	}); err != nil {
		return err
	}
	// A node monitor on b.
	if _, err := d.b.Spawn(func(p *nodal.Process) error {
		p.MonitorNode(d.cName)
		armed <- struct{}{}
		m, err := p.ReceiveMatch(p.Context(), func(m any) bool { _, ok := m.(nodal.NodeDown); return ok })
		if err == nil {
			fired <- fmt.Sprintf("node monitor on b: NodeDown for %s (%s)", m.(nodal.NodeDown).Node, nodeDownCause(m.(nodal.NodeDown).Reason))
		}
		return nil
	}); err != nil {
		return err
	}
	for range 3 {
		select {
		case <-armed:
		case <-sctx.Done():
			return errors.New("monitors not armed in time")
		}
	}
	// The link and monitor requests travel to c before the kill; a call
	// after them on the same connection makes sure they have arrived.
	if _, err := d.a.Call(sctx, echoPid, "sync"); err != nil {
		return fmt.Errorf("sync with echo: %w", err)
	}
	con.sayf("a monitors the echo on c, another process on a links to it (trapping exits), and b monitors node c.")
	con.sayf("Now node c is stopped abruptly: kill -9 of its OS process, as if its machine had crashed.")
	_ = d.c.cmd.Process.Kill()
	var got []string
	for range 3 {
		select {
		case s := <-fired:
			got = append(got, s)
		case <-sctx.Done():
			return fmt.Errorf("only %d of 3 signals fired after c died", len(got))
		}
	}
	sortStrings(got)
	for _, s := range got {
		con.sayf("%s", s)
	}
	con.sayf("Every link and monitor towards the lost node fired with reason noconnection, as in Erlang;")
	con.sayf("the node monitor says why the node went down.")
	for !equal(withSelf(d.a.Node), []string{"a@127.0.0.1", "b@127.0.0.1"}) {
		select {
		case <-sctx.Done():
			return fmt.Errorf("a still sees %v", d.a.Nodes())
		case <-time.After(10 * time.Millisecond):
		}
	}
	con.sayf("a@127.0.0.1 now sees %s", strings.Join(d.a.Nodes(), " and "))
	con.sayf("")

	con.sayf("== A network split that heals by itself")
	if err := d.splitDemo(ctx); err != nil {
		return fmt.Errorf("split: %w", err)
	}

	con.sayf("== Leaving")
	if err := stopNode(d.b.Node); err != nil {
		return fmt.Errorf("stop b: %w", err)
	}
	d.b = nil
	con.sayf("b@127.0.0.1 left the cluster gracefully.")
	if err := stopNode(d.a.Node); err != nil {
		return fmt.Errorf("stop a: %w", err)
	}
	d.a = nil
	con.sayf("a@127.0.0.1 stopped. Demo done.")
	return nil
}

func equal(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

// others returns nodes without self.
func others(nodes []string, self string) []string {
	var out []string
	for _, n := range nodes {
		if n != self {
			out = append(out, n)
		}
	}
	return out
}

// nodeDownCause says in words why a node went down.
func nodeDownCause(reason error) string {
	switch {
	case errors.Is(reason, p2p.ErrConnClosed):
		return "its connection closed"
	case errors.Is(reason, p2p.ErrFailureDetected):
		return "failure detection declared it dead"
	case errors.Is(reason, nodal.ErrNodeLeft):
		return "it left the cluster"
	case errors.Is(reason, p2p.ErrDisconnected):
		return "it was disconnected"
	case errors.Is(reason, nodal.ReasonNoConnection):
		return "noconnection"
	}
	return reason.Error()
}
