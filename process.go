package nodal

import (
	"context"
	"errors"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/nodal-go/nodal/internal/spin"
)

// Func is the body of a goroutine-style process. The process ends when Func
// returns: nil means reason normal, an error is the exit reason. A panic
// becomes a *PanicError reason and never crashes the node. A process killed
// before its goroutine starts never runs its Func, as an Erlang process
// killed before it is scheduled runs no code; its monitors and links fire
// all the same. So code that must run when a process ends (closing a
// channel someone waits on) belongs with a monitor of it, not in a defer
// inside its Func.
type Func func(p *Process) error

// Actor is a handler-style process: it keeps no goroutine while idle. The
// runtime runs it on a short-lived goroutine only while it has messages, one
// message at a time, so its methods never run concurrently with each other.
//
// Init runs once, on the spawner's goroutine, before Spawn returns. Returning
// a non-nil error from Init or HandleMessage ends the process with that
// reason (return ReasonNormal to stop normally). A handler may block, for
// example in Receive or Call; the process is then busy, like a gen_server in
// a callback.
//
// An Actor may also implement CallHandler (calls are then answered for it)
// and Terminator (told when it ends by itself).
type Actor interface {
	Init(p *Process) error
	HandleMessage(p *Process, msg any) error
}

// Terminator is implemented by an Actor that wants to clean up when it ends
// by itself: Init, HandleMessage or HandleCall returned an error or panicked,
// or it called Exit. As with gen_server's terminate, it is not called when
// the actor is killed by an exit signal it does not trap. Terminate runs on
// the actor's goroutine before its links and monitors fire.
type Terminator interface {
	Terminate(p *Process, reason error)
}

// CallHandler is implemented by an Actor that answers Calls: a CallRequest
// is passed to HandleCall instead of HandleMessage, and the reply is sent
// back to the caller. HandleCall may return ErrNoReply to reply later (from
// another message, or from another process given the From) with
// Process.Reply. Any other non-nil error ends the process with that reason
// instead (the caller's Call then fails with a *CallError).
type CallHandler interface {
	HandleCall(p *Process, from From, req any) (reply any, err error)
}

// ActorFunc adapts a function to an Actor whose Init does nothing.
type ActorFunc func(p *Process, msg any) error

// Init implements Actor.
func (f ActorFunc) Init(*Process) error { return nil }

// HandleMessage implements Actor.
func (f ActorFunc) HandleMessage(p *Process, msg any) error { return f(p, msg) }

type procKind uint8

const (
	kindFunc  procKind = iota // goroutine style
	kindActor                 // handler style
	kindBare                  // a mailbox driven by a caller's goroutine (Node.Call)
)

// Process is a running process as seen from its own code: the *Process handed
// to a Func or an Actor. Its methods must be called only from the process's
// own goroutine (the Func's goroutine, or the Actor's handler while it runs);
// to reach a process from elsewhere, use its Pid.
type Process struct {
	node  *Node
	pid   Pid
	fn    Func
	actor Actor
	kind  procKind

	// Small fields together; guarded by mu unless noted.
	parked    bool         // the owner waits on wake for a message
	scheduled bool         // actor: an activation is running or about to run
	dead      bool         //
	exiting   bool         // actor: running Terminate
	trapExit  bool         //
	cycleIn   uint8        // messages taken from in since the mailbox was last caught up, up to 255
	gone      atomic.Bool  // set once the process is dead (lock-free check)
	nlocal    atomic.Int32 // count, for ProcessInfo (owner writes)

	mu sync.Mutex
	// Guarded by mu.
	in          []any     // messages delivered since the owner last took them
	nin         int       // messages in in and ovf.full
	ovf         *overflow // set once the mailbox has held more than a chunk
	reason      error
	links       smallMap[Pid, struct{}]
	monitors    smallMap[Ref, Pid] // monitors this process holds: ref -> target
	monitoredBy smallMap[Ref, Pid] // monitors on this process: ref -> watcher
	groupLeader *Pid               // shared with the processes that inherit it
	wake        chan struct{}      // created on first park, never replaced
	// ext holds what most processes never use. Only the owner (or the
	// spawner, before the process is visible) sets it, under mu; the owner
	// may read it without mu.
	ext *procExt

	// Owned by the process's goroutine.
	local [][]any // chunks taken from in, oldest first; local[0][head:] is next
	head  int
	count int // messages in local

	// sendTo caches the last local process this one sent to, so a stream of
	// sends skips the process-table lookup. Pids are never reused within an
	// incarnation, so the cached process is the only one the pid can name;
	// once it is dead, deliver drops the message exactly as a lookup miss
	// would.
	sendTo *Process
	// sendOut is sendTo's counterpart for a pid of another node: what a
	// stream of sends to it reuses (dist.sendFrom).
	sendOut *remoteDest

	// The wait's spin (spin.go). netIn is set by the distribution layer
	// when it delivers a message or signal; the owner takes it.
	netIn    atomic.Bool
	spinW    spin.Waiter // the spin's backoff; spinning now: a lone frame's reader yields it the CPU (dist.yieldToSpinner)
	spinCall bool        // owner: waiting for a remote call's reply
	sentOut  bool        // owner: sent to another node since the last wait
}

