package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"

	golog "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/gologshim"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usageText = `usage:
  nodal start --name NAME --cookie COOKIE [--listen HOST:PORT] [--gossip HOST:PORT] [--advertise HOST[:PORT]] [--advertise-gossip HOST[:PORT]] [--direct-port PORT|off] [--join HOST:PORT[,HOST:PORT...]] [--profile lan|wan|local] [--expect NODE[,NODE...]]
  nodal ctl --to HOST:PORT --cookie COOKIE [--json] COMMAND [ARGS]
        commands: info | nodes | ping NODE | spawn echo [--name NAME] | send TARGET TEXT | call TARGET TEXT | kill PID [REASON] | processes | rpc NODE FUNC [ARGS as JSON] | partitions | quorum
  nodal demo
  nodal bench remote [--senders N] [--size BYTES] [--duration D] [--floor]
  nodal bench call [--duration D | --calls N] [--floor]
  nodal bench floor [--size BYTES] [--duration D]
  nodal version
  nodal help [start | ctl]   (nodal start --help, nodal ctl --help: every flag)
`

// run is main without os.Exit: it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return 2
	}
	setupLogging(args[0])
	applyGCDefault(os.Getenv)
	if path := os.Getenv(cpuProfileEnv); path != "" {
		stopProfile, err := startCPUProfile(path)
		if err != nil {
			fmt.Fprintf(stderr, "nodal: %s: %s\n", cpuProfileEnv, oneLine(err.Error()))
			return 1
		}
		defer stopProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "start":
		err = cmdStart(ctx, args[1:], os.Getenv, stdout)
	case "ctl":
		return cmdCtl(ctx, args[1:], os.Getenv, stdout, stderr)
	case "demo":
		err = cmdDemo(ctx, args[1:], stdout)
	case "bench":
		err = cmdBench(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		return cmdHelp(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprint(stdout, versionText())
		return 0
	default:
		err = usagef("unknown command %q (want start, ctl, demo, bench, version or help)", args[0])
	}
	var help *helpRequest
	if errors.As(err, &help) {
		fmt.Fprint(stdout, help.text)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "nodal %s: %s\n", args[0], oneLine(err.Error()))
		var ue *usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

// setupLogging bridges libp2p's slog output into go-log before anything
// logs, so that GOLOG_LOG_LEVEL governs every subsystem. Unless
// GOLOG_LOG_LEVEL is set, a started node logs nodal's lifecycle (node up,
// node down) at info.
func setupLogging(cmd string) {
	gologshim.SetDefaultHandler(golog.SlogHandler())
	if os.Getenv("GOLOG_LOG_LEVEL") != "" {
		return
	}
	// libp2p's fx wiring logs a failed start (a busy port) three times at
	// error level; the command reports that failure itself, in one line.
	_ = golog.SetLogLevel("p2p-config", "fatal")
	if cmd == "start" {
		_ = golog.SetLogLevelRegex("nodal.*", "info")
	}
}

// defaultGCPercent is the garbage collector's target (GOGC) of the nodal
// binary when the environment sets none: the heap may grow to 3 times
// what is live before a collection, rather than Go's default of 2. A
// node's allocations are mostly its messages in transit (read buffers,
// mailbox entries), so the collector's work is about proportional to
// traffic divided by this percent. Measured with nodal bench remote, 200
// against 100: 1.1-1.3x the rate at 32 B (receiver 0.18-0.20 us of CPU per
// message against 0.25) and 1.3-1.4x at 1 KiB, for 51-60 MB of peak RSS
// on the receiver against 41-42. GOGC=100 restores Go's default; a
// program embedding nodal sets its own.
const defaultGCPercent = 200

// applyGCDefault sets defaultGCPercent unless GOGC is set (the runtime
// has applied that already), and reports whether it did.
func applyGCDefault(getenv func(string) string) bool {
	if getenv("GOGC") != "" {
		return false
	}
	debug.SetGCPercent(defaultGCPercent)
	return true
}

// cpuProfileEnv names a file to write a CPU profile of the whole command
// to (go tool pprof reads it). bench gives each child node the same path
// with ".child-" and the node name's part before '@' appended.
const cpuProfileEnv = "NODAL_CPUPROFILE"

// startCPUProfile starts profiling into path and returns the stop function.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// usageError is a bad command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// oneLine folds an error message onto one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}
