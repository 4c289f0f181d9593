package rpc

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/internal/spin"
)

// Call applies the function registered as fn on node to args and returns
// its result (erpc:call). node may be this node. ctx bounds the whole call;
// without a deadline, Config.DefaultTimeout applies. Every error is a
// *CallError; see the package doc for the classes.
func (r *RPC) Call(ctx context.Context, node, fn string, args any) (any, error) {
	ctx, tc := r.defaultDeadline(ctx)
	defer endDeadline(tc)
	id, err := r.send(ctx, node, fn, args, 0, nil)
	if err != nil {
		return nil, err
	}
	return r.receiveOwn(ctx, id)
}

// CallAs is Call with the result asserted to R; a result of another type
// is a *CallError wrapping nodal.ErrCodec.
func CallAs[R any](ctx context.Context, r *RPC, node, fn string, args any) (R, error) {
	var zero R
	v, err := r.Call(ctx, node, fn, args)
	if err != nil {
		return zero, err
	}
	if v == nil {
		return zero, nil
	}
	res, ok := v.(R)
	if !ok {
		return zero, &CallError{Node: node, Func: fn, Err: fmt.Errorf("%w: result is %T, not %T", nodal.ErrCodec, v, zero)}
	}
	return res, nil
}

// CallJSON is Call with the arguments and the result as JSON: the callee
// decodes args into the function's argument type with encoding/json and
// encodes its result the same way (what `node ctl rpc` uses). Empty args
// are the zero argument.
func (r *RPC) CallJSON(ctx context.Context, node, fn string, args json.RawMessage) (json.RawMessage, error) {
	ctx, tc := r.defaultDeadline(ctx)
	defer endDeadline(tc)
	id, err := r.send(ctx, node, fn, []byte(args), flagJSON, nil)
	if err != nil {
		return nil, err
	}
	v, err := r.receiveOwn(ctx, id)
	if err != nil {
		return nil, err
	}
	return json.RawMessage(v.([]byte)), nil
}

// Cast applies fn on node to args and returns once the request is sent
// (erpc:cast): no result, and no error but for arguments that cannot be
// encoded (ErrBadArgs) and a stopped service; anything else, an unreachable
// node included, is silently ignored, as in Erlang.
func (r *RPC) Cast(ctx context.Context, node, fn string, args any) error {
	if r.stopped.Load() {
		return &CallError{Node: node, Func: fn, Err: ErrStopped}
	}
	b, err := r.encode(nil, node, fn, kindCast, 0, flagsNone, args, 0)
	if err != nil {
		return err
	}
	r.stats.casts.Add(1)
	if node != r.self && (nodal.ValidateNodeName(node) != nil || !r.node(node).b.ready()) {
		return nil // unreachable: ignored
	}
	_ = r.n.SendService(ctx, node, ServiceName, b)
	return nil
}

const flagsNone byte = 0

// encode appends a request frame to dst; an argument that does not encode
// is a *CallError wrapping ErrBadArgs.
func (r *RPC) encode(dst []byte, node, fn string, kind byte, id uint64, flags byte, args any, timeout time.Duration) ([]byte, error) {
	b := appendRequestHeader(dst, kind, id, flags, timeout, fn)
	if flags&flagJSON != 0 {
		return append(b, args.([]byte)...), nil
	}
	b, err := r.codec.AppendValue(b, args)
	if err != nil {
		return nil, &CallError{Node: node, Func: fn, Err: fmt.Errorf("%w: %w", ErrBadArgs, err)}
	}
	return b, nil
}

// requestBufs recycles the buffers requests are encoded in.
var requestBufs = sync.Pool{New: func() any { b := make([]byte, 0, 128); return &b }}

// maxPooledRequest keeps large one-off buffers out of the pool.
const maxPooledRequest = 64 << 10

// ReqID identifies an async request (erpc's request id). It is valid until
// its response is received or it is abandoned.
type ReqID struct {
	id   uint64
	node string
	fn   string
}

// Node returns the node the request went to.
func (id ReqID) Node() string { return id.node }

