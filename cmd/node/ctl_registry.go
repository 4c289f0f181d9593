package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nodal-go/nodal/internal/echo"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/registry"
)

// The global registry in the binary: every node it starts runs the default
// scope's registry; ctl register, unregister, whereis, registered, sync,
// spawn echo --global NAME, and global:NAME targets use it.

// registries maps each node this binary started to its registry, for the
// ctl service (one entry per node started in the process).
var registries sync.Map // *nodal.Node -> *registry.Registry

// attachRegistry starts the default scope's registry on n.
func attachRegistry(n *nodal.Node) (*registry.Registry, error) {
	r, err := registry.New(n, registry.Config{})
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	registries.Store(n, r)
	return r, nil
}

func registryOf(n *nodal.Node) (*registry.Registry, error) {
	if r, ok := registries.Load(n); ok {
		return r.(*registry.Registry), nil
	}
	return nil, fmt.Errorf("no global registry on %s", n.Name())
}

// globalPrefix marks a TARGET that is a global name.
const globalPrefix = "global:"

// parseGlobalTarget reads "global:NAME"; ok is false for other targets.
func parseGlobalTarget(s string) (name string, ok bool, err error) {
	name, ok = strings.CutPrefix(s, globalPrefix)
	if ok && (name == "" || len(name) > registry.MaxNameLen) {
		return "", true, fmt.Errorf("bad target %q: a global name of 1..%d bytes", s, registry.MaxNameLen)
	}
	return name, ok, nil
}

// resolveGlobal turns a global:NAME target into its holder's pid.
func resolveGlobal(n *nodal.Node, t *target) error {
	if t.Global == "" {
		return nil
	}
	r, err := registryOf(n)
	if err != nil {
		return err
	}
	pid, ok := r.Whereis(t.Global)
	if !ok {
		return fmt.Errorf("%w: %q", registry.ErrNotRegistered, t.Global)
	}
	t.Pid = pid
	return nil
}

// checkRegistryArgs checks the registry's ctl commands; ok is false for
// other commands.
func checkRegistryArgs(cmd string, args []string) (err error, ok bool) {
	name := func(shape string, n int) error {
		if len(args) != n {
			return fmt.Errorf("usage: %s", shape)
		}
		if args[0] == "" || len(args[0]) > registry.MaxNameLen {
			return fmt.Errorf("%s: %w", cmd, registry.ErrNameTooLong)
		}
		return nil
	}
	switch cmd {
	case "register":
		if err := name("register NAME PID", 2); err != nil {
			return err, true
		}
		_, err := nodal.ParsePid(args[1])
		return err, true
	case "unregister":
		return name("unregister NAME", 1), true
	case "whereis":
		return name("whereis NAME", 1), true
	case "registered":
		if len(args) > 1 || (len(args) == 1 && args[0] != "--count") {
			return errors.New("usage: registered [--count]"), true
		}
		return nil, true
	case "sync":
		if len(args) != 0 {
			return fmt.Errorf("usage: %s", cmd), true
		}
		return nil, true
	}
	return nil, false
}

// doRegistry runs a registry command on the ctl worker w; ok is false for
// other commands.
func (s *ctlService) doRegistry(ctx context.Context, w *nodal.Process, r ctlRequest) (resp ctlResponse, ok bool) {
	switch r.Cmd {
	case "register", "unregister", "whereis", "registered", "sync":
	default:
		return resp, false
	}
	reg, err := registryOf(w.Node())
	if err != nil {
		return ctlResponse{Error: err.Error()}, true
	}
	switch r.Cmd {
	case "register":
		pid, _ := nodal.ParsePid(r.Args[1])
		err = reg.Register(ctx, r.Args[0], pid)
		resp = ctlResponse{Name: r.Args[0], Pid: pid.String()}
	case "unregister":
		err = reg.Unregister(ctx, r.Args[0])
		resp = ctlResponse{Name: r.Args[0]}
	case "whereis":
		resp = ctlResponse{Name: r.Args[0]}
		if pid, ok := reg.Whereis(r.Args[0]); ok {
			resp.Pid = pid.String()
		}
	case "registered":
		if len(r.Args) == 1 { // --count: a reply of any size (a full one is bounded by the codec)
			resp = ctlResponse{Count: reg.Len(), NamesCounted: true} // no copy of the names
			break
		}
		resp = ctlResponse{Names: map[string]string{}}
		for name, pid := range reg.Registered() {
			resp.Names[name] = pid.String()
		}
	case "sync":
		err = reg.Sync(ctx)
		resp = ctlResponse{Node: w.Node().Name(), Nodes: reg.Nodes()}
	}
	if err != nil {
		return ctlResponse{Error: err.Error()}, true
	}
	return resp, true
}

// spawnGlobal starts an echo and registers it under the global name.
func spawnGlobal(ctx context.Context, n *nodal.Node, name string) (nodal.Pid, error) {
	reg, err := registryOf(n)
	if err != nil {
		return nodal.Pid{}, err
	}
	pid, err := n.Spawn(func(p *nodal.Process) error { return echo.Behaviour(p, nil) })
	if err != nil {
		return pid, err
	}
	if err := reg.Register(ctx, name, pid); err != nil {
		n.Exit(pid, nodal.ReasonKill)
		return nodal.Pid{}, err
	}
	return pid, nil
}

