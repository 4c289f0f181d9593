package rpc

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nodal-go/nodal"
)

// callCtx is the ctx a function runs with: the process's ctx, the process
// (Process), and the caller's deadline. The deadline's timer is made only
// when the function asks for Done, so a function that never waits costs no
// timer.
type callCtx struct {
	context.Context // the process's
	p               *nodal.Process
	deadline        time.Time // zero: none

	once   sync.Once
	armed  atomic.Bool
	dctx   context.Context
	cancel context.CancelFunc
}

func (c *callCtx) Deadline() (time.Time, bool) {
	if c.deadline.IsZero() {
		return c.Context.Deadline()
	}
	return c.deadline, true
}

func (c *callCtx) Done() <-chan struct{} {
	if c.deadline.IsZero() {
		return c.Context.Done()
	}
	c.once.Do(func() {
		c.dctx, c.cancel = context.WithDeadline(c.Context, c.deadline)
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
	if !c.deadline.IsZero() && !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

func (c *callCtx) Value(k any) any {
	if k == (procKey{}) {
		return c.p
	}
	return c.Context.Value(k)
}

// release stops the deadline's timer, if one was made.
func (c *callCtx) release() {
	if c.armed.Load() {
		c.cancel()
	}
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