// send sends a call and registers it as pending, in grp when not nil.
func (r *RPC) send(ctx context.Context, node, fn string, args any, flags byte, grp *group) (ReqID, error) {
	id := ReqID{id: r.nextID.Add(1), node: node, fn: fn}
	fail := func(err error) (ReqID, error) { return ReqID{}, &CallError{Node: node, Func: fn, Err: err} }
	if r.stopped.Load() {
		return fail(ErrStopped)
	}
	if _, known := r.breakers.Load(node); !known && node != r.self {
		// A name of the table is valid: only valid names get an entry.
		if err := nodal.ValidateNodeName(node); err != nil {
			return fail(fmt.Errorf("%w: %w", ErrNoConnection, err))
		}
	}
	bp := requestBufs.Get().(*[]byte)
	var b []byte
	var err error
	if grp != nil && grp.args != nil { // encoded once for every node
		b = append(appendRequestHeader((*bp)[:0], kindCall, id.id, flags, remaining(ctx), fn), grp.args...)
	} else {
		b, err = r.encode((*bp)[:0], node, fn, kindCall, id.id, flags, args, remaining(ctx))
	}
	defer func() { // SendService copies the frame
		if cap(b) <= maxPooledRequest {
			*bp = b[:0]
			requestBufs.Put(bp)
		}
	}()
	if err != nil {
		return ReqID{}, err
	}
	var ns *nodeState
	var downs uint64
	if node != r.self {
		ns = r.node(node)
		downs = ns.downs.Load()
		if !ns.b.ready() {
			r.stats.failFast.Add(1)
			return fail(fmt.Errorf("%w: %w: %s", ErrNoConnection, ErrNodeDown, node))
		}
		select {
		case ns.slots <- struct{}{}:
		default: // all taken: wait for one
			select {
			case ns.slots <- struct{}{}:
			case <-ctx.Done():
				return fail(timeoutError(ctx.Err()))
			}
		}
	}
	if ns != nil && !ns.connected.Load() {
		// Connect first: a frame queued for a connection that never comes
		// would be dropped later without a word, and the call would wait
		// for its whole deadline.
		cctx, cancel := context.WithTimeout(ctx, nodal.AutoConnectTimeout)
		err := r.n.Connect(cctx, node)
		cancel()
		if err != nil {
			<-ns.slots
			ns.b.fail()
			if !errors.Is(err, ErrNoConnection) {
				err = fmt.Errorf("%w: %s: %w", ErrNoConnection, node, err)
			}
			return fail(err)
		}
	}
	p := r.newPending(id.id, node, fn, flags&flagJSON != 0, grp)
	if ns != nil {
		p.slots = ns.slots
	}
	r.pending.add(p)
	r.stats.calls.Add(1)
	if err := r.n.SendService(ctx, node, ServiceName, b); err != nil {
		r.pending.remove(id.id) // no reply can come: the frame did not go out
		p.release()
		switch {
		case errors.Is(err, nodal.ErrNoConnection):
			if ns != nil {
				ns.b.fail()
			}
			return fail(err)
		case ctx.Err() != nil:
			return fail(timeoutError(ctx.Err()))
		}
		return fail(err)
	}
	if ns != nil && ns.downs.Load() != downs {
		// The node went down while this call was set up: NodeDown may
		// have failed the waiting calls before this one was among them,
		// and the frame may wait for a connection that never comes.
		r.pending.fail(id.id, fmt.Errorf("%w: %s went down (the function may or may not have been applied)", ErrNoConnection, node))
	}
	return id, nil
}

// release frees the call's outbound slot, once.
func (p *pending) release() {
	if p.slots != nil && p.freed.CompareAndSwap(false, true) {
		<-p.slots
	}
}

// receive waits for id's reply, bounded by ctx. On ctx done it abandons id
// when abandon is set (the late reply is then dropped), or returns
// errNoResponse and keeps id waiting.
func (r *RPC) receive(ctx context.Context, id ReqID, abandon bool) (any, error) {
	v, _, err := r.await(ctx, id, abandon)
	return v, err
}