type (
	jsonWhereis struct {
		Name string  `json:"name"`
		Pid  *string `json:"pid"`
	}
	jsonRegistered struct {
		Names map[string]string `json:"names"`
	}
	jsonRegister struct {
		Name string `json:"name"`
		Pid  string `json:"pid,omitempty"`
		OK   bool   `json:"ok"`
	}
	jsonCount struct {
		Count int `json:"count"`
	}
	jsonSync struct {
		Node   string   `json:"node"`
		Synced bool     `json:"synced"`
		Peers  []string `json:"peers"`
	}
)

// jsonOfRegistry is jsonOf for the registry's commands.
func jsonOfRegistry(cmd string, r ctlResponse) (any, bool) {
	switch cmd {
	case "register", "unregister":
		return jsonRegister{Name: r.Name, Pid: r.Pid, OK: true}, true
	case "whereis":
		out := jsonWhereis{Name: r.Name}
		if r.Pid != "" {
			out.Pid = &r.Pid
		}
		return out, true
	case "registered":
		if r.NamesCounted {
			return jsonCount{Count: r.Count}, true
		}
		if r.Names == nil {
			r.Names = map[string]string{}
		}
		return jsonRegistered{Names: r.Names}, true
	case "sync":
		return jsonSync{Node: r.Node, Synced: true, Peers: nonNil(r.Nodes)}, true
	}
	return nil, false
}

// writePlainRegistry is writePlain for the registry's commands.
func writePlainRegistry(w io.Writer, cmd string, r ctlResponse) bool {
	switch cmd {
	case "register":
		fmt.Fprintf(w, "registered %s as %s\n", r.Pid, r.Name)
	case "unregister":
		fmt.Fprintf(w, "unregistered %s\n", r.Name)
	case "whereis":
		if r.Pid == "" {
			fmt.Fprintf(w, "%s undefined\n", r.Name)
		} else {
			fmt.Fprintf(w, "%s %s\n", r.Name, r.Pid)
		}
	case "registered":
		if r.NamesCounted {
			fmt.Fprintf(w, "%d\n", r.Count)
			break
		}
		names := make([]string, 0, len(r.Names))
		for name := range r.Names {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			fmt.Fprintf(w, "%s %s\n", name, r.Names[name])
		}
	case "sync":
		fmt.Fprintf(w, "synced with %s\n", strings.Join(nonNil(r.Nodes), " "))
	default:
		return false
	}
	return true
}

// registryCommands are ctl help's lines for the registry's commands.
var registryCommands = []ctlCommand{
	{"register NAME PID", "register PID (a process of the node) under the global NAME",
		`{"name":"db","pid":"<a@10.0.0.1.12.3>","ok":true}`},
	{"unregister NAME", "remove the global NAME (held by a process of the node)",
		`{"name":"db","ok":true}`},
	{"whereis NAME", "the process holding the global NAME, as the node sees it",
		`{"name":"db","pid":"<a@10.0.0.1.12.3>"} or {"name":"db","pid":null}`},
	{"registered [--count]", "every global name the node sees, with its holder (--count: how many; a full list is bounded by the codec, 65,536 names)",
		`{"names":{"db":"<a@10.0.0.1.12.3>"}} or {"count":1}`},
	{"sync", "exchange the registry's state with every reachable node and wait for their answers",
		`{"node":"a@10.0.0.1","synced":true,"peers":["b@10.0.0.2"]}`},
}

// demoGlobalName registers a global name on a and shows it resolved on b
// and c.
func (d *demo) demoGlobalName(ctx context.Context) error {
	con := d.con
	con.sayf("== A global name")
	pid, err := spawnGlobal(ctx, d.a.Node, "greeter")
	if err != nil {
		return err
	}
	con.sayf("a registers an echo process under the global name greeter: %v.", pid)
	regB, err := registryOf(d.b.Node)
	if err != nil {
		return err
	}
	if err := waitFor(ctx, func() bool { got, ok := regB.Whereis("greeter"); return ok && got == pid }); err != nil {
		return fmt.Errorf("greeter not seen on b: %w", err)
	}
	con.sayf("b resolves greeter locally: %v.", pid)
	if err := waitFor(ctx, func() bool {
		v, err := d.a.CallName(ctx, d.cName, ctlServiceName, ctlRequest{Cmd: "whereis", Args: []string{"greeter"}})
		r, ok := v.(ctlResponse)
		return err == nil && ok && r.Pid == pid.String()
	}); err != nil {
		return fmt.Errorf("greeter not seen on c: %w", err)
	}
	con.sayf("c resolves greeter too (asked through c's ctl service): %v.", pid)
	con.sayf("")
	return nil
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(ctx context.Context, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// normalizeGlobalFlag accepts --global=NAME, -global NAME and -global=NAME
// for spawn's --global NAME.
func normalizeGlobalFlag(args []string) []string {
	if len(args) == 2 {
		for _, p := range []string{"--global=", "-global="} {
			if v, ok := strings.CutPrefix(args[1], p); ok {
				return []string{args[0], "--global", v}
			}
		}
	}
	if len(args) == 3 && args[1] == "-global" {
		return []string{args[0], "--global", args[2]}
	}
	return args
}
