package nodal

import (
	"context"
	"runtime"

	"github.com/nodal-go/nodal/internal/hoptrace"
)

// The mailbox has two parts. Senders append to p.in under p.mu; the owner
// (the process's goroutine) takes everything delivered in one move when its
// private queue p.local runs out, and then receives from p.local without any
// lock. A sender signals only when the owner is parked (p.parked) or, for an
// idle actor, schedules an activation; otherwise a send is an append under an
// uncontended lock. The queue is unbounded, as Erlang's is.
//
// Messages are kept in chunks (slices of at most chunkMax messages), so a
// queue that grows by millions while its receiver is behind never copies what
// it holds: a full chunk is set aside and a new one started. A chunk is owned
// by one side at a time; a drained one goes back to the senders for reuse.

// chunkMax is the size of a full chunk, in messages (16 KiB of interfaces).
const chunkMax = 1024

// maxFreeChunks is the least number of full-size chunks a mailbox that
// overflowed keeps for reuse (Process.recycleChunk): while its owner lags
// behind a stream a chunk it drained is the next one the senders fill,
// instead of a fresh 16 KiB allocation of pointers every chunkMax
// messages. It keeps more when the mailbox held more chunks than that
// (overflow.peak): a lag that swings (the owner drains a long mailbox
// while its senders are held up, a reader paused at RemoteBacklog until
// the mailbox is down to half of it, then they send flat out again)
// refills from the chunks drained on the way down, and what is kept never
// exceeds the most the mailbox itself held since it last caught up, nor
// peakFreeChunks.
const maxFreeChunks = 4

// peakFreeChunks bounds the chunks a mailbox keeps for reuse however long
// it was (2 MiB of interfaces): more than a mailbox that RemoteBacklog
// bounds holds at the default (DefaultRemoteBacklog/chunkMax, 98).
const peakFreeChunks = 128

// maxKeptBuffer is the capacity above which a drained chunk is released
// rather than kept for reuse when the process has caught up (it parks, or an
// actor's activation ends with an empty mailbox), so a burst does not pin
// memory once it is over.
const maxKeptBuffer = 64

type wakeAction uint8

const (
	actNone wakeAction = iota
	actWake
	actSchedule
)

// pushLocked appends m to the mailbox; p.mu must be held and p alive. It
// returns what the caller must do once it has released p.mu.
func (p *Process) pushLocked(m any) wakeAction {
	if len(p.in) == cap(p.in) && cap(p.in) >= chunkMax {
		if p.ovf == nil {
			p.ovf = new(overflow)
		}
		o := p.ovf
		o.full = append(o.full, p.in)
		if cap(o.spare) >= chunkMax {
			p.in, o.spare = o.spare, nil
		} else if p.in = o.takeFree(); p.in == nil {
			p.in = make([]any, 0, chunkMax)
		}
	} else if cap(p.in) == 0 && p.ovf != nil {
		p.in = p.ovf.takeFree() // rather than growing one from nothing
	}
	p.in = append(p.in, m)
	p.nin++
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

// inLenLocked returns the number of delivered messages not yet moved to
// local; p.mu must be held.
func (p *Process) inLenLocked() int {
	return p.nin
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

// deliver puts a message in p's mailbox. It reports false, dropping the
// message, if p is dead.
func (p *Process) deliver(m any) bool {
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		return false
	}
	a := p.pushLocked(m)
	p.mu.Unlock()
	if a != actNone {
		p.act(a)
	}
	return true
}

// deliverMany puts ms in p's mailbox, in order, under one lock and with at
// most one wake-up. It returns the mailbox's length after, or -1, dropping
// the messages, if p is dead.
func (p *Process) deliverMany(ms []any) int {
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		return -1
	}
	a := actNone
	if len(ms) > 0 {
		a = p.pushLocked(ms[0]) // only the first push can ask for one
		ms = ms[1:]
	}
	for len(ms) > 0 {
		// What fits in the chunk being filled goes in with one copy
		// (one bulk write barrier instead of one per message); a full
		// chunk is set aside by pushLocked.
		k := min(len(ms), cap(p.in)-len(p.in))
		if k == 0 {
			p.pushLocked(ms[0])
			ms = ms[1:]
			continue
		}
		p.in = append(p.in, ms[:k]...)
		p.nin += k
		ms = ms[k:]
	}
	n := p.queueLenLocked()
	p.mu.Unlock()
	if a != actNone {
		p.act(a)
	}
	return n
}

// schedule starts an activation of an actor that has messages. After Stop
// has closed the workers nothing runs; Stop ends the actor itself.
func (n *Node) schedule(p *Process) {
	n.runWorker(p.pid.ID, func() { n.runActor(p) })
}

