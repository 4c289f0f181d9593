package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/p2p"
)

// ctlTimeout bounds a whole ctl command: connect, ask, answer.
const ctlTimeout = 15 * time.Second

// ctlOptions are nodal ctl's flags and command.
type ctlOptions struct {
	To     string
	Cookie string
	JSON   bool
	Cmd    string
	Args   []string
}

// parseCtlArgs parses ctl's flags and checks its command.
func parseCtlArgs(args []string, getenv func(string) string) (ctlOptions, error) {
	fs := newFlagSet("ctl")
	var o ctlOptions
	var cookieFile string
	fs.StringVar(&o.To, "to", "", "`HOST:PORT` of the node's libp2p listener, as its up line's listen= (its advertised address) (required)")
	fs.StringVar(&o.Cookie, "cookie", "", "cluster `COOKIE`; else $"+cookieEnv+", else --cookie-file")
	fs.StringVar(&cookieFile, "cookie-file", "", "`FILE` holding the cookie (mode 600)")
	fs.BoolVar(&o.JSON, "json", false, "print exactly one JSON object, errors included (may also follow the command)")
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	rest := fs.Args()
	// Accept a trailing --json after the command, as people type it.
	if n := len(rest); n > 1 && (rest[n-1] == "--json" || rest[n-1] == "-json") {
		o.JSON, rest = true, rest[:n-1]
	}
	if o.To == "" {
		return o, usagef("--to HOST:PORT is required")
	}
	if err := checkHostPort(o.To); err != nil {
		return o, usagef("--to: %v", err)
	}
	cookie, err := resolveCookie(o.Cookie, cookieFile, getenv)
	if err != nil {
		return o, err
	}
	o.Cookie = cookie
	if len(rest) == 0 {
		return o, usagef("missing command (info, nodes, ping, spawn, send, call, kill, processes, rpc, partitions or quorum)")
	}
	o.Cmd, o.Args = rest[0], rest[1:]
	if o.Cmd == "spawn" {
		o.Args = normalizeSpawnArgs(o.Args)
	}
	if err := checkCtlArgs(o.Cmd, o.Args); err != nil {
		return o, usagef("%v", err)
	}
	return o, nil
}

// cmdCtl runs nodal ctl and returns the exit status. With --json every
// outcome, errors included, is one JSON object on stdout.
func cmdCtl(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	wantJSON := false
	for _, a := range args {
		if a == "--json" || a == "-json" {
			wantJSON = true
		}
	}
	fail := func(err error) int {
		code := 1
		var ue *usageError
		if errors.As(err, &ue) {
			code = 2
		}
		if wantJSON {
			writeJSON(stdout, struct {
				Error string `json:"error"`
			}{oneLine(err.Error())})
		} else {
			fmt.Fprintf(stderr, "nodal ctl: %s\n", oneLine(err.Error()))
		}
		return code
	}
	o, err := parseCtlArgs(args, getenv)
	var help *helpRequest
	if errors.As(err, &help) {
		fmt.Fprint(stdout, help.text+"\n"+ctlCommandsHelp())
		return 0
	}
	if err != nil {
		return fail(err)
	}
	wantJSON = o.JSON
	ctx, cancel := context.WithTimeout(ctx, ctlTimeout)
	defer cancel()
	resp, err := ctlAsk(ctx, o)
	if err != nil {
		return fail(err)
	}
	if resp.Error != "" {
		return fail(errors.New(resp.Error))
	}
	if o.JSON {
		writeJSON(stdout, jsonOf(o.Cmd, resp))
	} else {
		writePlain(stdout, o.Cmd, resp)
	}
	return 0
}

