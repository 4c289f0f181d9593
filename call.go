package nodal

import (
	"context"
	"errors"
	"fmt"

	"github.com/nodal-go/nodal/internal/hoptrace"
)

// From identifies the caller of a Call: its pid and the call's Ref. Pass it
// to Reply.
type From struct {
	Pid Pid
	Ref Ref

	// mon says that Ref is also a monitor the caller holds on the callee,
	// installed together with the request (a call from another node): the
	// callee's reply then ends that monitor on both sides without a
	// demonitor signal.
	mon bool
}

// CallRequest is the message a Call puts in the target's mailbox (gen_server's
// {'$gen_call', From, Request}). A Func process answers with Process.Reply;
// an Actor implementing CallHandler is answered for.
type CallRequest struct {
	From From
	Req  any
}

// CallReply is the reply a caller receives. It is delivered only while the
// caller still waits for it (a late reply after a timeout is dropped, like a
// reply to an expired alias in Erlang).
type CallReply struct {
	Ref   Ref
	Reply any

	// Err is set, and Reply nil, when a reply from another node arrived
	// whole but its value could not be decoded here (a type this node has
	// not registered, a value beyond its codec's limits): Call returns it
	// at once rather than wait for a reply that will not come. It
	// matches ErrCodec and the *CodecError that says why.
	Err error

	// dropped says the replier was the monitored callee and removed the
	// call's monitor before replying; the caller then drops its side
	// without a demonitor signal.
	dropped bool
}

// Reply sends reply to the caller from (gen_server:reply/2).
func (p *Process) Reply(to From, reply any) {
	if p.gone.Load() {
		return
	}
	hoptrace.Stamp(hoptrace.ReplyEntry)
	if to.Pid.Node != p.node.name {
		p.sentOut = true
	}
	p.node.reply(p.pid, to, reply)
	hoptrace.Record("callee", to.Ref.ID)
}

// Reply sends reply to the caller from, from outside any process.
func (n *Node) Reply(to From, reply any) {
	n.reply(Pid{}, to, reply)
}

func (n *Node) reply(from Pid, to From, reply any) {
	r := CallReply{Ref: to.Ref, Reply: reply}
	if to.mon && n.isLocal(from) {
		// The callee replies to a call that came with its monitor: end the
		// monitor here, so that the caller need not send a demonitor.
		if p := n.procs.get(from.ID); p != nil {
			p.mu.Lock()
			if w, ok := p.monitoredBy.get(to.Ref); ok && w == to.Pid {
				p.monitoredBy.del(to.Ref)
				r.dropped = true
			}
			p.mu.Unlock()
		}
	}
	n.route(signal{kind: sigReply, from: from, to: to.Pid, ref: to.Ref, msg: r})
}

// Call sends req to the process to and waits for its reply
// (gen_server:call/3): it monitors to, sends CallRequest{From, Req}, and
// waits for the reply or the monitor's Down, leaving other messages in the
// mailbox. For a process on another node the monitor and the request travel
// as one frame and the callee's reply ends the monitor on both sides, so a
// successful call costs one frame each way. If to does not exist the error
// is a *CallError wrapping ErrNoProc; if to exits first, a *CallError with
// its reason; on ctx's deadline an error wrapping ErrTimeout and
// context.DeadlineExceeded; a request that cannot be encoded for another
// node, the codec's error.
func (p *Process) Call(ctx context.Context, to Pid, req any) (any, error) {
	hoptrace.Stamp(hoptrace.CallEntry)
	if err := p.exited(); err != nil {
		return nil, err
	}
	var ref Ref
	if to.Node != p.node.name && p.node.remote != nil {
		// Another node: the monitor travels with the request in one frame
		// and the callee's reply ends it (one frame each way, as with
		// Erlang's alias-monitor calls, and no demonitor on success).
		ref, _ = p.addMonitor(to)
		err := p.node.remote.route(signal{kind: sigCall, from: p.pid, to: to, ref: ref,
			msg: CallRequest{From: From{Pid: p.pid, Ref: ref, mon: true}, Req: req}})
		if err != nil { // not encodable: nothing left this node
			p.demonitor(ref, true, false)
			return nil, err
		}
	} else {
		ref = p.Monitor(to)
		p.Send(to, CallRequest{From: From{Pid: p.pid, Ref: ref}, Req: req})
	}
	p.spinCall = to.Node != p.node.name // the reply comes from the network
	m, err := p.ReceiveMatch(ctx, func(m any) bool {
		switch m := m.(type) {
		case CallReply:
			return m.Ref == ref
		case Down:
			return m.Ref == ref
		}
		return false
	})
	p.spinCall = false
	if err != nil {
		p.Demonitor(ref, true)
		return nil, p.node.callWaitError(to, err)
	}
	switch m := m.(type) {
	case CallReply:
		// The callee ended the call's monitor itself when it replied
		// (dropped); otherwise tell it.
		p.demonitor(ref, true, !m.dropped)
		if m.Err != nil {
			return nil, fmt.Errorf("nodal: call to %v: its reply could not be decoded: %w", to, m.Err)
		}
		if hoptrace.Enabled {
			hoptrace.Stamp(hoptrace.CallReturn)
			hoptrace.Record("caller", ref.ID)
		}
		return m.Reply, nil
	case Down:
		return nil, &CallError{To: to, Reason: m.Reason}
	}
	panic("unreachable")
}

