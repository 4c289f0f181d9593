package groups

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/nodal-go/nodal"
)

// uniqueMembers returns the group's distinct visible members, in pid
// order: a pid that joined twice gets one message, not two.
func (s *Scope) uniqueMembers(group string) []nodal.Pid {
	return slices.Compact(s.Members(group))
}

// Send sends msg to every distinct visible member of group (syn's publish,
// the seed's group broadcast), from outside any process, and returns how
// many members it was sent to. As with Node.Send, a message to a member
// that is gone is dropped without an error; a member on another node for
// which msg cannot be encoded fails, and every such error is returned
// joined (errors.Is sees each), with the count of those that were sent.
func (s *Scope) Send(group string, msg any) (int, error) {
	if err := ValidateGroup(group); err != nil {
		return 0, err
	}
	sent := 0
	var errs []error
	for _, pid := range s.uniqueMembers(group) {
		if err := s.n.Send(pid, msg); err != nil {
			errs = append(errs, fmt.Errorf("groups: send to %v: %w", pid, err))
			continue
		}
		sent++
	}
	return sent, errors.Join(errs...)
}

// Reply is one member's reply to Call.
type Reply struct {
	Pid   nodal.Pid
	Value any
}

// Failure is a member that did not reply to Call, and why: its error is
// the one Node.Call returned (a *nodal.CallTimeoutError wrapping
// ErrTimeout at the ctx's deadline, a *nodal.CallError when the member
// exited, nodal.ErrNoConnection when its node is unreachable, ...).
type Failure struct {
	Pid nodal.Pid
	Err error
}

// Call calls every distinct visible member of group with req and waits for
// their replies until ctx is done (Config.CallTimeout when ctx has no
// deadline), syn's multi_call: the replies, and the members that failed,
// both in pid order. Every member is in exactly one of the two. At most
// Config.CallConcurrency calls are out at once. An empty group gives two
// empty slices.
func (s *Scope) Call(ctx context.Context, group string, req any) ([]Reply, []Failure, error) {
	if err := ValidateGroup(group); err != nil {
		return nil, nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.CallTimeout)
		defer cancel()
	}
	pids := s.uniqueMembers(group)
	type result struct {
		v   any
		err error
	}
	res := make([]result, len(pids))
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(len(pids), s.cfg.CallConcurrency) {
		wg.Go(func() {
			for i := range work {
				v, err := s.n.Call(ctx, pids[i], req)
				res[i] = result{v, err}
			}
		})
	}
	for i := range pids {
		work <- i
	}
	close(work)
	wg.Wait()
	var replies []Reply
	var failed []Failure
	for i, r := range res {
		if r.err != nil {
			failed = append(failed, Failure{pids[i], r.err})
		} else {
			replies = append(replies, Reply{pids[i], r.v})
		}
	}
	return replies, failed, nil
}
