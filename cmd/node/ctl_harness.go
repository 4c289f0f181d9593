package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nodal-go/nodal"
)

// The ctl commands the integration harness (package integration, real
// mode) drives nodes with, besides the general ones: arm a monitor that
// outlives the ctl command and read what it saw, and join the membership
// again (rejoin: what heal/ does by itself). ctl.go, ctlservice.go and
// target.go reach them through one line each (harnessCheckArgs, harnessDo,
// harnessJSON, harnessPlain).

// harnessCtlCommands are the harness's commands as help lists them.
var harnessCtlCommands = []ctlCommand{
	{"monitor PID", "start a watcher process on the node that monitors PID; returns once the monitor reached PID's node",
		`{"watcher":"<a@10.0.0.1.12.3>","target":"<b@10.0.0.2.5.3>"}`},
	{"monitored WATCHER", "what the watcher saw: down (true once the Down arrived), its reason and when (Unix ms)",
		`{"watcher":"<a@10.0.0.1.12.3>","target":"<b@10.0.0.2.5.3>","down":true,"reason":"noconnection","at_unix_ms":N}`},
	{"rejoin GOSSIP...", "join the membership again through the gossip addresses HOST:PORT (as after a healed partition)",
		`{"node":"a@10.0.0.1","joined":["10.0.0.2:7946"]}`},
}

func init() { ctlCommands = append(ctlCommands, harnessCtlCommands...) }

// JSON shapes of the harness commands' answers; ctlResponse.Result holds
// them encoded.
type (
	jsonMonitor struct {
		Watcher string `json:"watcher"`
		Target  string `json:"target"`
	}
	jsonMonitored struct {
		Watcher  string `json:"watcher"`
		Target   string `json:"target"`
		Down     bool   `json:"down"`
		Reason   string `json:"reason"`
		AtUnixMS int64  `json:"at_unix_ms"`
	}
	jsonJoin struct {
		Node   string   `json:"node"`
		Joined []string `json:"joined"`
	}
)

// harnessCheckArgs checks a harness command's arguments; ok is false for a
// command that is not one of them.
func harnessCheckArgs(cmd string, args []string) (ok bool, err error) {
	switch cmd {
	case "monitor", "monitored":
		if len(args) != 1 {
			return true, fmt.Errorf("usage: %s PID", cmd)
		}
		_, err := nodal.ParsePid(args[0])
		return true, err
	case "rejoin":
		if len(args) == 0 {
			return true, errors.New("usage: rejoin GOSSIP...")
		}
		for _, a := range args {
			if err := checkHostPort(a); err != nil {
				return true, fmt.Errorf("rejoin: %w", err)
			}
		}
		return true, nil
	}
	return false, nil
}

// watchStatus is a watcher's answer to a call: what it has seen so far.
type watchStatus struct {
	Target nodal.Pid
	Down   bool
	Reason string
	At     time.Time
}

// monitorBarrier is a name looked up on the monitored node right after the
// monitor: the answer comes back on the same ordered path, so once it is
// in, the monitor has reached the node (nothing needs to be registered
// under it).
const monitorBarrier = "nodal_harness_barrier"

