package nodal

// signalKind says what a signal asks of its target.
type signalKind uint8

const (
	sigMessage   signalKind = iota + 1 // msg into the mailbox
	sigReply                           // CallReply msg, delivered only while the caller waits (alias)
	sigLink                            // from links itself to to
	sigUnlink                          // from removes its link to to
	sigExit                            // explicit exit signal (erlang:exit/2), reason
	sigLinkExit                        // exit signal because the linked process from died, reason
	sigMonitor                         // from monitors to with ref
	sigDemonitor                       // from drops its monitor ref on to
	sigDown                            // the process from, monitored by to with ref, died with reason (msg: the Down, if already boxed)
	sigCall                            // sigMonitor then msg (a CallRequest): a Call's monitor and request in one signal
)

var signalKindNames = [...]string{
	sigMessage: "message", sigReply: "reply", sigLink: "link", sigUnlink: "unlink",
	sigExit: "exit", sigLinkExit: "link-exit", sigMonitor: "monitor",
	sigDemonitor: "demonitor", sigDown: "down", sigCall: "call",
}

func (k signalKind) String() string {
	if int(k) < len(signalKindNames) && signalKindNames[k] != "" {
		return signalKindNames[k]
	}
	return "unknown"
}

// signal is every interaction between two processes: a message, a link or
// unlink, an exit signal, a monitor or demonitor, a down notice, a call
// reply. All of them go through Node.route, the one routing point, which
// delivers to local pids and hands other pids to n.remote. Signals from one
// process to another are delivered in the order they were routed.
type signal struct {
	kind     signalKind
	from, to Pid
	ref      Ref
	msg      any
	reason   error
}

// signalQueue holds the follow-up signals a delivery produces (a death fans
// out into exit and down signals). Draining it iteratively keeps a long chain
// of linked processes from recursing.
type signalQueue struct {
	items []signal
	head  int
}

func (q *signalQueue) push(s signal) { q.items = append(q.items, s) }

// add appends a zero signal and returns it to be filled in.
func (q *signalQueue) add() *signal {
	q.items = append(q.items, signal{})
	return &q.items[len(q.items)-1]
}

// isLocal reports whether pid names a process of this very node start.
func (n *Node) isLocal(pid Pid) bool {
	return pid.Node == n.name && pid.Incarnation == n.incarnation
}

// route is the routing point. A pid of this node start is delivered locally;
// a pid of this node with another incarnation is dead (noproc); any other pid
// goes to n.remote, or, on a node without one, is on an unreachable node
// (noconnection).
func (n *Node) route(s signal) {
	if s.kind == sigMessage && n.isLocal(s.to) {
		// Fast path: a message produces no follow-up signals.
		if p := n.procs.get(s.to.ID); p != nil {
			p.deliver(s.msg)
		}
		return
	}
	n.routeAll(&s)
}

// routeAll routes s and every signal its delivery produces. The functions on
// this path take *signal and keep small frames: a process's goroutine runs
// it when it exits, and a deep, wide stack there would make every short-lived
// process grow its stack.
func (n *Node) routeAll(s *signal) {
	var q signalQueue
	n.routeQ(s, &q)
	n.drain(&q)
}

func (n *Node) drain(q *signalQueue) {
	for q.head < len(q.items) {
		s := &q.items[q.head]
		n.routeQ(s, q)
		q.items[q.head] = signal{}
		q.head++
	}
}

func (n *Node) routeQ(s *signal, q *signalQueue) {
	switch {
	case n.isLocal(s.to):
		n.deliverQ(s, q)
	case s.to.Node == n.name:
		n.undeliverable(s, ReasonNoProc, q)
	case n.remote != nil:
		n.toRemote(s)
	default:
		n.undeliverable(s, ReasonNoConnection, q)
	}
}

// toRemote hands s to the remote router (out of routeQ so that routeQ's
// frame holds no signal copy).
//
//go:noinline
func (n *Node) toRemote(s *signal) { n.remote.route(*s) }

// deliverLocal delivers a signal addressed to a pid of this node; remote
// delivery injects incoming signals here. A pid of another incarnation, or
// of a process that is gone, is treated as dead.
func (n *Node) deliverLocal(s signal) {
	var q signalQueue
	if n.isLocal(s.to) {
		n.deliverQ(&s, &q)
	} else {
		n.undeliverable(&s, ReasonNoProc, &q)
	}
	n.drain(&q)
}

