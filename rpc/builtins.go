package rpc

import (
	"context"
	"fmt"
	"os"
	"runtime"

	"github.com/nodal-go/nodal"
)

// NodeInfo is the result of the built-in node.info.
type NodeInfo struct {
	Name        string
	Incarnation uint64
	Nodes       []string // connected visible nodes
	Hidden      []string // connected hidden nodes
	Services    []string
	Registered  []string // registered process names
	Processes   int
	Functions   int // functions this node exposes over rpc
}

// ProcessSummary is one entry of the built-in node.processes.
type ProcessSummary struct {
	Pid    string
	Name   string
	Status string
	Queue  int
}

// RuntimeInfo is the result of the built-in runtime.info.
type RuntimeInfo struct {
	GoVersion  string
	GOOS       string
	GOARCH     string
	NumCPU     int
	Goroutines int
	HeapAlloc  uint64
}

// Builtins lists the names of the built-in functions every node's RPC
// exposes (unless Config.NoBuiltins; rpc.functions is always there).
var Builtins = []string{
	"rpc.functions",  // nil -> []FunctionInfo
	"rpc.echo",       // any -> the same value
	"rpc.stats",      // nil -> Stats: this node's RPC counters
	"node.info",      // nil -> NodeInfo
	"node.nodes",     // nil -> []string: this node and the connected visible nodes
	"node.processes", // nil -> []ProcessSummary
	"os.getpid",      // nil -> int
	"os.hostname",    // nil -> string
	"runtime.info",   // nil -> RuntimeInfo
}

// Wire names of the built-ins' result types.
func init() {
	for name, v := range map[string]any{
		"nodal.rpc.functions": []FunctionInfo{},
		"nodal.rpc.nodeinfo":  NodeInfo{},
		"nodal.rpc.processes": []ProcessSummary{},
		"nodal.rpc.runtime":   RuntimeInfo{},
		"nodal.rpc.strings":   []string{},
		"nodal.rpc.stats":     Stats{},
	} {
		if err := nodal.RegisterType(name, v); err != nil {
			panic(fmt.Sprintf("rpc: register %s: %v", name, err))
		}
	}
}

func registerBuiltins(r *RPC, all bool) error {
	n := r.n
	err := Register(r, "rpc.functions", func(context.Context, any) ([]FunctionInfo, error) { return r.Functions(), nil })
	if err != nil || !all {
		return err
	}
	for _, e := range []error{
		Register(r, "rpc.echo", func(_ context.Context, v any) (any, error) { return v, nil }),
		Register(r, "rpc.stats", func(context.Context, any) (Stats, error) { return r.Stats(), nil }),
		Register(r, "node.info", func(context.Context, any) (NodeInfo, error) {
			return NodeInfo{
				Name: n.Name(), Incarnation: n.Incarnation(), Nodes: n.Nodes(), Hidden: n.HiddenNodes(),
				Services: n.Services(), Registered: n.Registered(), Processes: len(n.Processes()),
				Functions: len(*r.funcs.Load()),
			}, nil
		}),
		Register(r, "node.nodes", func(context.Context, any) ([]string, error) {
			return append([]string{n.Name()}, n.Nodes()...), nil
		}),
		Register(r, "node.processes", func(context.Context, any) ([]ProcessSummary, error) {
			var out []ProcessSummary
			for _, pid := range n.Processes() {
				pi, err := n.ProcessInfo(pid)
				if err != nil {
					continue // exited meanwhile
				}
				out = append(out, ProcessSummary{Pid: pid.String(), Name: pi.RegisteredName, Status: pi.Status.String(), Queue: pi.MessageQueueLen})
			}
			return out, nil
		}),
		Register(r, "os.getpid", func(context.Context, any) (int, error) { return os.Getpid(), nil }),
		Register(r, "os.hostname", func(context.Context, any) (string, error) { return os.Hostname() }),
		Register(r, "runtime.info", func(context.Context, any) (RuntimeInfo, error) {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			return RuntimeInfo{GoVersion: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH,
				NumCPU: runtime.NumCPU(), Goroutines: runtime.NumGoroutine(), HeapAlloc: ms.HeapAlloc}, nil
		}),
	} {
		if e != nil {
			return e
		}
	}
	return nil
}
