package main

import (
	"errors"

	"github.com/nodal-go/nodal/internal/echo"

	"github.com/nodal-go/nodal"
)

// registerBehaviours makes echo and bench_sink spawnable on n.
func registerBehaviours(n *nodal.Node) error {
	if err := n.RegisterBehaviour("echo", echo.Behaviour); err != nil {
		return err
	}
	return n.RegisterBehaviour("bench_sink", benchSinkBehaviour)
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