// overflow holds the chunks of a mailbox that outgrew one chunk. Guarded by
// Process.mu.
type overflow struct {
	full  [][]any // full chunks delivered before Process.in
	spare []any   // a drained chunk for the senders to reuse
	free  [][]any // full-size chunks the owner drained, for the senders (Process.recycleChunk)
	peak  int     // the most chunks the owner saw in the mailbox (Process.recycleChunk)
}

// procExt holds the rarely used parts of a process, so an idle process stays
// small.
type procExt struct {
	name        string             // registered name; guarded by mu
	ctx         context.Context    // guarded by mu
	cancel      context.CancelFunc // guarded by mu
	pendingExit error              // actor: reason given to Exit; owner only
	drained     []any              // a drained chunk, reused at the next refill; owner only
}

// extLocked returns p.ext, creating it; p.mu must be held by the owner (or
// the spawner before the process is visible).
func (p *Process) extLocked() *procExt {
	if p.ext == nil {
		p.ext = new(procExt)
	}
	return p.ext
}

// extOwner returns p.ext, creating it; only the owner calls it, without p.mu.
func (p *Process) extOwner() *procExt {
	if p.ext == nil {
		p.mu.Lock()
		p.ext = new(procExt)
		p.mu.Unlock()
	}
	return p.ext
}

// nameLocked returns the registered name; p.mu must be held.
func (p *Process) nameLocked() string {
	if p.ext == nil {
		return ""
	}
	return p.ext.name
}

func (p *Process) pendingExit() error {
	if p.ext == nil {
		return nil
	}
	return p.ext.pendingExit
}

// Self returns the process's pid.
func (p *Process) Self() Pid { return p.pid }

// Node returns the node the process runs on.
func (p *Process) Node() *Node { return p.node }

// Context returns a context cancelled when the process exits or is killed
// (Node.Stop ends every process, so it is cancelled then too). Long blocking
// work in a Func should select on it.
func (p *Process) Context() context.Context {
	p.mu.Lock()
	defer p.mu.Unlock()
	x := p.extLocked()
	if x.ctx == nil {
		// Not derived from the node's ctx: a child of Background registers
		// with no parent, which keeps spawning cheap; terminate cancels it.
		x.ctx, x.cancel = context.WithCancel(context.Background())
		if p.dead {
			x.cancel()
		}
	}
	return x.ctx
}

// Send sends msg to the process to. A message to a dead pid, or to a pid on
// an unreachable node, is dropped, as in Erlang; that is not an error.
// Messages from one process to another arrive in the order they were sent.
// Once the sender itself has exited (it was killed) its sends are dropped.
//
// A local send never blocks and never fails. A send to another node fails
// at the sender, with an error wrapping ErrCodec, when the codec cannot
// encode msg (its type is not registered, see RegisterType); it blocks only
// while the connection's bounded outbound queue is full (back-pressure on a
// busy link).
func (p *Process) Send(to Pid, msg any) error {
	if p.gone.Load() {
		return nil
	}
	if c := p.sendTo; c != nil && c.pid == to {
		if !c.deliver(msg) {
			p.sendTo = nil // dead: let it be collected
		}
		return nil
	}
	n := p.node
	if n.isLocal(to) {
		if c := n.procs.get(to.ID); c != nil && c.deliver(msg) {
			p.sendTo = c
		}
		return nil
	}
	p.sentOut = true
	if d, ok := n.remote.(*dist); ok && to.Node != n.name {
		return d.sendFrom(p, to, msg)
	}
	return n.send(signal{kind: sigMessage, from: p.pid, to: to, msg: msg})
}

// send routes a message; for a pid of another node it returns the
// encoding error, if any.
func (n *Node) send(s signal) error {
	if r := n.remote; r != nil && s.to.Node != n.name {
		return r.route(s)
	}
	n.route(s)
	return nil
}

// SendName sends msg to the local process registered as name. It returns an
// error wrapping ErrNotRegistered when no process has that name, and an
// *ExitError once the sender has exited.
func (p *Process) SendName(name string, msg any) error {
	if err := p.exited(); err != nil {
		return err
	}
	return p.node.sendName(p.pid, name, msg)
}

