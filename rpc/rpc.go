package rpc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	logging "github.com/ipfs/go-log/v2"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/internal/spin"
)

var log = logging.Logger("nodal/rpc")

// RPC is a node's rpc service: the functions it exposes and the calls it
// makes to other nodes' rpc services. Make one per node with New; its
// methods are safe for concurrent use.
type RPC struct {
	n     *nodal.Node
	cfg   Config
	codec *nodal.Codec
	self  string
	inc   uint64

	funcs atomic.Pointer[map[string]*function]
	fmu   sync.Mutex // serialises registration

	nextID   atomic.Uint64
	pending  pendingTable
	pendings sync.Pool // recycled *pending (receiveOwn)
	timers   sync.Pool // recycled *time.Timer (waitOn); r's own, as pendings
	groups   sync.Pool // recycled *group (Multicall)

	breakers sync.Map // callee node name (valid) -> *nodeState: breaker, outbound slots
	serving  sync.Map // caller node name -> *atomic.Int64: calls running here

	running callSet  // the call processes here (running or idle), for Stop
	idle    procPool // the idle ones
	active  activeCalls

	stopped  atomic.Bool
	stopOnce sync.Once
	stopErr  error

	stats struct {
		calls, casts, served, late, rejected, badFrames, failFast, procs atomic.Uint64
	}
}

var (
	_ nodal.ServiceStopper = (*service)(nil)
	_ nodal.MemberWatcher  = (*service)(nil)
)

// service is the RPC's Service adapter, so that the hook's methods stay
// off RPC's API.
type service struct{ r *RPC }

// New attaches the rpc service to n under ServiceName, with the built-in
// functions (unless cfg.NoBuiltins). Node.Stop stops it first; Stop stops
// it earlier. A node has at most one RPC.
func New(n *nodal.Node, cfg Config) (*RPC, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &RPC{
		n:     n,
		cfg:   cfg.withDefaults(),
		codec: n.Codec(),
		self:  n.Name(),
		inc:   n.Incarnation(),
	}
	r.funcs.Store(&map[string]*function{})
	r.pending.init()
	if err := registerBuiltins(r, !cfg.NoBuiltins); err != nil {
		return nil, err
	}
	if err := n.AttachService(ServiceName, &service{r}); err != nil {
		return nil, err
	}
	return r, nil
}

// Node returns the node r runs on.
func (r *RPC) Node() *nodal.Node { return r.n }

// Stats counts what an RPC did.
type Stats struct {
	Calls       uint64 // calls and async requests sent
	Casts       uint64 // casts sent
	Served      uint64 // calls and casts run here
	LateReplies uint64 // replies that came after their call gave up (dropped)
	Rejected    uint64 // requests refused here with ErrSystemLimit (casts dropped)
	BadFrames   uint64 // frames that could not be decoded (dropped)
	FailFast    uint64 // calls failed at once by an open breaker
	CallProcs   uint64 // call processes started here (idle ones run later calls)
}

// Stats returns the counters.
func (r *RPC) Stats() Stats {
	s := &r.stats
	return Stats{Calls: s.calls.Load(), Casts: s.casts.Load(), Served: s.served.Load(),
		LateReplies: s.late.Load(), Rejected: s.rejected.Load(), BadFrames: s.badFrames.Load(), FailFast: s.failFast.Load(),
		CallProcs: s.procs.Load()}
}

// Stop detaches the service, fails the calls still waiting for a reply
// with ErrStopped, ends the processes running calls here (their callers get
// a *KilledError with reason shutdown) and waits for them, bounded by ctx.
// It is idempotent; Node.Stop calls it first.
func (r *RPC) Stop(ctx context.Context) error {
	r.stopOnce.Do(func() {
		r.stopped.Store(true)
		r.n.DetachService(ServiceName)
		r.pending.failAll(func(string) bool { return true }, ErrStopped)
		r.running.each(func(pid nodal.Pid) { r.n.Exit(pid, nodal.ReasonShutdown) })
		done := r.active.idle()
		select {
		case <-done:
		case <-ctx.Done():
			r.stopErr = fmt.Errorf("rpc: stop: calls still running: %w", ctx.Err())
		}
	})
	return r.stopErr
}

