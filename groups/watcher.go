package groups

import (
	"context"
	"sync"

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

// watchBatch is one engine turn's orders for the watcher. It is sent by
// pointer (a slice in an interface would be boxed: an allocation per
// send) and the watcher hands it back to watchBatches once done, so that
// a turn's orders cost no allocation.
type watchBatch struct{ msgs []watchMsg }

// watchBatches recycles the watcher's handled batches.
var watchBatches = sync.Pool{New: func() any { return new(watchBatch) }}

// maxWatchBatch is the largest batch kept for reuse.
const maxWatchBatch = 4096

// add appends m to b, taking a batch from the pool if b is nil.
func (b *watchBatch) add(m watchMsg) *watchBatch {
	if b == nil {
		b = watchBatches.Get().(*watchBatch)
	}
	b.msgs = append(b.msgs, m)
	return b
}

// release empties b and gives it back to the pool.
func (b *watchBatch) release() {
	if cap(b.msgs) > maxWatchBatch {
		return
	}
	clear(b.msgs) // let go of the pids' node names
	b.msgs = b.msgs[:0]
	watchBatches.Put(b)
}

// runWatcher is the watcher's body; it ends when the process is killed
// (Stop, Node.Stop) and closes done.
func (s *Scope) runWatcher(p *nodal.Process, done chan struct{}) error {
	defer close(done)
	// By a watched pid's ID, its monitor's ref's ID: the pids are of this
	// node and incarnation (Join refuses others), and so are the refs.
	refs := map[uint64]uint64{}
	self, inc := s.self.Name, s.self.Epoch
	for {
		msg, err := p.Receive(context.Background())
		if err != nil {
			return nil // killed: the scope is stopping
		}
		switch m := msg.(type) {
		case *watchBatch:
			for _, m := range m.msgs {
				ref, ok := refs[m.pid.ID]
				switch {
				case m.on && !ok:
					refs[m.pid.ID] = p.Monitor(m.pid).ID
				case !m.on && ok:
					delete(refs, m.pid.ID)
					// a Down already queued fails the ref check below
					p.Demonitor(nodal.Ref{Node: self, ID: ref, Incarnation: inc}, false)
				}
			}
			m.release()
		case nodal.Down:
			if ref, ok := refs[m.Pid.ID]; ok && ref == m.Ref.ID && m.Ref.Node == self && m.Pid.Node == self && m.Pid.Incarnation == inc {
				delete(refs, m.Pid.ID)
				s.exited(m.Pid)
			}
		}
	}
}