// receiveOwn is receive that abandons, for an id that never left this
// package (Call, CallJSON, Multicall): nobody else can wait for it, so its
// pending, out of the table once the wait is over, is recycled.
func (r *RPC) receiveOwn(ctx context.Context, id ReqID) (any, error) {
	v, p, err := r.await(ctx, id, true)
	if p != nil {
		r.recycle(p)
	}
	return v, err
}

// await is receive; it also returns id's pending when this wait took it
// out of the table with its channel empty (no reply can reach it any more).
func (r *RPC) await(ctx context.Context, id ReqID, abandon bool) (any, *pending, error) {
	p, ok := r.pending.get(id.id)
	if !ok || p.inbox != nil {
		return nil, nil, &CallError{Node: id.node, Func: id.fn, Err: ErrNoRequest}
	}
	var out *pending // p, once this wait removed it and drained its channel
	if id.node != r.self && p.grp == nil && len(p.ch) == 0 && ctx.Err() == nil {
		// The reply comes from the network: spin for it before parking
		// (not for a check with a done ctx, WaitResponse's).
		spinFor(&p.w, p.ch)
		defer p.w.End() // before the caller recycles p
	}
	var t *time.Timer
	var ctxDone <-chan struct{}
	var fired <-chan time.Time
	if len(p.ch) == 0 { // no timer for a reply that is in
		ctxDone, t, fired = r.waitOn(ctx)
	}
	select {
	case <-p.ch:
		r.putTimer(t)
		rep := p.rep
		if _, removed, _ := r.pending.remove(id.id); removed {
			out = p
		}
		if rep.gaveUp() && deadlinePassed(ctx) {
			// The function gave up because this caller's deadline passed:
			// that is this call's timeout, whichever came first here.
			// (ctx's own timer may not have fired yet: its Err is nil.)
			p.release()
			return nil, out, &CallError{Node: id.node, Func: id.fn, Err: timeoutError(cmp.Or(ctx.Err(), context.DeadlineExceeded))}
		}
		v, err := r.result(p, rep)
		return v, out, err
	case <-ctxDone:
	case <-fired:
	}
	r.putTimer(t)
	if !abandon {
		return nil, nil, errNoResponse
	}
	_, removed, done := r.pending.remove(id.id)
	if removed {
		out = p
	}
	if done {
		// The reply came meanwhile; if it is the function giving up on
		// this deadline, it is still this call's timeout.
		<-p.ch
		if rep := p.rep; !rep.gaveUp() {
			v, err := r.result(p, rep)
			return v, out, err
		}
	}
	p.release()
	return nil, out, &CallError{Node: id.node, Func: id.fn, Err: timeoutError(ctx.Err())}
}

// spinFor spins w (internal/spin) for ch to hold a signal, for a wait
// whose signal comes from another node; the waiter ends w's wait (End)
// once it is over.
func spinFor(w *spin.Waiter, ch chan struct{}) {
	w.Spin(func() bool { return len(ch) != 0 })
}

// newPending returns a pending call, a recycled one when there is one.
// (The pool is r's own: a channel made in a testing/synctest bubble must
// stay in it, and a node lives in one bubble.)
func (r *RPC) newPending(id uint64, node, fn string, json bool, grp *group) *pending {
	p, _ := r.pendings.Get().(*pending)
	if p == nil {
		p = &pending{ch: make(chan struct{}, 1)}
	}
	p.id, p.node, p.fn, p.json, p.grp = id, node, fn, json, grp
	if grp != nil && grp.w == nil {
		grp.w = &p.w // set before any reply can come: p is not sent yet
	}
	return p
}

// recycle puts p, out of the table and with its slot released, back for
// newPending. No reply can reach it (it is out of the table) and its
// channel is empty.
func (r *RPC) recycle(p *pending) {
	if len(p.ch) != 0 {
		return // not expected; such a p is left to the garbage collector
	}
	ch, fails, skip := p.ch, p.w.Fails, p.w.Skip
	*p = pending{ch: ch}
	p.w.Fails, p.w.Skip = fails, skip // the backoff goes on with the next call
	r.pendings.Put(p)
}