// HandleFrame implements nodal.Service: requests start a call process,
// replies go to their waiting caller.
func (s *service) HandleFrame(from nodal.NodeRef, data []byte) {
	r := s.r
	if len(data) == 0 {
		r.badFrame(from, ErrBadFrame)
		return
	}
	if data[0] == kindReply {
		rep, err := decodeReply(data)
		if err != nil {
			r.badFrame(from, err)
			return
		}
		if rep.incarnation != r.inc || !r.pending.deliver(rep) {
			r.stats.late.Add(1)
		}
		return
	}
	req, err := decodeRequestIn(data, *r.funcs.Load())
	if err != nil {
		r.badFrame(from, err)
		return
	}
	r.serve(from, req)
}

func (r *RPC) badFrame(from nodal.NodeRef, err error) {
	if r.stats.badFrames.Add(1) == 1 {
		log.Warnw("malformed rpc frame dropped (logged once)", "from", from.Name, "err", err)
	}
}

// NodeUp implements nodal.Service: the node's breaker closes.
func (s *service) NodeUp(node nodal.NodeRef) {
	ns := s.r.node(node.Name)
	ns.connected.Store(true)
	ns.up()
}

// NodeDown implements nodal.Service: the calls out to the node fail with
// ErrNoConnection and its breaker opens.
func (s *service) NodeDown(node nodal.NodeRef, reason error) {
	r := s.r
	ns := r.node(node.Name)
	ns.connected.Store(false)
	ns.downs.Add(1)
	ns.down()
	err := fmt.Errorf("%w: %s (the function may or may not have been applied): %w", ErrNoConnection, node.Name, reason)
	r.pending.failAll(func(n string) bool { return n == node.Name }, err)
}

// MemberEvent implements nodal.MemberWatcher: a member that failed or left
// opens its breaker even without a connection; one that (re)joined closes it.
func (s *service) MemberEvent(ev nodal.MemberEvent) {
	if ev.Member.Name == s.r.self {
		return
	}
	switch {
	case ev.Kind == nodal.MemberJoined:
		s.r.node(ev.Member.Name).up()
	case errors.Is(ev.Reason, nodal.ErrNodeFailed), errors.Is(ev.Reason, nodal.ErrNodeLeft):
		s.r.node(ev.Member.Name).down()
	}
}

// Stop implements nodal.ServiceStopper.
func (s *service) Stop(ctx context.Context) error { return s.r.Stop(ctx) }

// Nodes returns this node and the connected nodes that run the rpc
// service, sorted: erpc's [node() | nodes()] for Broadcast and Pmap.
func (r *RPC) Nodes() []string {
	running := map[string]bool{}
	for _, m := range r.n.Members() {
		running[m.Name] = slices.Contains(m.Services, ServiceName)
	}
	out := []string{r.self}
	for _, node := range r.n.Nodes() {
		if running[node] {
			out = append(out, node)
		}
	}
	slices.Sort(out)
	return out
}

// pendingTable holds the calls waiting for a reply, sharded by id.
type pendingTable struct {
	shards [pendingShards]pendingShard
}

const pendingShards = 32

type pendingShard struct {
	mu sync.Mutex
	m  map[uint64]*pending
}

// pending is one call out. Exactly one reply reaches it: in rep, signalled
// on ch (capacity 1), where it waits in the table (done) until its caller
// takes it, or, once it belongs to a collection, in the collection's inbox.
// (A chan struct{} is one allocation; a chan reply, whose elements hold
// pointers, two.)
type pending struct {
	id    uint64
	node  string
	fn    string
	json  bool
	ch    chan struct{}
	rep   reply // set before ch is signalled; read after receiving from ch
	done  bool  // rep is set and ch signalled; guarded by the shard's lock
	inbox *inbox
	label any
	slots chan struct{} // the node's outbound slots, one of which this call holds
	freed atomic.Bool
	grp   *group // the Multicall it belongs to, if any
	// w is the spin of its caller's wait for the reply (internal/spin);
	// its backoff stays with p when p is recycled.
	w spin.Waiter
}

// group counts down the replies a Multicall waits for. Groups are
// recycled per RPC (its channel stays in the node's synctest bubble, as a
// pending's).
type group struct {
	left atomic.Int64
	all  chan struct{} // capacity 1: signalled when left reaches 0
	w    *spin.Waiter  // the collector's spin: its first call's (newPending sets it)
	args []byte        // the arguments, encoded once, while the requests are sent
}

