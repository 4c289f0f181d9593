package main

import (
	"errors"
	"fmt"

	"github.com/nodal-go/nodal"
)

// registerBehaviours makes echo and bench_sink spawnable on n.
func registerBehaviours(n *nodal.Node) error {
	if err := n.RegisterBehaviour("echo", echoBehaviour); err != nil {
		return err
	}
	return n.RegisterBehaviour("bench_sink", benchSinkBehaviour)
}

// echoBehaviour answers a call with the text it was given and its own pid,
// and prints any other text it receives to its group leader (so a remotely
// spawned echo prints on its spawner's node).
func echoBehaviour(p *nodal.Process, _ any) error {
	ctx := p.Context()
	for {
		m, err := p.Receive(ctx)
		if err != nil {
			return nodal.ReasonNormal
		}
		switch m := m.(type) {
		case nodal.CallRequest:
			p.Reply(m.From, echoReply{Text: textOf(m.Req), Pid: p.Self()})
		case string:
			p.Printf("echo %v got %q\n", p.Self(), m)
		case []byte:
			p.Printf("echo %v got %d bytes\n", p.Self(), len(m))
		}
	}
}

func textOf(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	return fmt.Sprint(v)
}

// errBadSinkArgs is the exit reason of a bench_sink started without
// benchSinkArgs.
var errBadSinkArgs = errors.New("bench_sink: args must be benchSinkArgs with Senders > 0")

// benchSinkBehaviour counts []byte messages until every sender has sent its
// done marker, then acknowledges the totals to args.Reply and ends.
func benchSinkBehaviour(p *nodal.Process, args any) error {
	a, ok := args.(benchSinkArgs)
	if !ok || a.Senders <= 0 || a.Reply.IsZero() {
		return errBadSinkArgs
	}
	ctx := p.Context()
	var ack benchAck
	done := 0
	for done < a.Senders {
		m, err := p.Receive(ctx)
		if err != nil {
			return nodal.ReasonNormal
		}
		switch m := m.(type) {
		case []byte:
			ack.Messages++
			ack.Bytes += uint64(len(m))
		case benchDone:
			done++
		}
	}
	p.Send(a.Reply, ack)
	return nil
}
