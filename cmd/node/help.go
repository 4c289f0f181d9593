package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// helpRequest is -h or --help on a subcommand: its text goes to stdout and
// the status is 0.
type helpRequest struct{ text string }

func (h *helpRequest) Error() string { return "help requested" }

// flagSynopsis is the first line of each subcommand's --help.
var flagSynopsis = map[string]string{
	"start": "usage: nodal start --name NAME --cookie COOKIE [flags]\n\nRuns a node until SIGINT or SIGTERM, then leaves the cluster. Once up it prints\n  node NAME up listen=HOST:PORT gossip=HOST:PORT incarnation=N\n(the advertised addresses: ctl --to takes listen, --join takes gossip).",
	"ctl":   "usage: nodal ctl --to HOST:PORT --cookie COOKIE [--json] COMMAND [ARGS]\n\nConnects to a running node as a hidden node and runs one command.",
}

// flagHelp lists every flag of fs with its meaning and default.
func flagHelp(fs *flag.FlagSet) string {
	var b strings.Builder
	if s, ok := flagSynopsis[fs.Name()]; ok {
		b.WriteString(s + "\n\n")
	}
	b.WriteString("flags:\n")
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		b.WriteString(line + "\n        " + usage)
		if f.DefValue != "" && f.DefValue != "false" {
			fmt.Fprintf(&b, " (default %s)", f.DefValue)
		}
		b.WriteString("\n")
	})
	return b.String()
}

// ctlCommand is one ctl command: its arguments, what it does and the JSON
// object --json prints for it.
type ctlCommand struct {
	Usage, Meaning, JSON string
}

// ctlCommands lists every ctl command, in the order help prints them.
var ctlCommands = []ctlCommand{
	{"info", "the node: name, start, advertised and bound addresses, nodes, processes",
		`{"name":"a@10.0.0.1","incarnation":N,"listen":["10.0.0.1:4370"],"gossip":"10.0.0.1:7946","bound_listen":["0.0.0.0:4370"],"bound_gossip":"0.0.0.0:7946","nodes":["a@10.0.0.1",...],"hidden_nodes":[...],"processes":N,"registered":[...]}`},
	{"nodes", "the nodes it is connected to, itself included",
		`{"self":"a@10.0.0.1","nodes":["a@10.0.0.1","b@10.0.0.2"]}`},
	{"ping NODE", "round trip to NODE from the node",
		`{"node":"b@10.0.0.2","pong":true,"rtt_us":123.4}`},
	{"spawn echo [--name NAME | --global NAME]", "start an echo process (registered as NAME on the node, or as a global NAME)",
		`{"pid":"<a@10.0.0.1.12.3>"}`},
	{"send TARGET TEXT", "send TEXT to TARGET: a pid <a@host.12.3>, NAME@NODE or global:NAME",
		`{"sent":true,"to":"TARGET"}`},
	{"call TARGET TEXT", "call TARGET with TEXT and print its reply",
		`{"reply":"TEXT","pid":"<a@10.0.0.1.12.3>"}`},
	{"kill PID [REASON]", "exit PID with REASON (default kill) and wait for it",
		`{"pid":"<a@10.0.0.1.12.3>","reason":"kill"}`},
	{"processes", "the node's processes",
		`{"node":"a@10.0.0.1","processes":[{"pid":"<...>","name":"echo","status":"waiting","queue":0}]}`},
	{"rpc NODE FUNC [ARGS as JSON]", "call the rpc function FUNC on NODE (rpc.functions lists them; node.info, os.getpid, ... are built in)",
		`{"node":"b@10.0.0.2","func":"node.info","result":{...}}`},
	{"partitions", "the heal view: expected, reachable and unreachable nodes (who else reaches them, reconnect attempts), left, refused; the heals since start (what their reconcilers exchanged, the last one)",
		`{"node":"a@10.0.0.1","partitioned":false,"expected":[...],"reachable":[...],"unreachable":[{"node":"c@10.0.0.3","since":"RFC3339","member":false,"reached_by":[...],"gossip":"10.0.0.3:7946","attempts":N,"last_error":"..."}],"left":[...],"refused":[...],` +
			`"heals":{"count":1,"bytes":932,"entries":1,"conflicts":1,"last":{"at":"RFC3339","returned":[...],"still_missing":[...],"lasted_ms":N,"converged_ms":N,"bytes":932,"entries":1,"conflicts":1}}}`},
	{"quorum", "majority of the expected nodes, split-brain strategy, paused, the last decision",
		`{"node":"a@10.0.0.1","expected":3,"reachable":2,"majority":true,"strategy":"none","paused":false,"decision":""}`},
}

// ctlCommandsHelp is nodal help ctl's command list.
func ctlCommandsHelp() string {
	var b strings.Builder
	b.WriteString("commands (with --json each prints exactly one object, shown; a failure prints {\"error\":\"...\"} and exits non-zero):\n")
	for _, c := range append(ctlCommands, registryCommands...) {
		fmt.Fprintf(&b, "  %s\n        %s\n        %s\n", c.Usage, c.Meaning, c.JSON)
	}
	return b.String()
}

// cmdHelp runs nodal help [start | ctl].
func cmdHelp(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stdout, usageText)
		return 0
	}
	var err error
	switch args[0] {
	case "start":
		_, err = parseStartFlags([]string{"--help"}, func(string) string { return "" })
	case "ctl":
		_, err = parseCtlArgs([]string{"--help"}, func(string) string { return "" })
	}
	var help *helpRequest
	if errors.As(err, &help) {
		text := help.text
		if args[0] == "ctl" {
			text += "\n" + ctlCommandsHelp()
		}
		fmt.Fprint(stdout, text)
		return 0
	}
	fmt.Fprintf(stderr, "nodal help: no help for %q (want start or ctl)\n", args[0])
	return 2
}