var errNoResponse = errors.New("rpc: no response yet")

// result turns a reply into the call's result or error, and tells the
// node's breaker.
func (r *RPC) result(p *pending, rep reply) (any, error) {
	p.release()
	if rep.err != nil {
		return nil, &CallError{Node: p.node, Func: p.fn, Err: rep.err}
	}
	if p.node != r.self {
		if ns := r.node(p.node); ns.b.tripped() {
			ns.b.success()
		}
	}
	if rep.class != classOK {
		return nil, &CallError{Node: p.node, Func: p.fn, Err: decodeReplyError(rep.class, rep.payload)}
	}
	if p.json {
		return rep.payload, nil
	}
	v, err := r.codec.Unmarshal(rep.payload)
	if err != nil {
		return nil, &CallError{Node: p.node, Func: p.fn, Err: fmt.Errorf("%w: result: %w", ErrBadFrame, err)}
	}
	return v, nil
}

// SendRequest sends an async call of fn on node and returns its id at once
// (erpc:send_request); ctx bounds the send only. Get the result with
// ReceiveResponse or WaitResponse, or add the id to a Requests collection.
// An id that is never received stays until its node goes down or the
// service stops: receive or abandon every id.
func (r *RPC) SendRequest(ctx context.Context, node, fn string, args any) (ReqID, error) {
	return r.send(ctx, node, fn, args, 0, nil)
}

// ReceiveResponse waits for id's result (erpc:receive_response), bounded
// by ctx (Config.DefaultTimeout without a deadline). When ctx ends first the
// request is abandoned: the error wraps ErrTimeout (or ctx's error), a late
// reply is dropped, and id is no longer valid.
func (r *RPC) ReceiveResponse(ctx context.Context, id ReqID) (any, error) {
	ctx, tc := r.defaultDeadline(ctx)
	defer endDeadline(tc)
	return r.receive(ctx, id, true)
}

// WaitResponse waits for id's result like ReceiveResponse, but when ctx ends
// first it returns ok false and keeps the request: waiting again is valid
// (erpc:wait_response's no_response). A done ctx checks without waiting
// (erpc:check_response).
func (r *RPC) WaitResponse(ctx context.Context, id ReqID) (result any, ok bool, err error) {
	ctx, tc := r.defaultDeadline(ctx)
	defer endDeadline(tc)
	v, err := r.receive(ctx, id, false)
	if errors.Is(err, errNoResponse) {
		return nil, false, nil
	}
	return v, true, err
}

// Abandon forgets id: its reply, if one comes, is dropped.
func (r *RPC) Abandon(id ReqID) {
	if p, ok, _ := r.pending.remove(id.id); ok {
		p.release()
	}
}

// Result is one node's outcome in Multicall and Broadcast.
type Result struct {
	Node  string
	Value any
	Err   error // a *CallError, nil on success
}

