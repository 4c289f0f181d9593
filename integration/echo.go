package integration

import (
	"context"
	"errors"
	"fmt"

	"github.com/nodal-go/nodal"
)

// echoReply mirrors the `node` binary's answer to a call to an echo
// process, under the same codec name, so nodes in a test process decode
// the replies of real nodes and real nodes those of in-process ones.
type echoReply struct {
	Text string
	Pid  nodal.Pid
}

func init() {
	if err := nodal.RegisterType("nodal.echo.reply", echoReply{}); err != nil {
		panic(err)
	}
}

// echoBehaviour is the `node` binary's echo: it answers a call with the
// text it was given and its own pid, and prints any other text it
// receives to its group leader.
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

// barrierName is looked up on a monitored process's node right after the
// monitor (as the `node` binary's ctl monitor does): the answer comes
// back on the same ordered path, so once it is in, the monitor has
// reached that node. Nothing is registered under it.
const barrierName = "nodal_harness_barrier"

// monitorBarrier waits until a monitor p has just set on target has
// reached target's node. An unreachable node is no failure: the monitor
// then fires with noconnection.
func monitorBarrier(ctx context.Context, p *nodal.Process, target nodal.Pid) error {
	if target.Node == p.Node().Name() {
		return nil
	}
	_, err := p.Node().WhereisOn(ctx, target.Node, barrierName)
	if err == nil || errors.Is(err, nodal.ErrNotRegistered) || errors.Is(err, nodal.ErrNoConnection) {
		return nil
	}
	return fmt.Errorf("monitor %v: %w", target, err)
}