// exited returns an *ExitError if the process is dead.
func (p *Process) exited() error {
	if !p.gone.Load() {
		return nil
	}
	p.mu.Lock()
	r := p.reason
	p.mu.Unlock()
	return &ExitError{Pid: p.pid, Reason: r}
}

// TrapExit sets whether exit signals (other than kill) arrive as Exit
// messages instead of ending the process, and returns the previous setting
// (process_flag(trap_exit, On)).
func (p *Process) TrapExit(on bool) (previous bool) {
	p.mu.Lock()
	previous, p.trapExit = p.trapExit, on
	p.mu.Unlock()
	return previous
}

// Exit ends the calling process with reason (nil means normal). In a Func it
// does not return: it unwinds the goroutine (by panicking with an internal
// value the runtime recovers; do not recover it yourself). In an Actor it
// takes effect when the current handler returns.
func (p *Process) Exit(reason error) {
	reason = normalize(reason)
	switch p.kind {
	case kindFunc:
		panic(exitPanic{reason: reason})
	case kindActor:
		p.extOwner().pendingExit = reason
	default:
		p.node.terminate(p, reason)
	}
}

// SendExit sends an exit signal with reason to the process to
// (erlang:exit/2). ReasonKill kills unconditionally (the target's reason is
// then killed); ReasonNormal is ignored unless the target traps exits or is
// the caller itself; any other reason kills a non-trapping target and reaches
// a trapping one as an Exit message.
func (p *Process) SendExit(to Pid, reason error) {
	if p.gone.Load() {
		return
	}
	p.node.route(signal{kind: sigExit, from: p.pid, to: to, reason: normalize(reason)})
}

// GroupLeader returns the process's group leader (inherited from its
// spawner, or set with WithGroupLeader / SetGroupLeader).
func (p *Process) GroupLeader() Pid {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.groupLeader == nil {
		return Pid{}
	}
	return *p.groupLeader
}

// SetGroupLeader sets the process's group leader.
func (p *Process) SetGroupLeader(gl Pid) {
	p.mu.Lock()
	p.groupLeader = &gl
	p.mu.Unlock()
}

// errGoexit is the exit reason of a Func that called runtime.Goexit (for
// example through testing.T.FailNow).
var errGoexit = &PanicError{Value: "runtime.Goexit called in a process"}

// runFunc is the body of a Func process's goroutine.
func (n *Node) runFunc(p *Process) {
	if p.gone.Load() { // killed before it started (for example by its link)
		return
	}
	reason := error(errGoexit)
	defer func() { n.terminate(p, reason) }()
	reason = p.callFunc()
}

func (p *Process) callFunc() (reason error) {
	defer func() {
		if r := recover(); r != nil {
			reason = recoverReason(r)
		}
	}()
	return normalize(p.fn(p))
}

func recoverReason(r any) error {
	if e, ok := r.(exitPanic); ok {
		return e.reason
	}
	return &PanicError{Value: r, Stack: debug.Stack()}
}

// runActor is the body of an actor activation: it handles the messages in the
// mailbox one by one and returns when the mailbox is empty or the actor has
// ended.
func (n *Node) runActor(p *Process) {
	for !p.gone.Load() {
		m, ok := p.next()
		if !ok {
			return
		}
		if reason := p.handle(m); reason != nil {
			p.finish(reason)
			return
		}
	}
}

// handle runs the actor's handler for one message and returns the reason to
// end with, or nil to go on.
func (p *Process) handle(m any) (reason error) {
	defer func() {
		if r := recover(); r != nil {
			reason = recoverReason(r)
		}
	}()
	var err error
	if req, ok := m.(CallRequest); ok {
		if ch, ok := p.actor.(CallHandler); ok {
			var reply any
			reply, err = ch.HandleCall(p, req.From, req.Req)
			if err == nil {
				p.Reply(req.From, reply)
			} else if errors.Is(err, ErrNoReply) {
				err = nil
			}
		} else {
			err = p.actor.HandleMessage(p, m)
		}
	} else {
		err = p.actor.HandleMessage(p, m)
	}
	if err != nil {
		return err
	}
	return p.pendingExit()
}

// initActor runs Init on the caller's goroutine and returns the reason the
// actor ended with, or nil if it is running.
func (p *Process) initActor() (reason error) {
	defer func() {
		if r := recover(); r != nil {
			reason = recoverReason(r)
		}
	}()
	if err := p.actor.Init(p); err != nil {
		return err
	}
	return p.pendingExit()
}

