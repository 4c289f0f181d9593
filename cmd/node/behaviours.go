package main

import (
	"errors"
	"time"

	"github.com/nodal-go/nodal/internal/echo"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/registry"
)

// registerBehaviours makes echo and bench_sink spawnable on n (start.go adds
// bench_regwatch once the registry is attached).
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

// errBadRegWatchArgs is the exit reason of a bench_regwatch started
// without benchRegWatchArgs.
var errBadRegWatchArgs = errors.New("bench_regwatch: args must be benchRegWatchArgs with Want > 0")

// regWatchEvery is how often a bench_regwatch counts the names it sees.
const regWatchEvery = 250 * time.Microsecond

// maxRegWatchSamples bounds a bench_regwatch's samples (about 16 s of
// counting that changes at every look).
const maxRegWatchSamples = 1 << 16

// regWatchBehaviour is bench_regwatch (bench registry's watcher on b and
// c): it counts the names reg sees every regWatchEvery, keeping the time
// (this node's wall clock; the bench's processes share one) and the count
// of each look that saw more than the last, until it sees args.Want, then
// sends the samples to args.Reply and ends. It is linked to args.Reply, so
// it also ends when that process fails or its node is lost, rather than
// looking for a count that may never come. Counting reads a length: it
// costs the node nothing measurable.
func regWatchBehaviour(reg *registry.Registry) nodal.Behaviour {
	return func(p *nodal.Process, args any) error {
		a, ok := args.(benchRegWatchArgs)
		if !ok || a.Want <= 0 || a.Reply.IsZero() {
			return errBadRegWatchArgs
		}
		p.Link(a.Reply)
		ctx := p.Context()
		tick := time.NewTicker(regWatchEvery)
		defer tick.Stop()
		var s benchRegSamples
		for last := -1; last < a.Want; {
			select {
			case <-ctx.Done():
				return nodal.ReasonNormal
			case <-tick.C:
			}
			if n := reg.Len(); n > last {
				last = n
				if len(s.At) == maxRegWatchSamples {
					// Full: the newest look replaces the one before.
					s.At, s.Count = s.At[:len(s.At)-1], s.Count[:len(s.Count)-1]
				}
				s.At, s.Count = append(s.At, time.Now().UnixNano()), append(s.Count, n)
			}
		}
		p.Send(a.Reply, s)
		return nil
	}
}
