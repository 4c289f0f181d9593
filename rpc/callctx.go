package rpc

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/internal/spin"
)

// callCtx is the ctx a function runs with: the process's ctx, the process
// (Process), and the caller's deadline; it is done once the function has
// returned. Its own channel and the deadline's timer are made only when
// the function asks for Done, so a function that never waits costs
// neither.
type callCtx struct {
	context.Context // the process's
	p               *nodal.Process
	deadline        time.Time // zero: none

	state  atomic.Int32 // ctxRunning, ctxUsed, ctxOver
	send   lazyTimeout  // bounds the reply's send (here to save an allocation)
	once   sync.Once
	armed  atomic.Bool
	dctx   context.Context
	cancel context.CancelFunc
}

// States of a callCtx.
const (
	ctxRunning int32 = iota // the function runs and has not asked for its process
	ctxUsed                 // the function asked for its process (Process)
	ctxOver                 // the function returned without asking for it
)

func (c *callCtx) Deadline() (time.Time, bool) {
	if c.deadline.IsZero() {
		return c.Context.Deadline()
	}
	return c.deadline, true
}

func (c *callCtx) Done() <-chan struct{} {
	c.once.Do(func() {
		if c.deadline.IsZero() {
			c.dctx, c.cancel = context.WithCancel(c.Context)
		} else {
			c.dctx, c.cancel = context.WithDeadline(c.Context, c.deadline)
		}
		c.armed.Store(true)
	})
	return c.dctx.Done()
}

func (c *callCtx) Err() error {
	if c.armed.Load() {
		return c.dctx.Err()
	}
	if err := c.Context.Err(); err != nil {
		return err
	}
	if c.state.Load() == ctxOver {
		return context.Canceled
	}
	if !c.deadline.IsZero() && !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

func (c *callCtx) Value(k any) any {
	if k == (procKey{}) {
		// Once the function has returned without using its process, the
		// process may run other calls: it is no longer this ctx's.
		if c.state.CompareAndSwap(ctxRunning, ctxUsed) || c.state.Load() == ctxUsed {
			return c.p
		}
		return nil
	}
	return c.Context.Value(k)
}

// end marks the function returned: c is done from now on (its channel, if
// made, is closed; its timer stopped). It reports whether the function
// asked for its process. It may be called more than once.
func (c *callCtx) end() (used bool) {
	used = !c.state.CompareAndSwap(ctxRunning, ctxOver) && c.state.Load() == ctxUsed
	c.once.Do(func() { c.dctx = doneCtx; c.armed.Store(true) })
	if c.cancel != nil {
		c.cancel()
	}
	return used
}

// replyTimeout bounds how long a call process waits for room in the
// caller's outbound queue to send its reply.
const replyTimeout = nodal.AutoConnectTimeout

// lazyTimeout is a ctx that is done d after its Done is first asked for:
// a bound for a wait that seldom happens, whose timer is made only when
// the wait does. Release it when done.
type lazyTimeout struct {
	d      time.Duration
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
}

func (c *lazyTimeout) arm() {
	c.once.Do(func() { c.ctx, c.cancel = context.WithTimeout(context.Background(), c.d) })
}

func (c *lazyTimeout) Deadline() (time.Time, bool) { c.arm(); return c.ctx.Deadline() }
func (c *lazyTimeout) Done() <-chan struct{}       { c.arm(); return c.ctx.Done() }
func (c *lazyTimeout) Value(any) any               { return nil }

func (c *lazyTimeout) Err() error { c.arm(); return c.ctx.Err() }

// release stops the timer, if one was made; call it once the wait is over.
// A later Done (a goroutine the wait started may still hold c) sees a done
// ctx, and no timer is made.
func (c *lazyTimeout) release() {
	c.once.Do(func() { c.ctx = doneCtx })
	if c.cancel != nil {
		c.cancel()
	}
}

// doneCtx is a ctx that is always done.
var doneCtx = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// job is one request for a call process to run.
type job struct {
	from   nodal.NodeRef
	remote bool // from another node
	req    request
	f      *function
	busy   *atomic.Int64 // the calls from its node running here
}

// maxIdleCallProcs bounds the call processes that wait for a next call
// once theirs is done.
const maxIdleCallProcs = 64

// callProc is an idle call process's mailbox for its next job.
type callProc struct {
	next chan job    // capacity 1; a job is put in only by handOff
	buf  []byte      // the reply's encoding buffer, reused
	w    spin.Waiter // the spin of its wait for the next job (internal/spin)
}

// maxReplyBuf keeps large one-off reply buffers from staying with a call
// process.
const maxReplyBuf = 64 << 10

// procPool holds the idle call processes, the most recently parked (the
// warmest) on top.
type procPool struct {
	mu   sync.Mutex
	idle []*callProc
}

// handOff gives j to an idle call process; false if none is idle. It
// prefers one that spins for its next call (internal/spin), which takes it
// without being woken, then the warmest.
func (pp *procPool) handOff(j job) bool {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	n := len(pp.idle)
	if n == 0 {
		return false
	}
	k := n - 1
	if spin.Spinners() != 0 && !pp.idle[k].w.Spinning() {
		for i := k - 1; i >= 0; i-- {
			if pp.idle[i].w.Spinning() {
				k = i
				break
			}
		}
	}
	cp := pp.idle[k]
	pp.idle = slices.Delete(pp.idle, k, k+1)
	if j.remote {
		// A call from another node: counted as a conversation from now
		// (spin.Conversations), before the reader's yield looks.
		cp.w.Begin()
	}
	cp.w.Handed()
	cp.next <- j // an idle process's channel is empty: never blocks
	return true
}

// settle ends cp's count as a conversation unless it was handed a job
// (under pp.mu, as handOff's Begin).
func (pp *procPool) settle(cp *callProc) {
	pp.mu.Lock()
	if len(cp.next) == 0 {
		cp.w.End()
	}
	pp.mu.Unlock()
}

// park makes cp idle; false when maxIdleCallProcs are idle already.
func (pp *procPool) park(cp *callProc) bool {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if len(pp.idle) >= maxIdleCallProcs {
		return false
	}
	pp.idle = append(pp.idle, cp)
	return true
}

// leave takes the idle cp out as its process ends; false if it was handed
// a job meanwhile (which is then in cp.next).
func (pp *procPool) leave(cp *callProc) bool {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	for i, x := range pp.idle {
		if x == cp {
			pp.idle = slices.Delete(pp.idle, i, i+1)
			return true
		}
	}
	return false
}

// callSet holds the pids of the processes running calls here, for Stop;
// sharded by pid id.
type callSet struct {
	shards [16]struct {
		mu sync.Mutex
		m  map[uint64]nodal.Pid
	}
}

func (s *callSet) add(pid nodal.Pid) {
	sh := &s.shards[pid.ID%16]
	sh.mu.Lock()
	if sh.m == nil {
		sh.m = map[uint64]nodal.Pid{}
	}
	sh.m[pid.ID] = pid
	sh.mu.Unlock()
}

func (s *callSet) remove(pid nodal.Pid) {
	sh := &s.shards[pid.ID%16]
	sh.mu.Lock()
	delete(sh.m, pid.ID)
	sh.mu.Unlock()
}

func (s *callSet) each(f func(nodal.Pid)) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		pids := make([]nodal.Pid, 0, len(sh.m))
		for _, pid := range sh.m {
			pids = append(pids, pid)
		}
		sh.mu.Unlock()
		for _, pid := range pids {
			f(pid)
		}
	}
}