func (r *RPC) newGroup(n int, args []byte) *group {
	g, _ := r.groups.Get().(*group)
	if g == nil {
		g = &group{all: make(chan struct{}, 1)}
	}
	g.left.Store(int64(n))
	g.args = args
	return g
}

// recycleGroup keeps g for the next Multicall; no call refers to it any
// more.
func (r *RPC) recycleGroup(g *group) {
	select {
	case <-g.all: // the last reply's signal, if the collector did not take it
	default:
	}
	g.w, g.args = nil, nil
	r.groups.Put(g)
}

// done counts one reply (or a request that never went out).
func (g *group) done() {
	if g.w != nil && g.left.Load() == 1 {
		g.w.Handed() // the last reply
	}
	if g.left.Add(-1) == 0 {
		g.all <- struct{}{} // capacity 1, signalled once: never blocks
	}
}

func (t *pendingTable) init() {
	for i := range t.shards {
		t.shards[i].m = map[uint64]*pending{}
	}
}

func (t *pendingTable) shard(id uint64) *pendingShard { return &t.shards[id%pendingShards] }

func (t *pendingTable) add(p *pending) {
	s := t.shard(p.id)
	s.mu.Lock()
	s.m[p.id] = p
	s.mu.Unlock()
}

// get returns id's call.
func (t *pendingTable) get(id uint64) (*pending, bool) {
	s := t.shard(id)
	s.mu.Lock()
	p, ok := s.m[id]
	s.mu.Unlock()
	return p, ok
}

// remove forgets id; it reports whether id was there and whether its
// reply is in its channel.
func (t *pendingTable) remove(id uint64) (p *pending, ok, done bool) {
	s := t.shard(id)
	s.mu.Lock()
	p, ok = s.m[id]
	if ok {
		done = p.done
		delete(s.m, id)
	}
	s.mu.Unlock()
	return p, ok, done
}

// deliver hands rep to its call; false if none waits for it.
func (t *pendingTable) deliver(rep reply) bool {
	s := t.shard(rep.id)
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.m[rep.id]
	if !ok || p.done {
		return false
	}
	p.put(s, rep)
	return true
}

// put delivers rep; the caller holds s's lock, so put and a move to a
// collection never race.
func (p *pending) put(s *pendingShard, rep reply) {
	if p.inbox != nil {
		delete(s.m, p.id)
		p.inbox.push(p, rep)
		return
	}
	p.done = true
	p.rep = rep
	if p.grp == nil {
		p.w.Handed()
	}
	p.ch <- struct{}{} // capacity 1, one reply only: never blocks
	if p.grp != nil {
		p.grp.done()
	}
}

// fail fails the call id with err if it still waits for its reply.
func (t *pendingTable) fail(id uint64, err error) {
	s := t.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.m[id]; ok && !p.done {
		p.put(s, reply{id: id, err: err})
	}
}

// failAll fails every waiting call whose node matches with err.
func (t *pendingTable) failAll(match func(node string) bool, err error) {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for id, p := range s.m {
			if !p.done && match(p.node) {
				p.put(s, reply{id: id, err: err})
			}
		}
		s.mu.Unlock()
	}
}

// nodeState is what a caller keeps per callee node.
type nodeState struct {
	b         breaker
	connected atomic.Bool   // between NodeUp and NodeDown
	downs     atomic.Uint64 // NodeDowns so far
	slots     chan struct{} // outbound calls in flight, bounded by MaxConcurrent
}

func (r *RPC) node(name string) *nodeState {
	if ns, ok := r.breakers.Load(name); ok {
		return ns.(*nodeState)
	}
	ns := &nodeState{slots: make(chan struct{}, r.cfg.MaxConcurrent)}
	ns.b.init()
	v, _ := r.breakers.LoadOrStore(name, ns)
	return v.(*nodeState)
}

func (ns *nodeState) up()   { ns.b.reset() }
func (ns *nodeState) down() { ns.b.trip() }

// BreakerOpen reports whether node's circuit breaker is open: node is known
// to be down, and calls to it fail fast with ErrNodeDown (but for one trial
// call now and then).
func (r *RPC) BreakerOpen(node string) bool {
	ns, ok := r.breakers.Load(node) // no entry for a node never called or seen
	return ok && ns.(*nodeState).b.tripped()
}

