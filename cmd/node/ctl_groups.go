package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nodal-go/nodal/internal/echo"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/groups"
)

// The process groups in the binary: every started node runs the default
// scope; ctl's join, leave, members and groups commands and spawn's
// --group use it.

// nodeGroups holds each started node's default scope.
var nodeGroups sync.Map // *nodal.Node -> *groups.Scope

// attachGroups starts the default groups scope on n (Node.Stop stops it).
func attachGroups(n *nodal.Node) error {
	s, err := groups.New(n, groups.Config{})
	if err != nil {
		return err
	}
	nodeGroups.Store(n, s)
	return nil
}

func scopeOf(n *nodal.Node) (*groups.Scope, error) {
	if v, ok := nodeGroups.Load(n); ok {
		return v.(*groups.Scope), nil
	}
	return nil, fmt.Errorf("%s runs no process groups", n.Name())
}

func init() {
	ctlCommands = append(ctlCommands,
		ctlCommand{"spawn echo [--name NAME | --global NAME] --group GROUP", "start an echo process and join it to GROUP",
			`{"pid":"<a@10.0.0.1.12.3>"}`},
		ctlCommand{"join GROUP PID", "join PID, a process of the node, to GROUP (once more: pg's multiplicity)",
			`{"group":"GROUP","pid":"<a@10.0.0.1.12.3>"}`},
		ctlCommand{"leave GROUP PID", "remove one membership of PID from GROUP",
			`{"group":"GROUP","pid":"<a@10.0.0.1.12.3>"}`},
		ctlCommand{"members GROUP", "GROUP's members on every reachable node, a pid once per membership",
			`{"group":"GROUP","pids":["<a@10.0.0.1.12.3>",...]}`},
		ctlCommand{"groups", "every group with members and its number of memberships",
			`{"groups":{"GROUP":N,...}}`},
	)
}

// splitGroupFlag removes "--group GROUP" from spawn's arguments.
func splitGroupFlag(args []string) (rest []string, group string, found bool) {
	i := slices.IndexFunc(args, func(a string) bool { return a == "--group" || a == "-group" })
	if i < 0 || i+1 >= len(args) {
		return args, "", i >= 0
	}
	return append(slices.Clone(args[:i]), args[i+2:]...), args[i+1], true
}

// checkGroupsArgs checks the groups commands (and spawn with --group);
// handled is false for the other commands.
func checkGroupsArgs(cmd string, args []string) (handled bool, err error) {
	switch cmd {
	case "join", "leave":
		if len(args) != 2 {
			return true, fmt.Errorf("usage: %s GROUP PID", cmd)
		}
		if err := groups.ValidateGroup(args[0]); err != nil {
			return true, err
		}
		_, err := nodal.ParsePid(args[1])
		return true, err
	case "members":
		if len(args) != 1 {
			return true, fmt.Errorf("usage: members GROUP")
		}
		return true, groups.ValidateGroup(args[0])
	case "groups":
		if len(args) != 0 {
			return true, fmt.Errorf("usage: groups")
		}
		return true, nil
	case "spawn":
		rest, group, found := splitGroupFlag(args)
		if !found {
			return false, nil
		}
		if group == "" {
			return true, fmt.Errorf("usage: spawn echo [--name NAME | --global NAME] --group GROUP")
		}
		if err := groups.ValidateGroup(group); err != nil {
			return true, err
		}
		return true, checkCtlArgs(cmd, rest)
	}
	return false, nil
}

// doGroups runs a groups command on the ctl worker w; ok is false for the
// other commands.
func (s *ctlService) doGroups(ctx context.Context, w *nodal.Process, r ctlRequest) (resp ctlResponse, ok bool) {
	fail := func(err error) (ctlResponse, bool) { return ctlResponse{Error: err.Error()}, true }
	switch r.Cmd {
	case "join", "leave", "members", "groups":
	case "spawn":
		if _, _, found := splitGroupFlag(r.Args); !found {
			return resp, false
		}
	default:
		return resp, false
	}
	sc, err := scopeOf(w.Node())
	if err != nil {
		return fail(err)
	}
	switch r.Cmd {
	case "join", "leave":
		pid, _ := nodal.ParsePid(r.Args[1])
		if r.Cmd == "join" {
			err = sc.Join(ctx, r.Args[0], pid)
		} else {
			err = sc.Leave(ctx, r.Args[0], pid)
		}
		if err != nil {
			return fail(err)
		}
		return ctlResponse{Group: r.Args[0], Pid: pid.String()}, true
	case "members":
		return ctlResponse{Group: r.Args[0], Pids: pidStrings(sc.Members(r.Args[0]))}, true
	case "groups":
		return ctlResponse{GroupCounts: sc.Counts()}, true
	}
	// spawn echo ... --group GROUP
	rest, group, _ := splitGroupFlag(r.Args)
	resp = s.spawn(ctx, w, rest)
	if resp.Error != "" {
		return resp, true
	}
	pid, err := nodal.ParsePid(resp.Pid)
	if err == nil {
		err = sc.Join(ctx, group, pid)
	}
	if err != nil {
		w.Node().Exit(pid, nodal.ReasonKill)
		return fail(fmt.Errorf("spawned %v but could not join %q: %w", pid, group, err))
	}
	return resp, true
}