// harnessDo runs a harness command on the worker process w; ok is false
// for a command that is not one of them.
func (s *ctlService) harnessDo(ctx context.Context, w *nodal.Process, r ctlRequest) (resp ctlResponse, ok bool) {
	n := w.Node()
	fail := func(err error) (ctlResponse, bool) { return ctlResponse{Error: err.Error()}, true }
	result := func(v any) (ctlResponse, bool) {
		b, err := json.Marshal(v)
		if err != nil {
			return fail(err)
		}
		return ctlResponse{Result: string(b)}, true
	}
	switch r.Cmd {
	case "monitor":
		target, _ := nodal.ParsePid(r.Args[0])
		armed := make(chan error, 1)
		watcher, err := n.Spawn(func(p *nodal.Process) error { return watchBehaviour(p, target, armed) })
		if err != nil {
			return fail(err)
		}
		select {
		case err := <-armed:
			if err != nil {
				return fail(err)
			}
		case <-ctx.Done():
			n.Exit(watcher, nodal.ReasonKill)
			return fail(fmt.Errorf("monitor %v: %w", target, ctx.Err()))
		}
		return result(jsonMonitor{Watcher: watcher.String(), Target: target.String()})
	case "monitored":
		watcher, _ := nodal.ParsePid(r.Args[0])
		v, err := w.Call(ctx, watcher, "status")
		if err != nil {
			return fail(fmt.Errorf("watcher %v: %w", watcher, err))
		}
		st, isStatus := v.(watchStatus)
		if !isStatus {
			return fail(fmt.Errorf("%v is not a watcher", watcher))
		}
		out := jsonMonitored{Watcher: watcher.String(), Target: st.Target.String(), Down: st.Down, Reason: st.Reason}
		if st.Down {
			out.AtUnixMS = st.At.UnixMilli()
		}
		return result(out)
	case "rejoin":
		if err := n.Join(ctx, r.Args...); err != nil {
			return fail(err)
		}
		return result(jsonJoin{Node: n.Name(), Joined: r.Args})
	}
	return ctlResponse{}, false
}

// watchBehaviour monitors target, reports on armed once the monitor is in
// place on target's node (or why it is not), then answers every call with
// what it has seen, until its node stops.
func watchBehaviour(p *nodal.Process, target nodal.Pid, armed chan<- error) error {
	ref := p.Monitor(target)
	ctx, cancel := context.WithTimeout(p.Context(), ctlOpTimeout)
	_, err := p.Node().WhereisOn(ctx, target.Node, monitorBarrier)
	cancel()
	if errors.Is(err, nodal.ErrNotRegistered) {
		err = nil
	}
	st := watchStatus{Target: target}
	// A monitor of an unreachable node fires at once with noconnection:
	// that is an armed monitor that has fired, not a failure to arm.
	if err != nil && !errors.Is(err, nodal.ErrNoConnection) {
		armed <- fmt.Errorf("monitor %v: %w", target, err)
		return nil
	}
	armed <- nil
	for {
		m, err := p.Receive(p.Context())
		if err != nil {
			return nodal.ReasonNormal
		}
		switch m := m.(type) {
		case nodal.Down:
			if m.Ref == ref && !st.Down {
				st.Down, st.Reason, st.At = true, m.Reason.Error(), time.Now()
			}
		case nodal.CallRequest:
			p.Reply(m.From, st)
		}
	}
}

// harnessJSON returns the JSON object printed for a harness command's
// answer; ok is false for a command that is not one of them.
func harnessJSON(cmd string, r ctlResponse) (v any, ok bool) {
	decode := func(v any) any {
		if r.Result != "" {
			_ = json.Unmarshal([]byte(r.Result), v)
		}
		return v
	}
	switch cmd {
	case "monitor":
		return decode(&jsonMonitor{}), true
	case "monitored":
		return decode(&jsonMonitored{}), true
	case "rejoin":
		j := decode(&jsonJoin{}).(*jsonJoin)
		j.Joined = nonNil(j.Joined)
		return j, true
	}
	return nil, false
}

// harnessPlain prints a harness command's answer as a readable line; it
// returns false for a command that is not one of them.
func harnessPlain(w io.Writer, cmd string, r ctlResponse) bool {
	v, ok := harnessJSON(cmd, r)
	if !ok {
		return false
	}
	switch v := v.(type) {
	case *jsonMonitor:
		fmt.Fprintf(w, "%s monitors %s\n", v.Watcher, v.Target)
	case *jsonMonitored:
		if v.Down {
			fmt.Fprintf(w, "%s down: %s at %s\n", v.Target, v.Reason, time.UnixMilli(v.AtUnixMS).UTC().Format(time.RFC3339Nano))
		} else {
			fmt.Fprintf(w, "%s up (monitored by %s)\n", v.Target, v.Watcher)
		}
	case *jsonJoin:
		fmt.Fprintf(w, "%s joined through %v\n", v.Node, v.Joined)
	}
	return true
}

func init() {
	if err := nodal.RegisterType("nodal.ctl.watch", watchStatus{}); err != nil {
		panic(fmt.Sprintf("register nodal.ctl.watch: %v", err))
	}
}
