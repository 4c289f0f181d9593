// Command node runs, inspects and demonstrates nodal nodes. Build it as
// "nodal" (go build -o nodal ./cmd/node), since a binary named node shadows
// Node.js.
//
// # Usage
//
//	nodal start --name NAME --cookie COOKIE [--listen HOST:PORT] [--gossip HOST:PORT]
//	            [--advertise HOST[:PORT]] [--advertise-gossip HOST[:PORT]] [--direct-port PORT|off]
//	            [--join HOST:PORT[,HOST:PORT...]] [--profile lan|wan|local]
//	            [--expect NODE[,NODE...]]
//	nodal ctl --to HOST:PORT --cookie COOKIE [--json] COMMAND [ARGS]
//	nodal demo
//	nodal bench remote [--senders N] [--size BYTES] [--duration D] [--floor]
//	nodal bench call [--duration D | --calls N] [--floor]
//	nodal bench floor [--size BYTES] [--duration D]
//	nodal version
//	nodal help [start | ctl]
//
// start --help and ctl --help list every flag with its meaning and
// default; help ctl also lists each ctl command with its JSON shape.
// version prints the module version, the Go version and the wire protocol.
//
// In a container, or behind NAT with forwarded ports, bind a wildcard and
// advertise the address others reach:
//
//	nodal start --name a@203.0.113.7 --listen 0.0.0.0:4370 --gossip 0.0.0.0:7946 \
//	            --advertise 203.0.113.7 --join seeds.nodal.svc.cluster.local:7946
//
// The up line and ctl info's listen and gossip are the advertised
// addresses; info's bound_listen and bound_gossip are what the node bound.
// A --join host may be a DNS name, looked up again on every join.
//
// start runs a node until SIGINT or SIGTERM and then leaves the cluster
// gracefully. Once it is up it prints one line:
//
//	node a@127.0.0.1 up listen=127.0.0.1:4370 gossip=127.0.0.1:7946 incarnation=1764045600
//
// The cookie comes from --cookie, else from the NODAL_COOKIE environment
// variable, else from --cookie-file (like ~/.erlang.cookie; surrounding
// whitespace is trimmed and a file readable by group or others is refused).
// Every started node registers the behaviour "echo" (and bench's
// "bench_sink" and "bench_regwatch") and runs the ctl service, registered
// as "nodal_ctl".
//
// ctl connects to a running node as a hidden node, knowing only its listen
// address and the cookie, and asks its ctl service. Commands: info, nodes,
// ping NODE, spawn echo [--name NAME], send TARGET TEXT, call TARGET TEXT,
// kill PID [REASON], processes, rpc NODE FUNC [ARGS as JSON] (a function
// any node of the cluster exposes through package rpc: every started node
// runs rpc with its built-ins, node.info, node.processes, os.getpid, ...;
// the node ctl talks to makes the call), partitions and quorum (the view of
// the node's heal service: expected, reachable and unreachable nodes, the
// majority; every started node runs heal, expecting --expect's nodes or every
// node it saw, and rejoins lost nodes by itself). TARGET is a pid as printed (<a@host.12.3>) or
// NAME@NODE for a registered name. With --json every command prints exactly
// one JSON object; errors print {"error": "..."} and exit non-zero.
//
// demo starts a small cluster on loopback and narrates membership, remote
// messages and calls, a remote spawn, and monitors and links firing
// noconnection. bench measures one-way throughput and call latency between
// two OS processes (bench remote, bench call), and rpc calls next to plain
// Calls, calls/s, multicall and pmap over three (bench rpc); it prints one
// "name value unit" line per figure. bench floor measures the bare
// transports between two OS processes (round trips on raw TCP, on Noise
// without a muxer, and on Noise with one goroutine hand-off per direction,
// the least a process apart from its connection's reader can have; Noise
// one way), and --floor on bench call or remote measures the floor right
// after nodal and prints the ratios, so that both share the run.
//
// Setting NODAL_CPUPROFILE=FILE writes a CPU profile of the command to FILE
// (bench's child node writes FILE.child), for go tool pprof.
//
// The binary runs Go's garbage collector at GOGC=200 unless GOGC is set:
// a node's garbage is mostly messages in transit, and the collector's work
// is about proportional to traffic over that percent (at 32 B messages,
// 1.1-1.3x the stream's rate for about 10 MB more peak RSS). GOGC=100 is
// Go's default.
//
// # Concurrency
//
// Each subcommand owns the nodes it starts and stops them before it
// returns; bench always kills the child process it started.
//
// # Guarantees
//
// Bad flags and unusable addresses print one line on stderr and exit with
// status 2 (usage) or 1 (runtime failure). Logging is configured here only:
// libp2p's slog output is bridged into go-log, whose level (default error)
// follows GOLOG_LOG_LEVEL; the cookie is never printed.
package main
