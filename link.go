package nodal

// Link links the caller and the process to (link/1): when either exits, the
// other gets an exit signal with the reason. Links are bidirectional and
// idempotent (linking twice is one link). If to does not exist the caller
// gets an exit signal with reason noproc (and, not trapping exits, dies); a
// pid on an unreachable node gives reason noconnection. Linking to oneself
// does nothing.
func (p *Process) Link(to Pid) {
	if to == p.pid || p.gone.Load() {
		return
	}
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		return
	}
	p.links.put(to, struct{}{})
	p.mu.Unlock()
	p.node.route(signal{kind: sigLink, from: p.pid, to: to})
}

// Unlink removes the link between the caller and to (unlink/1). Once it
// returns, the link has no further effect on the caller: an exit signal from
// to that the link would have carried is ignored. An Exit message already in
// a trapping caller's mailbox stays there, as in Erlang.
func (p *Process) Unlink(to Pid) {
	if p.gone.Load() {
		return
	}
	p.mu.Lock()
	_, linked := p.links.del(to)
	p.mu.Unlock()
	if linked {
		p.node.route(signal{kind: sigUnlink, from: p.pid, to: to})
	}
}