// refillLocked moves the delivered messages to the end of local; p.mu must be
// held. It returns false if there were none.
func (p *Process) refillLocked() bool {
	if p.nin == 0 {
		return false
	}
	moved := p.nin
	p.nin = 0
	p.count += moved
	p.cycleIn = uint8(min(int(p.cycleIn)+moved, 255))
	p.nlocal.Store(int32(p.count))
	var full [][]any
	if p.ovf != nil {
		full = p.ovf.full
	}
	if n := len(p.local); n > 0 && len(full) == 0 && len(p.local[n-1])+len(p.in) <= cap(p.local[n-1]) {
		// A few messages after a selective receive left some: copy them
		// into the last chunk rather than adding a small chunk each time.
		p.local[n-1] = append(p.local[n-1], p.in...)
		clear(p.in)
		p.in = p.in[:0]
		return true
	}
	p.local = append(p.local, full...)
	if p.ovf != nil {
		clear(p.ovf.full)
		p.ovf.full = p.ovf.full[:0]
	}
	if len(p.in) > 0 {
		p.local = append(p.local, p.in)
		p.in = nil
	}
	// Hand the drained chunk back to the senders.
	if x := p.ext; x != nil && x.drained != nil {
		d := x.drained
		x.drained = nil
		if p.ovf != nil && cap(p.ovf.spare) > cap(d) {
			p.in, p.ovf.spare = p.ovf.spare, d
		} else {
			p.in = d
		}
	} else if p.ovf != nil {
		p.in, p.ovf.spare = p.ovf.spare, nil
	}
	return true
}

// dropHead removes the exhausted chunks at the front of local, keeping one
// drained chunk for reuse.
func (p *Process) dropHead() {
	for len(p.local) > 0 && p.head == len(p.local[0]) {
		c := p.local[0][:0]
		if cap(c) >= chunkMax && p.recycleChunk(c) {
			// Kept for the senders.
		} else if p.ext == nil || cap(c) > cap(p.ext.drained) {
			p.extOwner().drained = c
		}
		p.local[0] = nil
		if len(p.local) == 1 {
			// The last chunk: keep the list's array (re-slicing past its
			// one slot would leave no capacity, and the next refill would
			// allocate a new one, per message for a process taking one at
			// a time).
			p.local = p.local[:0]
		} else {
			p.local = p.local[1:]
		}
		p.head = 0
	}
	if len(p.local) == 0 {
		if cap(p.local) > 1 {
			p.local = p.local[:0:0] // let the chunk list's array go
		} else {
			p.local = p.local[:0] // one slot: kept, a message at a time reuses it
		}
	}
}

// takeFree returns a chunk the owner recycled, or nil.
func (o *overflow) takeFree() []any {
	n := len(o.free)
	if n == 0 {
		return nil
	}
	c := o.free[n-1]
	o.free[n-1] = nil
	o.free = o.free[:n-1]
	return c
}

// recycleChunk gives a drained full-size chunk (its messages cleared by
// pop and take) back to the senders of a mailbox that overflowed; false
// when it has none to give it to or enough kept already: maxFreeChunks,
// or as many as the mailbox held at most. Only the owner calls it, without
// p.mu, once per chunkMax messages.
func (p *Process) recycleChunk(c []any) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	o := p.ovf
	if o == nil {
		return false
	}
	o.peak = max(o.peak, len(p.local)+len(o.full))
	if len(o.free) >= min(max(maxFreeChunks, o.peak), peakFreeChunks) {
		return false
	}
	o.free = append(o.free, c)
	return true
}

// caughtUpLocked is called by the owner when its mailbox is empty and it
// parks (or an actor's activation ends); p.mu must be held. After a quiet
// spell (at most maxKeptBuffer messages since the last one) it releases the
// oversized buffers (trimLocked). After a busy one it keeps them: a stream
// that the owner keeps up with empties the mailbox between every batch,
// and dropping its chunks each time would make it allocate them anew for
// every batch. They go at the next quiet spell.
func (p *Process) caughtUpLocked() {
	if p.cycleIn <= maxKeptBuffer {
		p.trimLocked()
	}
	p.cycleIn = 0
}

// trimLocked releases oversized spare buffers of a caught-up mailbox; p.mu
// must be held and the caller must be the owner.
func (p *Process) trimLocked() {
	if x := p.ext; x != nil && cap(x.drained) > maxKeptBuffer {
		x.drained = nil
	}
	if p.ovf != nil && len(p.ovf.full) == 0 {
		p.ovf = nil
	}
	if len(p.in) == 0 && cap(p.in) > maxKeptBuffer {
		p.in = nil
	}
}

// pop removes and returns the first message of local, if any.
func (p *Process) pop() (any, bool) {
	p.dropHead()
	if len(p.local) == 0 {
		return nil, false
	}
	c := p.local[0]
	m := c[p.head]
	c[p.head] = nil
	p.head++
	p.count--
	p.nlocal.Store(int32(p.count))
	return m, true
}

// take removes and returns message j of chunk ci of local (a position a
// scan found: ci > 0, or j >= head).
func (p *Process) take(ci, j int) any {
	if ci == 0 && j == p.head {
		m, _ := p.pop()
		return m
	}
	c := p.local[ci]
	m := c[j]
	copy(c[j:], c[j+1:])
	c[len(c)-1] = nil
	p.local[ci] = c[:len(c)-1]
	if ci > 0 && len(c) == 1 {
		// The chunk is empty now: drop it from the list.
		copy(p.local[ci:], p.local[ci+1:])
		p.local[len(p.local)-1] = nil
		p.local = p.local[:len(p.local)-1]
	}
	p.count--
	p.nlocal.Store(int32(p.count))
	return m
}