// defaultDeadline gives ctx the default timeout when it has no deadline:
// a *timeoutCtx, which makes no timer unless a wait asks for its Done; the
// waits for replies take a recycled timer instead (waitOn). End it with
// endDeadline (the *timeoutCtx is nil when ctx had a deadline).
func (r *RPC) defaultDeadline(ctx context.Context) (context.Context, *timeoutCtx) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, nil
	}
	c, _ := timeoutCtxs.Get().(*timeoutCtx)
	if c == nil {
		c = new(timeoutCtx)
	}
	c.Context, c.deadline = ctx, time.Now().Add(r.cfg.DefaultTimeout)
	return c, c
}

// endDeadline ends c (nil: nothing to end) once its call is over: its
// timer, if a wait made one, is stopped; one no wait armed is recycled.
func endDeadline(c *timeoutCtx) {
	if c == nil {
		return
	}
	if c.armed.Load() {
		// Its Done may have reached other goroutines (a connect): it is
		// left to the garbage collector.
		c.cancel()
		return
	}
	c.Context = nil
	timeoutCtxs.Put(c)
}

var timeoutCtxs sync.Pool // *timeoutCtx

// timeoutCtx is a ctx without a deadline given the default timeout
// (defaultDeadline) with no timer of its own: Deadline and Err tell it, and
// only a wait that asks for Done (a full outbound queue, a connect, all
// free slots taken) makes a context.WithDeadline then. The waits for
// replies ask waitOn instead, which takes a recycled timer: a call that
// gets its reply during its spin makes no timer at all.
type timeoutCtx struct {
	context.Context // the caller's, without a deadline
	deadline        time.Time

	armed  atomic.Bool
	mu     sync.Mutex
	dctx   context.Context // made by the first Done
	cancel context.CancelFunc
}

func (c *timeoutCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *timeoutCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dctx == nil {
		c.dctx, c.cancel = context.WithDeadline(c.Context, c.deadline)
		c.armed.Store(true)
	}
	return c.dctx.Done()
}

func (c *timeoutCtx) Err() error {
	if c.armed.Load() {
		c.mu.Lock()
		err := c.dctx.Err()
		c.mu.Unlock()
		if err != nil {
			return err
		}
	} else if err := c.Context.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// waitOn returns what a wait bounded by ctx selects on: ctx's Done, and,
// for a timeoutCtx no wait has armed, its parent's Done and a recycled
// timer that fires at its deadline; the waiter puts the timer back
// (putTimer) when the wait is over.
func (r *RPC) waitOn(ctx context.Context) (done <-chan struct{}, t *time.Timer, fired <-chan time.Time) {
	c, ok := ctx.(*timeoutCtx)
	if !ok || c.armed.Load() {
		return ctx.Done(), nil, nil
	}
	t, _ = r.timers.Get().(*time.Timer)
	if t == nil {
		t = time.NewTimer(time.Until(c.deadline))
	} else {
		t.Reset(time.Until(c.deadline))
	}
	return c.Context.Done(), t, t.C
}

// putTimer stops t (nil: none) and keeps it for the next waitOn.
func (r *RPC) putTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
		r.timers.Put(t)
	}
}

// remaining is what is left of ctx's deadline, sent with a request so the
// callee's function stops when the caller gives up.
func remaining(ctx context.Context) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return 0
	}
	return max(time.Until(dl), time.Nanosecond)
}

// activeCalls counts the call processes running here, so that Stop can wait
// for them (a WaitGroup cannot: calls start while Stop waits).
type activeCalls struct {
	mu   sync.Mutex
	n    int
	zero chan struct{} // closed when n drops to 0; nil while nobody waits
}

func (a *activeCalls) Add(d int) {
	a.mu.Lock()
	a.n += d
	if a.n == 0 && a.zero != nil {
		close(a.zero)
		a.zero = nil
	}
	a.mu.Unlock()
}

func (a *activeCalls) Done() { a.Add(-1) }

// idle returns a channel closed once no call runs.
func (a *activeCalls) idle() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n == 0 {
		c := make(chan struct{})
		close(c)
		return c
	}
	if a.zero == nil {
		a.zero = make(chan struct{})
	}
	return a.zero
}