// finish ends an actor that stopped by itself: Terminate, then exit.
func (p *Process) finish(reason error) {
	if t, ok := p.actor.(Terminator); ok && !p.gone.Load() {
		p.mu.Lock()
		p.exiting = true
		p.mu.Unlock()
		func() {
			defer func() {
				if r := recover(); r != nil {
					reason = recoverReason(r)
				}
			}()
			t.Terminate(p, reason)
		}()
	}
	p.node.terminate(p, reason)
}

// terminate makes p dead with reason, at once for everyone: it leaves the
// process table and its name, and its links and monitors fire. It reports
// false if p was already dead. It may run on any goroutine.
func (n *Node) terminate(p *Process, reason error) bool {
	var q signalQueue
	ok := n.terminateQ(p, reason, &q)
	n.drain(&q)
	return ok
}

func (n *Node) terminateQ(p *Process, reason error, q *signalQueue) bool {
	reason = normalize(reason)
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		return false
	}
	p.dead = true
	p.gone.Store(true)
	p.reason = reason
	links, monitors, monitoredBy := p.links, p.monitors, p.monitoredBy
	p.links, p.monitors, p.monitoredBy = smallMap[Pid, struct{}]{}, smallMap[Ref, Pid]{}, smallMap[Ref, Pid]{}
	p.in, p.ovf, p.nin = nil, nil, 0
	wake := p.parked
	p.parked = false
	var name string
	var cancel context.CancelFunc
	if x := p.ext; x != nil {
		name, cancel = x.name, x.cancel
		x.name = ""
	}
	p.mu.Unlock()
	if wake {
		p.signalWake()
	}
	if cancel != nil {
		cancel()
	}
	if name != "" {
		n.dropName(name, p)
	}
	left := n.procs.remove(p)
	if _, isPanic := reason.(*PanicError); isPanic {
		logCrash(p.pid, reason)
	}
	fanOut(p.pid, reason, links, monitors, monitoredBy, q)
	if left == 0 && n.stopping.Load() {
		select {
		case n.allGone <- struct{}{}:
		default:
		}
	}
	return true
}

// fanOut queues the signals a death sends: exit signals over links, the
// removal of the monitors the dead process held, and Downs to its watchers.
// It runs at the bottom of every exiting process's goroutine, whose stack
// starts small, so it fills the queue in place and keeps one map iterator per
// (non-inlined) function: a deeper frame here would make every short-lived
// process grow its stack.
func fanOut(from Pid, reason error, links smallMap[Pid, struct{}], monitors, monitoredBy smallMap[Ref, Pid], q *signalQueue) {
	if d := links.d; d != nil {
		if d.m == nil {
			for i := range d.s {
				s := q.add()
				s.kind, s.from, s.to, s.reason = sigLinkExit, from, d.s[i].k, reason
			}
		} else {
			fanLinks(from, reason, d.m, q)
		}
	}
	if d := monitors.d; d != nil {
		if d.m == nil {
			for i := range d.s {
				s := q.add()
				s.kind, s.from, s.to, s.ref = sigDemonitor, from, d.s[i].v, d.s[i].k
			}
		} else {
			fanDemonitors(from, d.m, q)
		}
	}
	if d := monitoredBy.d; d != nil {
		if d.m == nil {
			for i := range d.s {
				s := q.add()
				s.kind, s.from, s.to, s.ref, s.reason = sigDown, from, d.s[i].v, d.s[i].k, reason
				s.msg = boxDown(d.s[i].k, from, reason)
			}
		} else {
			fanDowns(from, reason, d.m, q)
		}
	}
}

//go:noinline
func fanLinks(from Pid, reason error, links map[Pid]struct{}, q *signalQueue) {
	for to := range links {
		s := q.add()
		s.kind, s.from, s.to, s.reason = sigLinkExit, from, to, reason
	}
}

//go:noinline
func fanDemonitors(from Pid, monitors map[Ref]Pid, q *signalQueue) {
	for ref, target := range monitors {
		s := q.add()
		s.kind, s.from, s.to, s.ref = sigDemonitor, from, target, ref
	}
}

//go:noinline
func fanDowns(from Pid, reason error, monitoredBy map[Ref]Pid, q *signalQueue) {
	for ref, watcher := range monitoredBy {
		s := q.add()
		s.kind, s.from, s.to, s.ref, s.reason = sigDown, from, watcher, ref, reason
		s.msg = boxDown(ref, from, reason)
	}
}

// boxDown makes the Down message as an interface value, keeping the
// temporary out of its caller's frame.
//
//go:noinline
func boxDown(ref Ref, pid Pid, reason error) any {
	return Down{Ref: ref, Pid: pid, Reason: reason}
}

//go:noinline
func logCrash(pid Pid, reason error) {
	log.Warnw("process crashed", "pid", pid.String(), "reason", reason.Error())
}
