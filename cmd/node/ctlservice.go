package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nodal-go/nodal/internal/echo"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/heal"
	"github.com/nodal-go/nodal/rpc"
)

// ctlOpTimeout bounds one ctl command on the node (a ping, a call, waiting
// for a killed process to exit).
const ctlOpTimeout = 5 * time.Second

// ctlService is the actor registered as nodal_ctl on every started node. It
// answers ctlRequests sent with Call; each request runs in its own worker
// process, so a slow command does not hold up the others.
type ctlService struct {
	gossip string   // this node's gossip host:port, for info
	rpc    *rpc.RPC // this node's rpc service, for the rpc command

	heal *heal.Heal // this node's heal service, for partitions and quorum
}

// Init implements nodal.Actor.
func (s *ctlService) Init(*nodal.Process) error { return nil }

// HandleMessage implements nodal.Actor.
func (s *ctlService) HandleMessage(p *nodal.Process, m any) error {
	req, ok := m.(nodal.CallRequest)
	if !ok {
		return nil
	}
	r, ok := req.Req.(ctlRequest)
	if !ok {
		p.Reply(req.From, ctlResponse{Error: fmt.Sprintf("not a ctl request: %T", req.Req)})
		return nil
	}
	from := req.From
	_, err := p.Spawn(func(w *nodal.Process) error {
		ctx, cancel := context.WithTimeout(w.Context(), ctlOpTimeout)
		defer cancel()
		w.Reply(from, s.do(ctx, w, r))
		return nil
	})
	if err != nil {
		p.Reply(from, ctlResponse{Error: err.Error()})
	}
	return nil
}

// startCtlService spawns the ctl service on n under its reserved name.
func startCtlService(n *nodal.Node, gossip string, r *rpc.RPC, h *heal.Heal) error {
	s := &ctlService{gossip: gossip, rpc: r, heal: h}
	_, err := n.SpawnActor(s, nodal.WithName(ctlServiceName))
	return err
}

// do runs one command on the worker process w.
func (s *ctlService) do(ctx context.Context, w *nodal.Process, r ctlRequest) ctlResponse {
	n := w.Node()
	fail := func(err error) ctlResponse { return ctlResponse{Error: err.Error()} }
	if err := checkCtlArgs(r.Cmd, r.Args); err != nil {
		return fail(err)
	}
	if resp, ok := s.doGroups(ctx, w, r); ok {
		return resp
	}
	switch r.Cmd {
	case "info":
		info := n.Info()
		return ctlResponse{
			Node:        info.Name,
			Incarnation: info.Incarnation,
			Listen:      listenHostPorts(info.Addrs),
			Gossip:      s.gossip,
			ListenBound: n.ListenAddrs(),
			GossipBound: n.GossipBindAddr(),
			Nodes:       withSelf(n),
			Hidden:      n.HiddenNodes(),
			Registered:  n.Registered(),
			Count:       len(n.Processes()),
		}
	case "nodes":
		return ctlResponse{Node: n.Name(), Nodes: withSelf(n)}
	case "ping":
		rtt, err := n.Ping(ctx, r.Args[0])
		if err != nil {
			return fail(fmt.Errorf("pang %s: %w", r.Args[0], err))
		}
		return ctlResponse{Node: r.Args[0], RTTMicros: float64(rtt.Nanoseconds()) / 1e3}
	case "spawn":
		return s.spawn(ctx, w, r.Args)
	case "send":
		t, _ := parseTarget(r.Args[0])
		err := resolveGlobal(n, &t)
		if err != nil {
			return fail(err)
		}
		if t.Name != "" {
			err = w.SendNode(t.Node, t.Name, r.Args[1])
		} else {
			w.Send(t.Pid, r.Args[1])
		}
		if err != nil {
			return fail(err)
		}
		return ctlResponse{Pid: r.Args[0]}
	case "call":
		t, _ := parseTarget(r.Args[0])
		var v any
		err := resolveGlobal(n, &t)
		if err != nil {
			return fail(err)
		}
		if t.Name != "" {
			v, err = w.CallName(ctx, t.Node, t.Name, r.Args[1])
		} else {
			v, err = w.Call(ctx, t.Pid, r.Args[1])
		}
		if err != nil {
			return fail(err)
		}
		if er, ok := v.(echo.Reply); ok {
			return ctlResponse{Reply: er.Text, Pid: er.Pid.String()}
		}
		return ctlResponse{Reply: echo.Text(v), Pid: t.Pid.String()}
	case "kill":
		return s.kill(ctx, w, r.Args)
	case "rpc":
		var args json.RawMessage
		if len(r.Args) == 3 {
			args = json.RawMessage(r.Args[2])
		}
		out, err := s.rpc.CallJSON(ctx, r.Args[0], r.Args[1], args)
		if err != nil {
			return fail(err)
		}
		return ctlResponse{Node: r.Args[0], Func: r.Args[1], Result: string(out)}
	case "partitions", "quorum":
		return s.healCmd(r.Cmd)
	case "processes":
		var ps []ctlProcess
		for _, pid := range n.Processes() {
			pi, err := n.ProcessInfo(pid)
			if err != nil {
				continue // exited meanwhile
			}
			ps = append(ps, ctlProcess{Pid: pid.String(), Name: pi.RegisteredName, Status: pi.Status.String(), Queue: pi.MessageQueueLen})
		}
		return ctlResponse{Node: n.Name(), Processes: ps}
	}
	if resp, ok := s.harnessDo(ctx, w, r); ok {
		return resp
	}
	if resp, ok := s.doRegistry(ctx, w, r); ok {
		return resp
	}
	return fail(fmt.Errorf("unknown command %q", r.Cmd))
}