// next returns the next message for an actor activation, or false when the
// mailbox is empty (the activation then ends) or the actor is dead.
func (p *Process) next() (any, bool) {
	if m, ok := p.pop(); ok {
		return m, true
	}
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		return nil, false
	}
	if !p.refillLocked() {
		p.scheduled = false
		p.caughtUpLocked()
		p.mu.Unlock()
		return nil, false
	}
	p.mu.Unlock()
	return p.pop()
}

// Receive returns the next message in the mailbox, waiting for one until ctx
// is done. On a deadline the error wraps both ErrTimeout and
// context.DeadlineExceeded; on cancellation it is ctx.Err(); if the process
// has exited (it was killed) it is an *ExitError (ErrExited) with the reason.
// Receive returns at once when the process is killed, so a Func that only
// waits for messages can pass context.Background().
func (p *Process) Receive(ctx context.Context) (any, error) {
	if !p.gone.Load() {
		if m, ok := p.pop(); ok {
			return m, nil
		}
	}
	return p.ReceiveMatch(ctx, nil)
}

// ReceiveMatch returns the first message in the mailbox for which match
// reports true, leaving the others in the mailbox in their order; it waits
// for one until ctx is done (Erlang's selective receive ... after). A nil
// match accepts any message. Errors are as for Receive. match runs on the
// caller's goroutine and must not call the Process's methods.
func (p *Process) ReceiveMatch(ctx context.Context, match func(any) bool) (any, error) {
	sc, sj := 0, 0 // scan position: chunk, index; everything before is scanned
	yielded := false
	defer p.endNetWait()
	how := hoptrace.ModeNone
	for {
		if p.gone.Load() {
			return nil, p.exited()
		}
		for ci := sc; ci < len(p.local); ci++ {
			c := p.local[ci]
			j := 0
			if ci == 0 {
				j = p.head
			}
			if ci == sc {
				j = max(j, sj)
			}
			for ; j < len(c); j++ {
				if match == nil || match(c[j]) {
					if hoptrace.Enabled {
						hoptrace.Stamp(hoptrace.Received)
						hoptrace.WakeMode(how)
					}
					return p.take(ci, j), nil
				}
			}
		}
		p.dropHead()
		// Everything is scanned; a refill may append to the last chunk.
		if sc = len(p.local) - 1; sc >= 0 {
			sj = len(p.local[sc])
		} else {
			sc, sj = 0, 0
		}
		p.mu.Lock()
		p.parked = false
		if p.dead {
			p.mu.Unlock()
			return nil, p.exited()
		}
		if p.refillLocked() {
			p.mu.Unlock()
			continue
		}
		if err := ctx.Err(); err != nil {
			p.mu.Unlock()
			return nil, ctxError(err)
		}
		if !yielded {
			// Before parking, spin for a message from the network
			// (spin.go) or yield once: a sender running on another
			// core often has the next message ready by then, and a
			// parked receiver costs the sender a wake-up.
			yielded = true
			p.mu.Unlock()
			if !p.spin() {
				runtime.Gosched()
				how = hoptrace.ModeYield
			} else {
				how = hoptrace.ModeSpin
			}
			if !p.spinCall {
				// A server's wait (it answered another node) counts as a
				// conversation only while it spins, as rpc's idle call
				// processes do: a parked one, whose next message may be
				// long in coming, would keep the reader from yielding to
				// the one real conversation (dist.yieldToSpinner).
				p.endNetWait()
			}
			hoptrace.Stamp(hoptrace.Woken)
			continue
		}
		if p.wake == nil {
			p.wake = make(chan struct{}, 1)
		}
		p.caughtUpLocked()
		p.parked = true
		w := p.wake
		p.mu.Unlock()
		if done := ctx.Done(); done == nil {
			<-w
		} else {
			select {
			case <-w:
			case <-done:
			}
		}
		how = hoptrace.ModeParked
		hoptrace.Stamp(hoptrace.Woken)
	}
}

// flush removes from the mailbox every message for which drop reports true.
// Only the owner calls it.
func (p *Process) flush(drop func(any) bool) {
	p.mu.Lock()
	p.refillLocked()
	p.mu.Unlock()
	for ci, c := range p.local {
		start := 0
		if ci == 0 {
			start = p.head
		}
		kept := c[:start]
		for _, m := range c[start:] {
			if drop(m) {
				p.count--
			} else {
				kept = append(kept, m)
			}
		}
		clear(c[len(kept):])
		p.local[ci] = kept
	}
	p.dropHead()
	p.nlocal.Store(int32(p.count))
}

// queueLenLocked returns the number of messages in the mailbox; p.mu must be
// held.
func (p *Process) queueLenLocked() int {
	return p.inLenLocked() + int(p.nlocal.Load())
}