// ctlAsk starts a hidden node, connects to o.To and asks its ctl service.
func ctlAsk(ctx context.Context, o ctlOptions) (ctlResponse, error) {
	// A cluster does not mix long and short names: try a long name, then a
	// short one.
	var n *nodal.Node
	var target string
	var err error
	for _, host := range []string{"127.0.0.1", "localhost"} {
		n, target, err = ctlConnect(ctx, o, fmt.Sprintf("ctl-%d@%s", os.Getpid(), host))
		if err == nil || !errors.Is(err, p2p.ErrNameMode) {
			break
		}
	}
	if err != nil {
		return ctlResponse{}, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = n.Stop(sctx)
	}()
	v, err := n.CallName(ctx, target, ctlServiceName, ctlRequest{Cmd: o.Cmd, Args: o.Args})
	if err != nil {
		if errors.Is(err, nodal.ErrNotRegistered) {
			return ctlResponse{}, fmt.Errorf("%s at %s runs no ctl service", target, o.To)
		}
		return ctlResponse{}, fmt.Errorf("ask %s: %w", target, err)
	}
	resp, ok := v.(ctlResponse)
	if !ok {
		return ctlResponse{}, fmt.Errorf("ask %s: unexpected answer %T", target, v)
	}
	return resp, nil
}

// ctlConnect starts a hidden node named name and connects it to o.To.
func ctlConnect(ctx context.Context, o ctlOptions, name string) (*nodal.Node, string, error) {
	cfg := nodal.DefaultLANConfig(name, o.Cookie)
	cfg.Hidden = true
	cfg.Stdout = io.Discard
	n, err := nodal.Start(ctx, cfg)
	if err != nil {
		return nil, "", fmt.Errorf("start ctl node: %w", err)
	}
	target, err := n.ConnectAddr(ctx, o.To)
	if err != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = n.Stop(sctx)
		cancel()
		switch {
		case errors.Is(err, p2p.ErrCookieMismatch):
			return nil, "", fmt.Errorf("cookie mismatch with the node at %s: check --cookie", o.To)
		case errors.Is(err, p2p.ErrNameMode):
			return nil, "", err
		}
		return nil, "", fmt.Errorf("connect to %s: %w", o.To, err)
	}
	if err := awaitPeer(ctx, n, target); err != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = n.Stop(sctx)
		cancel()
		return nil, "", fmt.Errorf("connect to %s: %w", o.To, err)
	}
	return n, target, nil
}