// spawn starts a behaviour (echo, optionally registered under a name) on
// this node.
func (s *ctlService) spawn(ctx context.Context, w *nodal.Process, args []string) ctlResponse {
	behaviour, name := args[0], ""
	if len(args) == 3 {
		name = args[2]
	} else {
		args = append(args, "")
	}
	var pid nodal.Pid
	var err error
	switch {
	case behaviour == "echo" && args[1] == "--global":
		pid, err = spawnGlobal(ctx, w.Node(), name)
	case behaviour == "echo":
		var opts []nodal.SpawnOption
		if name != "" {
			opts = append(opts, nodal.WithName(name))
		}
		pid, err = w.Node().Spawn(func(p *nodal.Process) error { return echo.Behaviour(p, nil) }, opts...)
	case name != "":
		err = fmt.Errorf("--name is supported for echo only")
	default:
		pid, err = w.Node().SpawnOn(ctx, w.Node().Name(), behaviour, nil)
	}
	if err != nil {
		return ctlResponse{Error: err.Error()}
	}
	return ctlResponse{Pid: pid.String()}
}

// kill sends an exit signal (default reason kill) and waits for the
// process to exit, reporting its exit reason.
func (s *ctlService) kill(ctx context.Context, w *nodal.Process, args []string) ctlResponse {
	pid, _ := nodal.ParsePid(args[0])
	reason := nodal.ReasonKill
	if len(args) > 1 {
		reason = parseReason(args[1])
	}
	ref := w.Monitor(pid)
	w.SendExit(pid, reason)
	m, err := w.ReceiveMatch(ctx, func(m any) bool {
		d, ok := m.(nodal.Down)
		return ok && d.Ref == ref
	})
	if err != nil {
		w.Demonitor(ref, true)
		if errors.Is(err, nodal.ErrTimeout) {
			return ctlResponse{Error: fmt.Sprintf("%v did not exit (it traps exits, or the reason was normal)", pid)}
		}
		return ctlResponse{Error: err.Error()}
	}
	d := m.(nodal.Down)
	switch {
	case errors.Is(d.Reason, nodal.ReasonNoProc):
		return ctlResponse{Error: fmt.Sprintf("no such process %v", pid)}
	case errors.Is(d.Reason, nodal.ReasonNoConnection):
		return ctlResponse{Error: fmt.Sprintf("no connection to %s", pid.Node)}
	}
	return ctlResponse{Pid: pid.String(), Reason: d.Reason.Error()}
}

// parseReason maps Erlang's reason atoms onto nodal's; any other text is
// an error reason of its own.
func parseReason(s string) error {
	switch s {
	case "kill":
		return nodal.ReasonKill
	case "killed":
		return nodal.ReasonKilled
	case "normal":
		return nodal.ReasonNormal
	case "shutdown":
		return nodal.ReasonShutdown
	}
	return errors.New(s)
}

// withSelf returns n's visible nodes and n itself, sorted.
func withSelf(n *nodal.Node) []string {
	nodes := append(n.Nodes(), n.Name())
	sortStrings(nodes)
	return nodes
}

// listenHostPorts extracts "host:port" from libp2p TCP multiaddrs such as
// /ip4/127.0.0.1/tcp/4370/p2p/12D3...
func listenHostPorts(addrs []string) []string {
	var out []string
	for _, a := range addrs {
		parts := strings.Split(a, "/")
		var host, port string
		for i := 1; i+1 < len(parts); i++ {
			switch parts[i] {
			case "ip4", "dns", "dns4", "dns6":
				host = parts[i+1]
			case "ip6":
				host = "[" + parts[i+1] + "]"
			case "tcp":
				port = parts[i+1]
			}
		}
		if host != "" && port != "" {
			out = append(out, host+":"+port)
		}
	}
	sortStrings(out)
	return out
}
