// Package echo is the echo behaviour the `node` binary registers and the
// integration harness's in-process nodes register too, with its reply type
// under one codec name, so real and in-process nodes answer alike.
package echo

import (
	"fmt"

	"github.com/nodal-go/nodal"
)

// Reply is what an echo process answers to a call: the text and its pid.
type Reply struct {
	Text string
	Pid  nodal.Pid
}

func init() {
	if err := nodal.RegisterType("nodal.echo.reply", Reply{}); err != nil {
		panic(err)
	}
}

// Behaviour answers a call with the text it was given and its own pid, and
// prints any other text it receives to its group leader (so a remotely
// spawned echo prints on its spawner's node).
func Behaviour(p *nodal.Process, _ any) error {
	ctx := p.Context()
	for {
		m, err := p.Receive(ctx)
		if err != nil {
			return nodal.ReasonNormal
		}
		switch m := m.(type) {
		case nodal.CallRequest:
			p.Reply(m.From, Reply{Text: Text(m.Req), Pid: p.Self()})
		case string:
			p.Printf("echo %v got %q\n", p.Self(), m)
		case []byte:
			p.Printf("echo %v got %d bytes\n", p.Self(), len(m))
		}
	}
}

// Text is v as the text of a reply.
func Text(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	return fmt.Sprint(v)
}
