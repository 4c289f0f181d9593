// Package exitwatch is the exit watcher registry/ and groups/ share: a
// process of the node that monitors the local pids it is told to (a
// registered name's holder, a group member) and reports each that exits,
// so that its name or memberships go. pg and global monitor their
// processes the same way: locally; other nodes learn of the removal from
// the delta that follows.
package exitwatch

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nodal-go/nodal"
)

// Orders is one batch of watch and unwatch orders, applied in order. It
// is sent to the watcher by pointer (a slice in an interface would be
// boxed: an allocation per send) and recycled once handled, so that a
// batch costs no allocation. The nil *Orders is an empty batch: Watch and
// Unwatch take a recycled one for it.
type Orders struct{ orders []order }

// order asks the watcher to monitor (on) or stop monitoring pid.
type order struct {
	pid nodal.Pid
	on  bool
}

// pool recycles handled batches.
var pool = sync.Pool{New: func() any { return new(Orders) }}

// maxKept is the largest batch kept for reuse.
const maxKept = 4096

// Watch adds an order to watch pid, a process of the watcher's node and
// incarnation, and returns the batch (o, or a new one if o is nil).
func (o *Orders) Watch(pid nodal.Pid) *Orders { return o.add(order{pid: pid, on: true}) }

// Unwatch adds an order to stop watching pid and returns the batch.
func (o *Orders) Unwatch(pid nodal.Pid) *Orders { return o.add(order{pid: pid}) }

func (o *Orders) add(x order) *Orders {
	if o == nil {
		o = pool.Get().(*Orders)
	}
	o.orders = append(o.orders, x)
	return o
}

// release empties o and gives it back to the pool.
func (o *Orders) release() {
	if cap(o.orders) > maxKept {
		return
	}
	clear(o.orders) // let go of the pids' node names
	o.orders = o.orders[:0]
	pool.Put(o)
}

// Watcher is a running exit watcher.
type Watcher struct {
	n    *nodal.Node
	pid  nodal.Pid
	done chan struct{}
}

// Start starts a watcher on n that calls exited, on its own process's
// goroutine, for each watched pid that exits (once; the pid is then no
// longer watched). what names the watcher in errors.
func Start(n *nodal.Node, what string, exited func(nodal.Pid)) (*Watcher, error) {
	w := &Watcher{n: n, done: make(chan struct{})}
	self, inc := n.Name(), n.Incarnation()
	pid, err := n.Spawn(func(p *nodal.Process) error {
		defer close(w.done)
		// By a watched pid's ID, its monitor's ref's ID: the pids are of
		// this node and incarnation, and so are the refs (16 bytes a pid).
		refs := map[uint64]uint64{}
		for {
			msg, err := p.Receive(context.Background())
			if err != nil {
				return nil // killed: its node stops (Stop asks by a call)
			}
			switch m := msg.(type) {
			case nodal.CallRequest:
				if _, ok := m.Req.(stop); ok {
					p.Reply(m.From, nil)
					return nil
				}
			case *Orders:
				for _, o := range m.orders {
					ref, ok := refs[o.pid.ID]
					switch {
					case o.on && !ok:
						refs[o.pid.ID] = p.Monitor(o.pid).ID
					case !o.on && ok:
						delete(refs, o.pid.ID)
						// No flush: it scans the mailbox (O(mailbox) per
						// pid), and a Down already queued fails the ref
						// check below.
						p.Demonitor(nodal.Ref{Node: self, ID: ref, Incarnation: inc}, false)
					}
				}
				m.release()
			case nodal.Down:
				if ref, ok := refs[m.Pid.ID]; ok && ref == m.Ref.ID && m.Ref.Node == self && m.Pid.Node == self && m.Pid.Incarnation == inc {
					delete(refs, m.Pid.ID)
					exited(m.Pid)
				}
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("%s: start the exit watcher: %w", what, err)
	}
	w.pid = pid
	return w, nil
}

// Send hands a batch of orders to the watcher (nil: nothing to send). It
// never blocks: a local send.
func (w *Watcher) Send(o *Orders) {
	if o != nil {
		_ = w.n.Send(w.pid, o)
	}
}

// stop asks the watcher to end (Stop's call).
type stop struct{}

// Stop ends the watcher and waits for it, bounded by ctx: its watches end
// with it. It asks by a call, not an exit signal, and waits for the
// watcher's function to return only when the watcher answered: a process
// killed before its goroutine starts never runs its function (so done
// would never close), and a call to it fails at once instead.
func (w *Watcher) Stop(ctx context.Context) error {
	_, err := w.n.Call(ctx, w.pid, stop{})
	var gone *nodal.CallError
	switch {
	case errors.As(err, &gone), errors.Is(err, nodal.ErrStopped):
		return nil // already ended, or ended by the stopping node
	case err != nil:
		return fmt.Errorf("exit watcher still running: %w", err)
	}
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("exit watcher still running: %w", ctx.Err())
	}
}