// awaitPeer waits until n's distribution layer lists node as connected.
// ConnectAddr and Connect return once the transport's handshake is done,
// which can be a moment before the node layer has taken the connection in;
// a send in that moment would be dropped.
func awaitPeer(ctx context.Context, n *nodal.Node, node string) error {
	for {
		if info, err := n.NodeInfo(node); err == nil && info.Alive {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not connected: %w", node, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

// JSON shapes of the commands' answers.
type (
	jsonInfo struct {
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
	jsonNodes struct {
		Self  string   `json:"self"`
		Nodes []string `json:"nodes"`
	}
	jsonPing struct {
		Node  string  `json:"node"`
		Pong  bool    `json:"pong"`
		RTTUS float64 `json:"rtt_us"`
	}
	jsonPid struct {
		Pid string `json:"pid"`
	}
	jsonSend struct {
		Sent bool   `json:"sent"`
		To   string `json:"to"`
	}
	jsonCall struct {
		Reply string `json:"reply"`
		Pid   string `json:"pid"`
	}
	jsonKill struct {
		Pid    string `json:"pid"`
		Reason string `json:"reason"`
	}
	jsonProcess struct {
		Pid    string `json:"pid"`
		Name   string `json:"name,omitempty"`
		Status string `json:"status"`
		Queue  int    `json:"queue"`
	}
	jsonProcesses struct {
		Node      string        `json:"node"`
		Processes []jsonProcess `json:"processes"`
	}
)

// nonNil makes a nil slice print as [] in JSON.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// jsonOf returns the JSON object printed for cmd's answer.
func jsonOf(cmd string, r ctlResponse) any {
	if v, ok := jsonOfRegistry(cmd, r); ok {
		return v
	}
	switch cmd {
	case "info":
		return jsonInfo{Name: r.Node, Incarnation: r.Incarnation, Listen: nonNil(r.Listen), Gossip: r.Gossip,
			ListenBound: nonNil(r.ListenBound), GossipBound: r.GossipBound,
			Nodes: nonNil(r.Nodes), Hidden: nonNil(r.Hidden), Processes: r.Count, Registered: nonNil(r.Registered)}
	case "nodes":
		return jsonNodes{Self: r.Node, Nodes: nonNil(r.Nodes)}
	case "ping":
		return jsonPing{Node: r.Node, Pong: true, RTTUS: r.RTTMicros}
	case "spawn":
		return jsonPid{Pid: r.Pid}
	case "send":
		return jsonSend{Sent: true, To: r.Pid}
	case "call":
		return jsonCall{Reply: r.Reply, Pid: r.Pid}
	case "kill":
		return jsonKill{Pid: r.Pid, Reason: r.Reason}
	case "rpc":
		res := json.RawMessage(r.Result)
		if len(res) == 0 {
			res = json.RawMessage("null")
		}
		return jsonRPC{Node: r.Node, Func: r.Func, Result: res}
	case "partitions", "quorum":
		return healJSON(cmd, r)
	case "processes":
		ps := make([]jsonProcess, 0, len(r.Processes))
		for _, p := range r.Processes {
			ps = append(ps, jsonProcess(p))
		}
		return jsonProcesses{Node: r.Node, Processes: ps}
	}
	if v, ok := harnessJSON(cmd, r); ok {
		return v
	}
	if v, ok := groupsJSON(cmd, r); ok {
		return v
	}
	return struct {
		Error string `json:"error"`
	}{"unknown command " + cmd}
}

// jsonRPC is the answer of ctl rpc: the function's result as JSON.
type jsonRPC struct {
	Node   string          `json:"node"`
	Func   string          `json:"func"`
	Result json.RawMessage `json:"result"`
}

// writeJSON prints v as one JSON object on one line.
func writeJSON(w io.Writer, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // pids print as <a@host.1.2>, not \u003c...
	if err := enc.Encode(v); err != nil {
		buf.Reset()
		buf.WriteString(`{"error":"cannot encode the answer"}` + "\n")
	}
	_, _ = w.Write(buf.Bytes())
}

// writePlain prints cmd's answer as readable lines.
func writePlain(w io.Writer, cmd string, r ctlResponse) {
	if writePlainRegistry(w, cmd, r) {
		return
	}
	switch cmd {
	case "info":
		fmt.Fprintf(w, "name %s\nincarnation %d\nlisten %s\ngossip %s\nbound_listen %s\nbound_gossip %s\nnodes %s\nhidden_nodes %s\nprocesses %d\nregistered %s\n",
			r.Node, r.Incarnation, strings.Join(r.Listen, " "), r.Gossip, strings.Join(r.ListenBound, " "), r.GossipBound, strings.Join(r.Nodes, " "),
			strings.Join(r.Hidden, " "), r.Count, strings.Join(r.Registered, " "))
	case "nodes":
		for _, n := range r.Nodes {
			if n == r.Node {
				fmt.Fprintf(w, "%s (self)\n", n)
			} else {
				fmt.Fprintln(w, n)
			}
		}
	case "ping":
		fmt.Fprintf(w, "pong %s %.1f us\n", r.Node, r.RTTMicros)
	case "spawn":
		fmt.Fprintln(w, r.Pid)
	case "send":
		fmt.Fprintf(w, "sent to %s\n", r.Pid)
	case "call":
		fmt.Fprintf(w, "%s replied %q\n", r.Pid, r.Reply)
	case "kill":
		fmt.Fprintf(w, "%s exited: %s\n", r.Pid, r.Reason)
	case "rpc":
		var buf bytes.Buffer
		if json.Indent(&buf, []byte(r.Result), "", "  ") != nil {
			buf.WriteString(r.Result)
		}
		fmt.Fprintln(w, buf.String())
	case "partitions", "quorum":
		writeHealPlain(w, cmd, r)
	case "processes":
		for _, p := range r.Processes {
			name := p.Name
			if name == "" {
				name = "-"
			}
			fmt.Fprintf(w, "%s %s %s queue=%d\n", p.Pid, name, p.Status, p.Queue)
		}
	default:
		harnessPlain(w, cmd, r)
	}
	writeGroupsPlain(w, cmd, r)
}
