package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nodal-go/nodal"
)

// function is one registered function.
type function struct {
	info FunctionInfo
	// invoke decodes args, runs the function and appends its encoded
	// result to dst; a decode failure is a *badArgs.
	invoke func(ctx context.Context, args []byte, asJSON bool, dst []byte) ([]byte, error)
}

// FunctionInfo describes a registered function: its name and the Go types
// of its argument and result.
type FunctionInfo struct {
	Name   string
	Args   string
	Result string
}

type badArgs struct{ err error }

func (e *badArgs) Error() string { return e.err.Error() }

// Register exposes fn under name (1 to 256 bytes) on r's node: only
// registered functions can be called. A and R travel through the node's
// codec: built-in kinds need nothing, and other types that are not
// registered yet are registered under their package-qualified Go name
// (register them yourself with nodal.RegisterType to choose the name).
// Every node that calls fn must know A and R under the same names. A name
// can be registered once.
//
// fn runs on its own process on this node, with a ctx that is done when the
// caller's deadline passes or the process is killed; Process(ctx) returns
// that process.
func Register[A, R any](r *RPC, name string, fn func(ctx context.Context, args A) (R, error)) error {
	if name == "" || len(name) > maxFuncName {
		return fmt.Errorf("%w: function name must be 1..%d bytes", nodal.ErrBadOption, maxFuncName)
	}
	if fn == nil {
		return fmt.Errorf("%w: nil function %q", nodal.ErrBadOption, name)
	}
	for _, t := range []reflect.Type{reflect.TypeFor[A](), reflect.TypeFor[R]()} {
		if err := registerType(r.codec, t); err != nil {
			return fmt.Errorf("rpc: register %q: %w", name, err)
		}
	}
	codec := r.codec
	f := &function{
		info: FunctionInfo{Name: name, Args: reflect.TypeFor[A]().String(), Result: reflect.TypeFor[R]().String()},
		invoke: func(ctx context.Context, b []byte, asJSON bool, dst []byte) ([]byte, error) {
			var a A // not addressed: stays off the heap
			if asJSON {
				if len(b) > 0 {
					ja := new(A)
					if err := json.Unmarshal(b, ja); err != nil {
						return nil, &badArgs{err}
					}
					a = *ja
				}
			} else {
				v, err := codec.Unmarshal(b)
				if err != nil {
					return nil, &badArgs{err}
				}
				if v != nil {
					x, ok := v.(A)
					if !ok {
						return nil, &badArgs{fmt.Errorf("want %v, got %T", reflect.TypeFor[A](), v)}
					}
					a = x
				}
			}
			res, err := fn(ctx, a)
			if err != nil {
				return nil, err
			}
			if asJSON {
				j, err := json.Marshal(res)
				return append(dst, j...), err
			}
			return codec.AppendValue(dst, any(res))
		},
	}
	r.fmu.Lock()
	defer r.fmu.Unlock()
	old := *r.funcs.Load()
	if _, ok := old[name]; ok {
		return fmt.Errorf("%w: function %q already registered", nodal.ErrBadOption, name)
	}
	m := maps.Clone(old)
	m[name] = f
	r.funcs.Store(&m)
	return nil
}

// registerType registers t with codec under its Go name, unless its zero
// value already encodes (a built-in kind, an interface, or registered).
func registerType(codec *nodal.Codec, t reflect.Type) error {
	if t.Kind() == reflect.Interface {
		return nil // any value of a built-in kind or registered type
	}
	zero := reflect.Zero(t).Interface()
	if _, err := codec.AppendValue(nil, zero); err == nil {
		return nil
	}
	name := t.String()
	if t.Name() != "" && t.PkgPath() != "" {
		name = t.PkgPath() + "." + t.Name()
	}
	return codec.Register(name, zero)
}

// Functions returns what r's node exposes, sorted by name.
func (r *RPC) Functions() []FunctionInfo {
	m := *r.funcs.Load()
	out := make([]FunctionInfo, 0, len(m))
	for _, name := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[name].info)
	}
	return out
}

// FunctionsOn returns what node exposes (its built-in rpc.functions).
func (r *RPC) FunctionsOn(ctx context.Context, node string) ([]FunctionInfo, error) {
	return CallAs[[]FunctionInfo](ctx, r, node, "rpc.functions", nil)
}

type procKey struct{}

