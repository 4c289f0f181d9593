package groups

import (
	"context"

	"github.com/nodal-go/nodal"
)

// The watcher is a process of the scope's node that monitors every local
// pid with a membership (pg monitors its joined processes the same way):
// when one exits, it leaves every group. Local monitoring only, as in pg:
// other nodes learn of the leave from its delta.

// watchMsg asks the watcher to monitor (on) or stop monitoring pid; the
// engine sends one turn's orders together, in order.
type watchMsg struct {
	pid nodal.Pid
	on  bool
}

// runWatcher is the watcher's body; it ends when the process is killed
// (Stop, Node.Stop) and closes done.
func (s *Scope) runWatcher(p *nodal.Process, done chan struct{}) error {
	defer close(done)
	refs := map[nodal.Pid]nodal.Ref{}
	for {
		msg, err := p.Receive(context.Background())
		if err != nil {
			return nil // killed: the scope is stopping
		}
		switch m := msg.(type) {
		case []watchMsg:
			for _, m := range m {
				ref, ok := refs[m.pid]
				switch {
				case m.on && !ok:
					refs[m.pid] = p.Monitor(m.pid)
				case !m.on && ok:
					delete(refs, m.pid)
					p.Demonitor(ref, false) // a Down already queued fails the ref check below
				}
			}
		case nodal.Down:
			if ref, ok := refs[m.Pid]; ok && ref == m.Ref {
				delete(refs, m.Pid)
				s.exited(m.Pid)
			}
		}
	}
}
