package groups

import (
	"context"

	"github.com/nodal-go/nodal"
)

// The watcher is a process of the scope's node that monitors every local
// pid with a membership (pg monitors its joined processes the same way):
// when one exits, it leaves every group. Local monitoring only, as in pg:
// other nodes learn of the leave from its delta.

type watchMsg struct{ pid nodal.Pid }
type unwatchMsg struct{ pid nodal.Pid }

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
		case watchMsg:
			if _, ok := refs[m.pid]; !ok {
				refs[m.pid] = p.Monitor(m.pid)
			}
		case unwatchMsg:
			if ref, ok := refs[m.pid]; ok {
				delete(refs, m.pid)
				p.Demonitor(ref, false) // a Down already queued fails the ref check below
			}
		case nodal.Down:
			if ref, ok := refs[m.Pid]; ok && ref == m.Ref {
				delete(refs, m.Pid)
				s.exited(m.Pid)
			}
		}
	}
}