// undeliverable answers a signal whose target is dead or unreachable: a link
// gets an exit signal back, a monitor a Down; everything else is dropped.
//
//go:noinline
func (n *Node) undeliverable(s *signal, reason error, q *signalQueue) {
	switch s.kind {
	case sigLink:
		q.push(signal{kind: sigLinkExit, from: s.to, to: s.from, reason: reason})
	case sigMonitor, sigCall:
		d := q.add()
		d.kind, d.from, d.to, d.ref, d.reason = sigDown, s.to, s.from, s.ref, reason
		d.msg = boxDown(s.ref, s.to, reason)
	}
}

// deliverQ applies a signal to a local process.
func (n *Node) deliverQ(s *signal, q *signalQueue) {
	p := n.procs.get(s.to.ID)
	if p == nil {
		n.undeliverable(s, ReasonNoProc, q)
		return
	}
	switch s.kind {
	case sigMessage:
		p.deliver(s.msg)
	case sigReply:
		p.onReply(s)
	case sigLink:
		if !p.onLink(s) {
			n.undeliverable(s, ReasonNoProc, q)
		}
	case sigUnlink:
		p.onUnlink(s)
	case sigMonitor:
		if !p.onMonitor(s) {
			n.undeliverable(s, ReasonNoProc, q)
		}
	case sigCall:
		if !p.onMonitor(s) {
			n.undeliverable(s, ReasonNoProc, q)
			return
		}
		p.deliver(s.msg)
	case sigDemonitor:
		p.onDemonitor(s)
	case sigDown:
		p.onDown(s)
	case sigExit, sigLinkExit:
		if die := p.onExitSignal(s); die != nil {
			n.terminateQ(p, die, q)
		}
	}
}

//go:noinline
func (p *Process) onReply(s *signal) {
	p.mu.Lock()
	if _, waiting := p.monitors.get(s.ref); !waiting || p.dead {
		p.mu.Unlock()
		return
	}
	a := p.pushLocked(s.msg)
	p.mu.Unlock()
	p.act(a)
}

//go:noinline
func (p *Process) onLink(s *signal) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead {
		return false
	}
	p.links.put(s.from, struct{}{})
	return true
}

//go:noinline
func (p *Process) onUnlink(s *signal) {
	p.mu.Lock()
	p.links.del(s.from)
	p.mu.Unlock()
}

//go:noinline
func (p *Process) onMonitor(s *signal) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead {
		return false
	}
	p.monitoredBy.put(s.ref, s.from)
	return true
}

//go:noinline
func (p *Process) onDemonitor(s *signal) {
	p.mu.Lock()
	p.monitoredBy.del(s.ref)
	p.mu.Unlock()
}

//go:noinline
func (p *Process) onDown(s *signal) {
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		return
	}
	if _, ok := p.monitors.del(s.ref); !ok {
		p.mu.Unlock() // demonitored meanwhile: no Down
		return
	}
	m := s.msg // the Down, boxed by whoever made the signal
	if _, ok := m.(Down); !ok {
		m = boxDown(s.ref, s.from, s.reason)
	}
	a := p.pushLocked(m)
	p.mu.Unlock()
	p.act(a)
}

// onExitSignal applies Erlang's exit-signal rules to p and returns the reason
// p must die with, or nil.
//
//go:noinline
func (p *Process) onExitSignal(s *signal) error {
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		return nil
	}
	if s.kind == sigLinkExit {
		if _, linked := p.links.del(s.from); !linked {
			p.mu.Unlock() // unlinked meanwhile: the signal has no effect
			return nil
		}
	}
	var die error
	switch {
	case s.kind == sigExit && s.reason == ReasonKill:
		die = ReasonKilled // untrappable
	case p.trapExit:
		a := p.pushLocked(Exit{From: s.from, Reason: s.reason})
		p.mu.Unlock()
		p.act(a)
		return nil
	case isNormalExit(s.reason):
		if s.kind != sigExit || s.from != p.pid {
			p.mu.Unlock()
			return nil
		}
		die = ReasonNormal // exit(self(), normal) ends the caller
	default:
		die = s.reason
	}
	p.mu.Unlock()
	return die
}
