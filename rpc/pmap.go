package rpc

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// pmapWindow is how many items of a Pmap one node runs at once.
const pmapWindow = 32

// Pmap applies fn to every item, spread over the live nodes (Nodes: this
// node and the connected nodes that run rpc), and returns the results in
// the order of items (Erlang's rpc:pmap). An item whose node was lost (no
// connection, or the breaker open) or refused it (ErrSystemLimit) is redone
// on another node, so fn should be idempotent: a lost node may have applied
// it. Any other error of an item ends the Pmap and is returned. ctx bounds
// the whole map (Config.DefaultTimeout without a deadline); each node runs
// at most 32 items at once.
func Pmap[A, R any](ctx context.Context, r *RPC, fn string, items []A) ([]R, error) {
	if _, ok := ctx.Deadline(); !ok {
		// Its workers share ctx: a plain timeout (defaultDeadline's is
		// for one waiter).
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.cfg.DefaultTimeout)
		defer cancel()
	}
	out := make([]R, len(items))
	if len(items) == 0 {
		return out, nil
	}
	todo := make(chan int, len(items)) // each index is in todo or with one worker
	for i := range items {
		todo <- i
	}
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	var (
		mu       sync.Mutex
		left     = len(items)
		liveLeft int
		finished = make(chan struct{})
		wg       sync.WaitGroup
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		stop(err)
	}
	nodes := r.Nodes()
	liveLeft = len(nodes) * pmapWindow
	for _, node := range nodes {
		for range pmapWindow {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					var i int
					select {
					case i = <-todo:
					case <-finished:
						return
					case <-ctx.Done():
						return
					}
					v, err := CallAs[R](ctx, r, node, fn, items[i])
					if err != nil {
						todo <- i // redo it elsewhere, or report below
						if errors.Is(err, ErrNoConnection) || errors.Is(err, ErrSystemLimit) {
							mu.Lock()
							liveLeft--
							none := liveLeft == 0
							mu.Unlock()
							if none {
								fail(fmt.Errorf("rpc: pmap: no node left: %w", err))
							}
							return // this node is gone for this map
						}
						if ctx.Err() == nil {
							fail(err)
						}
						return
					}
					out[i] = v
					mu.Lock()
					left--
					if left == 0 {
						close(finished)
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	select {
	case <-finished:
		return out, nil
	default:
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return nil, &CallError{Func: fn, Err: timeoutError(ctx.Err())}
}
