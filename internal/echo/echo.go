// Package echo is the echo behaviour the `node` binary registers and the
// integration harness's in-process nodes register too, with its reply type
// under one codec name, so real and in-process nodes answer alike.
package echo

import (
	"fmt"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/internal/wire"
)

// Reply is what an echo process answers to a call: the text and its pid.
type Reply struct {
	Text string
	Pid  nodal.Pid
}

// AppendBinary implements encoding.BinaryAppender: a Reply encodes itself
// (its text, then its pid's node, id and incarnation) rather than through
// the codec's reflective CBOR, which cost the caller of an echo ~2 us per
// reply to decode (bench call's hop trace).
func (r Reply) AppendBinary(b []byte) ([]byte, error) {
	b = wire.AppendString(b, r.Text)
	return wire.AppendIdent(b, r.Pid.Node, r.Pid.ID, r.Pid.Incarnation), nil
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler for what
// AppendBinary wrote, and nothing else.
func (r *Reply) UnmarshalBinary(data []byte) error {
	d := wire.NewDecoder(data)
	text := d.Str()
	node, id, inc := d.Ident()
	if err := d.Done(); err != nil {
		return fmt.Errorf("echo reply: %w", err)
	}
	*r = Reply{Text: text, Pid: nodal.Pid{Node: node, ID: id, Incarnation: inc}}
	return nil
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