// Process returns the process that runs the call whose function got ctx,
// for the function to use (Monitor, Receive, Spawn, ...) on its own
// goroutine; that process runs no other call and ends after this one. nil
// for any other ctx, and for a function's ctx asked after the function
// returned without asking for it.
func Process(ctx context.Context) *nodal.Process {
	p, _ := ctx.Value(procKey{}).(*nodal.Process)
	return p
}

// serve runs a request from another node (or this one) on a call process:
// an idle one if there is one, else a new one. It runs in HandleFrame and
// must not block.
func (r *RPC) serve(from nodal.NodeRef, req request) {
	isCall := req.kind == kindCall
	fail := func(class byte, text string) {
		if isCall {
			b := appendReplyError(nil, req.id, from.Incarnation, class, text, "", false)
			_ = r.n.TrySendService(from.Name, ServiceName, b)
		}
	}
	if r.stopped.Load() {
		fail(classKilled, nodal.ReasonShutdown.Error())
		return
	}
	f := (*r.funcs.Load())[req.fn]
	if f == nil {
		fail(classNoFunc, req.fn)
		return
	}
	busy := r.servingCount(from.Name)
	if busy.Add(1) > int64(r.cfg.MaxConcurrent) {
		busy.Add(-1)
		r.stats.rejected.Add(1)
		fail(classLimit, fmt.Sprintf("%d calls from %s running", r.cfg.MaxConcurrent, from.Name))
		return
	}
	j := job{from: from, remote: from.Name != r.self, req: req, f: f, busy: busy}
	if r.idle.handOff(j) {
		return
	}
	r.active.Add(1)
	r.stats.procs.Add(1)
	pid, err := r.n.Spawn(func(p *nodal.Process) error {
		r.callLoop(p, j)
		return nil
	})
	if err != nil {
		busy.Add(-1)
		r.active.Done()
		fail(classKilled, nodal.ReasonShutdown.Error())
		return
	}
	if r.stopped.Load() { // Stop may have missed it
		r.n.Exit(pid, nodal.ReasonShutdown)
	}
}

func (r *RPC) servingCount(node string) *atomic.Int64 {
	if c, ok := r.serving.Load(node); ok {
		return c.(*atomic.Int64)
	}
	c, _ := r.serving.LoadOrStore(node, new(atomic.Int64))
	return c.(*atomic.Int64)
}

// callLoop is the body of a call process: it runs j, then, while the
// process is as fresh as a new one (the function never asked for it with
// Process, it is not linked, monitored, named or trapping exits and its
// mailbox is empty), waits among the idle call processes for the next job.
// A process a function did use runs no other call: it ends after it.
func (r *RPC) callLoop(p *nodal.Process, j job) {
	pid := p.Self()
	r.running.add(pid)
	defer func() {
		r.running.remove(pid)
		r.active.Done()
	}()
	cp := &callProc{next: make(chan job, 1)}
	defer cp.w.End()
	done := p.Context().Done()
	for {
		if !r.run(p, j, &cp.buf) || !p.Fresh() {
			return
		}
		remote := j.from.Name != r.self
		if remote {
			cp.w.Begin() // through its spin (before park: handOff may Begin too)
		}
		if !r.idle.park(cp) {
			return
		}
		if remote && len(cp.next) == 0 {
			// It answered another node, whose next call comes from the
			// network: spin for it before parking (a server's wait).
			cp.w.Spin(func() bool { return len(cp.next) != 0 })
		}
		// It counts as a conversation while it spins and from the
		// hand-off of a call from another node until it parks idle
		// again, not while it waits parked: the idle call processes
		// (up to maxIdleCallProcs, most of which never get the next
		// call) would otherwise keep the node's one real conversation
		// from the reader's yield (dist.yieldToSpinner), while calls
		// served concurrently, counted from their hand-off, keep the
		// reader from yielding to one of them.
		r.idle.settle(cp)
		select {
		case j = <-cp.next:
			if j.from.Name == r.self {
				cp.w.End() // out of the idle set: only its owner touches cp.w now
			}
		case <-done:
			if r.idle.leave(cp) {
				return
			}
			// Handed a job as it was killed: that call is killed.
			j = <-cp.next
			r.run(p, j, &cp.buf)
			return
		}
	}
}