func pidStrings(ps []nodal.Pid) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// JSON shapes of the groups commands.
type (
	jsonMembership struct {
		Group string `json:"group"`
		Pid   string `json:"pid"`
	}
	jsonMembers struct {
		Group string   `json:"group"`
		Pids  []string `json:"pids"`
	}
	jsonGroups struct {
		Groups map[string]int `json:"groups"`
	}
)

// groupsJSON returns the JSON object of a groups command's answer.
func groupsJSON(cmd string, r ctlResponse) (any, bool) {
	switch cmd {
	case "join", "leave":
		return jsonMembership{Group: r.Group, Pid: r.Pid}, true
	case "members":
		return jsonMembers{Group: r.Group, Pids: nonNil(r.Pids)}, true
	case "groups":
		g := r.GroupCounts
		if g == nil {
			g = map[string]int{}
		}
		return jsonGroups{Groups: g}, true
	}
	return nil, false
}

// writeGroupsPlain prints a groups command's answer as lines.
func writeGroupsPlain(w io.Writer, cmd string, r ctlResponse) {
	switch cmd {
	case "join":
		fmt.Fprintf(w, "%s joined %s\n", r.Pid, r.Group)
	case "leave":
		fmt.Fprintf(w, "%s left %s\n", r.Pid, r.Group)
	case "members":
		for _, p := range r.Pids {
			fmt.Fprintln(w, p)
		}
	case "groups":
		names := make([]string, 0, len(r.GroupCounts))
		for g := range r.GroupCounts {
			names = append(names, g)
		}
		slices.Sort(names)
		for _, g := range names {
			fmt.Fprintf(w, "%s %d\n", g, r.GroupCounts[g])
		}
	}
}

// groupsDemo is the demo's process-group step: an echo of each node joins
// the group "demo" (c's through its ctl service), and a shows the members
// and calls them all.
func (d *demo) groupsDemo(ctx context.Context) error {
	con := d.con
	sctx, cancel := d.step(ctx)
	defer cancel()
	const group = "demo"
	for _, n := range []*runningNode{d.a, d.b} {
		v, err := n.CallName(sctx, n.Name(), ctlServiceName, ctlRequest{Cmd: "spawn", Args: []string{"echo", "--group", group}})
		if err != nil {
			return err
		}
		if r := v.(ctlResponse); r.Error != "" {
			return fmt.Errorf("spawn on %s: %s", n.Name(), r.Error)
		}
	}
	v, err := d.a.CallName(sctx, d.cName, ctlServiceName, ctlRequest{Cmd: "spawn", Args: []string{"echo", "--group", group}})
	if err != nil {
		return err
	}
	if r := v.(ctlResponse); r.Error != "" {
		return fmt.Errorf("spawn on %s: %s", d.cName, r.Error)
	}
	con.sayf("a, b and c each start an echo process and join it to the group %q (pg's join, on its own node).", group)
	sa, err := scopeOf(d.a.Node)
	if err != nil {
		return err
	}
	for sa.Count(group) < 3 {
		select {
		case <-sctx.Done():
			return fmt.Errorf("a sees %v in %q", sa.Members(group), group)
		case <-time.After(5 * time.Millisecond):
		}
	}
	con.sayf("a@127.0.0.1 sees the members of %q: %s", group, strings.Join(pidStrings(sa.Members(group)), " "))
	replies, failed, err := sa.Call(sctx, group, "who is there?")
	if err != nil {
		return err
	}
	var from []string
	for _, r := range replies {
		if er, ok := r.Value.(echo.Reply); ok {
			from = append(from, er.Pid.Node)
		}
	}
	con.sayf("a called every member at once: %d replies (from %s), %d failed.", len(replies), strings.Join(from, ", "), len(failed))
	con.sayf("")
	return nil
}
