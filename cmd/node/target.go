package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/nodal-go/nodal"
)

// target is where ctl send and call go: a pid, or a name registered on a node.
type target struct {
	Pid  nodal.Pid
	Name string
	Node string

	Global string // global:NAME, a name in the global registry
}

// parseTarget reads "<a@host.12.3>" (a pid as printed) or "NAME@NODE" (a
// registered name on a node; split at the first '@', so "echo@a@host" is
// the name echo on node a@host).
func parseTarget(s string) (target, error) {
	if name, ok, err := parseGlobalTarget(s); ok {
		return target{Global: name}, err
	}
	if strings.HasPrefix(s, "<") {
		pid, err := nodal.ParsePid(s)
		if err != nil {
			return target{}, fmt.Errorf("bad target %q: %w", s, err)
		}
		return target{Pid: pid}, nil
	}
	name, node, ok := strings.Cut(s, "@")
	if !ok || name == "" {
		return target{}, fmt.Errorf("bad target %q: want a pid <node.id.incarnation> or NAME@NODE", s)
	}
	if err := nodal.ValidateNodeName(node); err != nil {
		return target{}, fmt.Errorf("bad target %q: %w", s, err)
	}
	return target{Name: name, Node: node}, nil
}

// checkCtlArgs checks a ctl command and its arguments; both the ctl client
// (before it connects) and the ctl service check them.
func checkCtlArgs(cmd string, args []string) error {
	want := func(min, max int, shape string) error {
		if len(args) < min || len(args) > max {
			return fmt.Errorf("usage: %s", shape)
		}
		return nil
	}
	if handled, err := checkGroupsArgs(cmd, args); handled {
		return err
	}
	switch cmd {
	case "info", "nodes", "processes", "partitions", "quorum":
		return want(0, 0, cmd)
	case "ping":
		if err := want(1, 1, "ping NODE"); err != nil {
			return err
		}
		return nodal.ValidateNodeName(args[0])
	case "spawn":
		if err := want(1, 3, "spawn echo [--name NAME | --global NAME]"); err != nil {
			return err
		}
		if len(args) == 2 || (len(args) == 3 && args[1] != "--name" && args[1] != "--global") {
			return fmt.Errorf("usage: spawn echo [--name NAME | --global NAME]")
		}
		if len(args) == 3 && args[2] == "" {
			return fmt.Errorf("spawn: empty --name")
		}
		return nil
	case "send", "call":
		if err := want(2, 2, cmd+" TARGET TEXT"); err != nil {
			return err
		}
		_, err := parseTarget(args[0])
		return err
	case "rpc":
		if err := want(2, 3, "rpc NODE FUNC [ARGS as JSON]"); err != nil {
			return err
		}
		if err := nodal.ValidateNodeName(args[0]); err != nil {
			return err
		}
		if len(args) == 3 && !json.Valid([]byte(args[2])) {
			return fmt.Errorf("rpc: ARGS %q is not JSON", args[2])
		}
		return nil
	case "kill":
		if err := want(1, 2, "kill PID [REASON]"); err != nil {
			return err
		}
		_, err := nodal.ParsePid(args[0])
		return err
	}
	if ok, err := harnessCheckArgs(cmd, args); ok {
		return err
	}
	if err, ok := checkRegistryArgs(cmd, args); ok {
		return err
	}
	return fmt.Errorf("unknown command %q (want info, nodes, ping, spawn, send, call, kill, processes or rpc)", cmd)
}

// normalizeSpawnArgs accepts --name=NAME as well as --name NAME.
func normalizeSpawnArgs(args []string) []string {
	args = normalizeGlobalFlag(args)
	if len(args) == 2 {
		if v, ok := strings.CutPrefix(args[1], "--name="); ok {
			return []string{args[0], "--name", v}
		}
		if v, ok := strings.CutPrefix(args[1], "-name="); ok {
			return []string{args[0], "--name", v}
		}
	}
	if len(args) == 3 && args[1] == "-name" {
		return []string{args[0], "--name", args[2]}
	}
	return args
}

func sortStrings(s []string) { slices.Sort(s) }
