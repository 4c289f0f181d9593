package nodal

import (
	"fmt"
	"io"
)

// IORequest is the message a process's Printf sends to its group leader.
// A group leader is any process that handles IORequests; each node starts a
// default one that writes them to Config.Stdout. A process spawned on
// another node keeps its spawner's group leader, so what it prints shows on
// the spawner's node, as in Erlang.
type IORequest struct {
	Text string
}

// Printf formats and sends the text to p's group leader (io:format).
func (p *Process) Printf(format string, args ...any) {
	p.Print(fmt.Sprintf(format, args...))
}

// Print sends text to p's group leader as it is.
func (p *Process) Print(text string) {
	gl := p.GroupLeader()
	if gl.IsZero() {
		gl = p.node.groupLeader
	}
	p.Send(gl, IORequest{Text: text})
}

// ioServer is the default group leader: it writes IORequests to w.
type ioServer struct{ w io.Writer }

func (s ioServer) Init(*Process) error { return nil }

func (s ioServer) HandleMessage(_ *Process, msg any) error {
	if r, ok := msg.(IORequest); ok {
		_, _ = io.WriteString(s.w, r.Text)
	}
	return nil
}