// Call sends req to the process to from outside any process and waits for
// the reply; see Process.Call. It uses a temporary mailbox-only process (no
// goroutine) that ends when Call returns.
func (n *Node) Call(ctx context.Context, to Pid, req any) (any, error) {
	if n.stopping.Load() {
		return nil, ErrStopped
	}
	p := n.newBare()
	defer n.terminate(p, ReasonNormal)
	if n.stopping.Load() { // Stop began meanwhile and may have missed p
		return nil, ErrStopped
	}
	return p.Call(ctx, to, req)
}

// newBare makes a process with a mailbox and no goroutine: the caller's
// goroutine acts as the process until it terminates it.
func (n *Node) newBare() *Process {
	p := &Process{
		node: n,
		kind: kindBare,
		pid:  Pid{Node: n.name, ID: n.nextID.Add(1), Incarnation: n.incarnation},
	}
	n.procs.put(p)
	return p
}

// CallTimeoutError is the error of a Call whose wait ended (deadline or
// cancel) before a reply came. It says whether the target's node was
// connected at that moment (the process was merely slow, or the request or
// reply is still on its way) or not (the node is down or unreachable; the
// request may or may not have been handled, as with erpc).
type CallTimeoutError struct {
	To       Pid
	NodeUp   bool  // the target's node was connected when the wait ended
	Err      error // the wait's error: wraps ErrTimeout and ctx.Err()
	selfNode bool
}

// Error implements error.
func (e *CallTimeoutError) Error() string {
	switch {
	case e.selfNode:
		return fmt.Sprintf("nodal: call to %v: %v (local process did not reply)", e.To, e.Err)
	case e.NodeUp:
		return fmt.Sprintf("nodal: call to %v: %v (node %s is up; the process did not reply in time)", e.To, e.Err, e.To.Node)
	}
	return fmt.Sprintf("nodal: call to %v: %v (node %s is down or unreachable)", e.To, e.Err, e.To.Node)
}

// Unwrap returns the wait's error, and ErrNoConnection when the node was
// not connected.
func (e *CallTimeoutError) Unwrap() []error {
	if e.NodeUp || e.selfNode {
		return []error{e.Err}
	}
	return []error{e.Err, ErrNoConnection}
}

// callWaitError classifies an error that ended a Call's wait.
func (n *Node) callWaitError(to Pid, err error) error {
	if !errors.Is(err, ErrTimeout) && !errors.Is(err, context.Canceled) {
		return err // the caller itself exited, for example
	}
	if to.Node == n.name {
		return &CallTimeoutError{To: to, Err: err, selfNode: true}
	}
	up := false
	if n.dist != nil {
		_, up = n.dist.peer(to.Node)
	}
	return &CallTimeoutError{To: to, NodeUp: up, Err: err}
}