// Multicall calls fn with args on every node of nodes at once and waits for
// all, bounded by one ctx (erpc:multicall): one Result per node in the
// order of nodes, and the nodes whose call failed for want of a reply (no
// connection, timeout, stop: the Erlang rpc:multicall BadNodes); errors the
// function itself returned are in the results only. Arguments that do not
// encode fail the whole call before anything is sent.
func (r *RPC) Multicall(ctx context.Context, nodes []string, fn string, args any) ([]Result, []string, error) {
	bp := requestBufs.Get().(*[]byte)
	enc, err := r.codec.AppendValue((*bp)[:0], args)
	if err != nil {
		requestBufs.Put(bp)
		return nil, nil, &CallError{Func: fn, Err: fmt.Errorf("%w: %w", ErrBadArgs, err)}
	}
	ctx, tc := r.defaultDeadline(ctx)
	defer endDeadline(tc)
	out := make([]Result, len(nodes))
	var few [8]ReqID
	ids := few[:0]
	if len(nodes) > len(few) {
		ids = make([]ReqID, 0, len(nodes))
	}
	// Every request goes out before any reply is waited for, and the
	// caller wakes once, when the last reply is in (or ctx ends).
	grp := r.newGroup(len(nodes), enc)
	remote := false
	for i, node := range nodes {
		out[i].Node = node
		var id ReqID
		id, out[i].Err = r.send(ctx, node, fn, nil, 0, grp)
		ids = append(ids, id)
		if out[i].Err != nil {
			grp.done() // no reply will come for it
		} else if node != r.self {
			remote = true
		}
	}
	grp.args = nil // every request is sent (copied)
	if cap(enc) <= maxPooledRequest {
		*bp = enc[:0]
		requestBufs.Put(bp)
	}
	w := grp.w
	if remote && w != nil && grp.left.Load() != 0 {
		// Replies come from the network: spin for the last before parking.
		w.Spin(func() bool { return grp.left.Load() == 0 })
	}
	if grp.left.Load() != 0 {
		done, t, fired := r.waitOn(ctx)
		select {
		case <-grp.all:
		case <-done:
		case <-fired:
		}
		r.putTimer(t)
	}
	if w != nil {
		w.End() // before receiveOwn recycles the call w belongs to
	}
	var bad []string
	for i := range nodes {
		if out[i].Err == nil {
			out[i].Value, out[i].Err = r.receiveOwn(ctx, ids[i])
		}
		if isBadNode(out[i].Err) {
			bad = append(bad, nodes[i])
		}
	}
	// Every call is out of the table now (receiveOwn took it out, or
	// its send failed): no reply can reach grp any more.
	r.recycleGroup(grp)
	return out, bad, nil
}