// run runs one call on the call process p and sends its reply, encoded in
// *buf (the process's, reused from call to call); it reports whether p may
// run another call.
func (r *RPC) run(p *nodal.Process, j job, buf *[]byte) (reuse bool) {
	from, req, f, busy := j.from, j.req, j.f, j.busy
	freed := false
	free := func() { // the call no longer counts against MaxConcurrent
		if !freed {
			freed = true
			busy.Add(-1)
		}
	}
	defer free()
	r.stats.served.Add(1)
	pctx := p.Context()
	ctx := &callCtx{Context: pctx, p: p}
	if req.timeout > 0 {
		ctx.deadline = time.Now().Add(req.timeout)
	}
	asJSON := req.flags&flagJSON != 0
	var out []byte
	send := func() {
		free() // before the reply: the caller may call again at once
		if req.kind != kindCall {
			return
		}
		// A blocking send: the call process may wait, and a sender that
		// finds the connection idle writes the reply itself (TrySendService
		// would hand it to the connection's writer goroutine, one more
		// wake-up per call). It waits only while the outbound queue is
		// full, bounded by replyTimeout; that bound's timer is made only
		// then.
		ctx.send.d = replyTimeout
		err := r.n.SendService(&ctx.send, from.Name, ServiceName, out)
		ctx.send.release()
		if err != nil {
			log.Debugw("rpc reply not sent", "to", from.Name, "err", err)
		}
		if cap(out) <= maxReplyBuf { // SendService copied it
			*buf = out[:0]
		}
	}
	defer func() {
		v := recover()
		used := ctx.end()
		if v == nil {
			return
		}
		if nodal.IsExitPanic(v) {
			out = appendReplyError(nil, req.id, from.Incarnation, classKilled, "exit", "", true)
			send()
			panic(v) // the process must end (nodal.IsExitPanic)
		}
		out = appendReplyError(nil, req.id, from.Incarnation, classPanic, fmt.Sprint(v), trimmedStack(), false)
		send()
		reuse = !used
	}()
	var err error
	head := appendReplyHeader((*buf)[:0], req.id, from.Incarnation, classOK)
	if pctx.Err() == nil {
		out, err = f.invoke(ctx, req.args, asJSON, head)
	}
	if pctx.Err() != nil {
		// Killed while the function ran: report the exit signal's reason
		// (Receive on a dead process returns its *nodal.ExitError).
		reason := nodal.ReasonKilled.Error()
		var ee *nodal.ExitError
		if _, rerr := p.Receive(context.Background()); errors.As(rerr, &ee) && ee.Reason != nil {
			reason = ee.Reason.Error()
		}
		out = appendReplyError((*buf)[:0], req.id, from.Incarnation, classKilled, reason, "", false)
		send()
		return false
	}
	if err != nil {
		out = appendFuncError((*buf)[:0], req.id, from.Incarnation, err)
	}
	send()
	return !ctx.end()
}

// appendFuncError appends the error reply for a function's err: bad
// arguments or the function's own error. (Its own function, so that the
// errors.As target is allocated only for a call that failed.)
func appendFuncError(b []byte, id, incarnation uint64, err error) []byte {
	var ba *badArgs
	if errors.As(err, &ba) {
		return appendReplyError(b, id, incarnation, classBadArgs, ba.Error(), "", false)
	}
	return appendReplyError(b, id, incarnation, classFunc, err.Error(), sentinelName(err), false)
}

// trimmedStack is the stack of a recovered panic from the panicking frame
// down to the registered function (the runtime's and rpc's frames cut).
func trimmedStack() string {
	pcs := make([]uintptr, 64)
	n := runtime.Callers(3, pcs) // skip Callers, trimmedStack, the deferred func
	frames := runtime.CallersFrames(pcs[:n])
	var b strings.Builder
	seenPanic := false
	for {
		fr, more := frames.Next()
		switch {
		case strings.HasPrefix(fr.Function, "runtime."):
			seenPanic = true
		case strings.HasPrefix(fr.Function, "github.com/nodal-go/nodal/rpc.Register") && strings.Contains(fr.Function, ".func"):
			more = false // the invoke wrapper: the function's caller
		case seenPanic || b.Len() > 0:
			fmt.Fprintf(&b, "%s\n\t%s:%d\n", fr.Function, fr.File, fr.Line)
		}
		if !more {
			break
		}
	}
	return b.String()
}
