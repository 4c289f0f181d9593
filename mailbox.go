package nodal

import (
	"context"
)

// The mailbox has two parts. Senders append to p.in under p.mu; the owner
// (the process's goroutine) takes the whole of p.in in one swap when its
// private p.local runs out, and then receives from p.local without any lock.
// A sender signals only when the owner is parked (p.parked) or, for an idle
// actor, schedules an activation; otherwise a send is an append under an
// uncontended lock. The queue is unbounded, as Erlang's is.

// maxKeptBuffer is the capacity above which a drained buffer is released
// rather than reused, so a burst does not pin memory forever.
const maxKeptBuffer = 4096

type wakeAction uint8

const (
	actNone wakeAction = iota
	actWake
	actSchedule
)

// pushLocked appends m to the mailbox; p.mu must be held and p alive. It
// returns what the caller must do once it has released p.mu.
func (p *Process) pushLocked(m any) wakeAction {
	p.in = append(p.in, m)
	if p.parked {
		p.parked = false
		return actWake
	}
	if p.kind == kindActor && !p.scheduled {
		p.scheduled = true
		return actSchedule
	}
	return actNone
}

// act performs a wakeAction returned by pushLocked, without p.mu held.
func (p *Process) act(a wakeAction) {
	switch a {
	case actWake:
		p.signalWake()
	case actSchedule:
		p.node.schedule(p)
	}
}

func (p *Process) signalWake() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// deliver puts a message in p's mailbox (dropped if p is dead).
func (p *Process) deliver(m any) {
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		return
	}
	a := p.pushLocked(m)
	p.mu.Unlock()
	if a != actNone {
		p.act(a)
	}
}

// schedule starts an activation of an actor that has messages. After Stop
// has closed the gate nothing runs; Stop ends the actor itself.
func (n *Node) schedule(p *Process) {
	n.runWorker(p.pid.ID, func() { n.runActor(p) })
}

// refill moves the delivered messages into local; p.mu must be held. It
// returns false if there were none.
func (p *Process) refillLocked() bool {
	if len(p.in) == 0 {
		return false
	}
	if p.head == len(p.local) {
		old := p.local[:0]
		if cap(old) > maxKeptBuffer {
			old = nil
		}
		p.local, p.head = p.in, 0
		p.in = old
	} else {
		p.local = append(p.local, p.in...)
		clear(p.in)
		if cap(p.in) > maxKeptBuffer {
			p.in = nil
		} else {
			p.in = p.in[:0]
		}
	}
	p.nlocal.Store(int32(len(p.local) - p.head))
	return true
}

// next returns the next message for an actor activation, or false when the
// mailbox is empty (the activation then ends) or the actor is dead.
func (p *Process) next() (any, bool) {
	if p.head < len(p.local) {
		return p.take(p.head), true
	}
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		return nil, false
	}
	if !p.refillLocked() {
		p.scheduled = false
		p.mu.Unlock()
		return nil, false
	}
	p.mu.Unlock()
	return p.take(p.head), true
}

// take removes and returns local[i] (head <= i < len(local)).
func (p *Process) take(i int) any {
	m := p.local[i]
	if i == p.head {
		p.local[i] = nil
		p.head++
	} else {
		// Shift the earlier, skipped messages up by one: they stay in order.
		copy(p.local[p.head+1:i+1], p.local[p.head:i])
		p.local[p.head] = nil
		p.head++
	}
	if p.head == len(p.local) {
		p.local, p.head = p.local[:0], 0
	}
	p.nlocal.Store(int32(len(p.local) - p.head))
	return m
}

// Receive returns the next message in the mailbox, waiting for one until ctx
// is done. On a deadline the error wraps both ErrTimeout and
// context.DeadlineExceeded; on cancellation it is ctx.Err(); if the process
// has exited (it was killed) it is an *ExitError (ErrExited) with the reason.
func (p *Process) Receive(ctx context.Context) (any, error) {
	if p.head < len(p.local) && !p.gone.Load() {
		return p.take(p.head), nil
	}
	return p.ReceiveMatch(ctx, nil)
}

// ReceiveMatch returns the first message in the mailbox for which match
// reports true, leaving the others in the mailbox in their order; it waits
// for one until ctx is done (Erlang's selective receive ... after). A nil
// match accepts any message. Errors are as for Receive. match runs on the
// caller's goroutine and must not call the Process's methods.
func (p *Process) ReceiveMatch(ctx context.Context, match func(any) bool) (any, error) {
	scanned := p.head
	for {
		if p.gone.Load() {
			return nil, p.exited()
		}
		for i := max(scanned, p.head); i < len(p.local); i++ {
			if match == nil || match(p.local[i]) {
				return p.take(i), nil
			}
		}
		scanned = len(p.local)
		p.mu.Lock()
		p.parked = false
		if p.dead {
			p.mu.Unlock()
			return nil, p.exited()
		}
		if p.head == len(p.local) {
			scanned = 0 // refill swaps buffers: local restarts at 0
		}
		if p.refillLocked() {
			p.mu.Unlock()
			continue
		}
		if err := ctx.Err(); err != nil {
			p.mu.Unlock()
			return nil, ctxError(err)
		}
		if p.wake == nil {
			p.wake = make(chan struct{}, 1)
		}
		p.parked = true
		w := p.wake
		p.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
		}
	}
}

// flush removes from the mailbox every message for which drop reports true.
// Only the owner calls it.
func (p *Process) flush(drop func(any) bool) {
	p.mu.Lock()
	p.refillLocked()
	p.mu.Unlock()
	kept := p.local[:p.head]
	for _, m := range p.local[p.head:] {
		if !drop(m) {
			kept = append(kept, m)
		}
	}
	clear(p.local[len(kept):])
	p.local = kept
	if p.head == len(p.local) {
		p.local, p.head = p.local[:0], 0
	}
	p.nlocal.Store(int32(len(p.local) - p.head))
}

// queueLen returns the number of messages in the mailbox.
func (p *Process) queueLenLocked() int {
	return len(p.in) + int(p.nlocal.Load())
}