func isBadNode(err error) bool {
	return errors.Is(err, ErrNoConnection) || errors.Is(err, ErrTimeout) || errors.Is(err, ErrStopped) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// Broadcast is Multicall to this node and every connected node that runs
// the rpc service (erpc:multicall([node() | nodes()], ...)), in Nodes'
// order.
func (r *RPC) Broadcast(ctx context.Context, fn string, args any) ([]Result, []string, error) {
	return r.Multicall(ctx, r.Nodes(), fn, args)
}

// Requests is a collection of async requests, each with a label (OTP 25's
// request id collections: erpc:reqids_new, reqids_add, receive_response/3,
// wait_response/3). It belongs to one goroutine at a time.
type Requests[L any] struct {
	r      *RPC
	inbox  *inbox
	ids    map[uint64]*pending
	remote int // requests in ids to other nodes: a wait for them spins
}

// Response is one response of a Requests collection.
type Response[L any] struct {
	Label L
	Node  string
	Value any
	Err   error // the call's *CallError, nil on success
}

// NewRequests returns an empty collection of r's requests.
func NewRequests[L any](r *RPC) *Requests[L] {
	return &Requests[L]{r: r, inbox: newInbox(), ids: map[uint64]*pending{}}
}

// Send sends an async request and adds it with label.
func (c *Requests[L]) Send(ctx context.Context, node, fn string, args any, label L) error {
	id, err := c.r.SendRequest(ctx, node, fn, args)
	if err != nil {
		return err
	}
	return c.Add(id, label)
}

// Add moves the request id into the collection with label: from now on only
// the collection receives it. An id that is not waiting (received,
// abandoned, or of another collection) is an error wrapping ErrNoRequest.
func (c *Requests[L]) Add(id ReqID, label L) error {
	s := c.r.pending.shard(id.id)
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.m[id.id]
	if !ok || p.inbox != nil {
		return &CallError{Node: id.node, Func: id.fn, Err: ErrNoRequest}
	}
	p.inbox, p.label = c.inbox, label
	c.ids[id.id] = p
	if p.node != c.r.self {
		c.remote++
	}
	if p.done { // the reply is in its own channel already: take it along
		delete(s.m, id.id)
		<-p.ch
		c.inbox.push(p, p.rep)
	}
	return nil
}

// Len returns how many requests the collection holds.
func (c *Requests[L]) Len() int { return len(c.ids) }

// Receive waits for the next response of any request in the collection
// and removes that request, bounded by ctx (Config.DefaultTimeout without
// a deadline). When ctx ends first, every request of the collection is
// abandoned and the error wraps ErrTimeout. An empty collection gives
// ErrNoRequest.
func (c *Requests[L]) Receive(ctx context.Context) (Response[L], error) {
	resp, ok, err := c.wait(ctx)
	if err == nil && !ok {
		for id, p := range c.ids {
			c.r.pending.remove(id)
			p.release()
		}
		c.ids = map[uint64]*pending{}
		c.remote = 0
		c.inbox.reset()
		// ctx without a deadline has none of its own to tell: the
		// default timeout ended the wait.
		return resp, timeoutError(cmp.Or(ctx.Err(), context.DeadlineExceeded))
	}
	return resp, err
}

// Wait is Receive that keeps the requests when ctx ends first: it returns
// ok false and waiting again is valid. A done ctx checks without waiting.
func (c *Requests[L]) Wait(ctx context.Context) (Response[L], bool, error) {
	return c.wait(ctx)
}

func (c *Requests[L]) wait(ctx context.Context) (Response[L], bool, error) {
	if len(c.ids) == 0 {
		return Response[L]{}, false, ErrNoRequest
	}
	ctx, tc := c.r.defaultDeadline(ctx)
	defer endDeadline(tc)
	spun := false
	defer c.inbox.w.End()
	var t *time.Timer
	var done <-chan struct{}
	var fired <-chan time.Time
	defer func() { c.r.putTimer(t) }()
	for {
		if p, rep, ok := c.inbox.pop(); ok {
			return c.response(p, rep), true, nil
		}
		if !spun && c.remote > 0 && ctx.Err() == nil {
			select {
			case <-c.inbox.signal: // left by a reply taken already, or one just pushed
				continue
			default:
			}
			// A reply comes from the network: spin for it before parking
			// (not for a check with a done ctx), once per wait.
			spun = true
			spinFor(&c.inbox.w, c.inbox.signal)
		}
		if done == nil && fired == nil {
			done, t, fired = c.r.waitOn(ctx)
		}
		select {
		case <-c.inbox.signal:
			continue
		case <-done:
		case <-fired:
		}
		if p, rep, ok := c.inbox.pop(); ok { // a last look
			return c.response(p, rep), true, nil
		}
		return Response[L]{}, false, nil
	}
}

// response takes p, whose reply rep the inbox gave, out of the collection.
func (c *Requests[L]) response(p *pending, rep reply) Response[L] {
	delete(c.ids, p.id)
	if p.node != c.r.self {
		c.remote--
	}
	v, err := c.r.result(p, rep)
	label, _ := p.label.(L)
	return Response[L]{Label: label, Node: p.node, Value: v, Err: err}
}

// inbox collects the replies of a collection's requests.
type inbox struct {
	mu     sync.Mutex
	q      []inboxItem
	signal chan struct{} // capacity 1: something was pushed
	w      spin.Waiter   // the spin of the collection's wait (internal/spin)
}

type inboxItem struct {
	p   *pending
	rep reply
}

func newInbox() *inbox { return &inbox{signal: make(chan struct{}, 1)} }

func (b *inbox) push(p *pending, rep reply) {
	b.mu.Lock()
	b.q = append(b.q, inboxItem{p, rep})
	b.mu.Unlock()
	b.w.Handed()
	select {
	case b.signal <- struct{}{}:
	default:
	}
}

func (b *inbox) pop() (*pending, reply, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.q) == 0 {
		return nil, reply{}, false
	}
	it := b.q[0]
	b.q = b.q[1:]
	return it.p, it.rep, true
}

func (b *inbox) reset() {
	b.mu.Lock()
	b.q = nil
	b.mu.Unlock()
}

func deadlinePassed(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ctx.Err() != nil || ok && !time.Now().Before(dl)
}
