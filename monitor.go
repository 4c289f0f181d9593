package nodal

// Monitor starts monitoring the process to (erlang:monitor(process, To)) and
// returns a new Ref; every call makes a new monitor. When to exits the caller
// receives exactly one Down{Ref, Pid, Reason}. If to does not exist the Down
// (reason noproc) is in the mailbox when Monitor returns; a pid on an
// unreachable node gives reason noconnection.
func (p *Process) Monitor(to Pid) Ref {
	ref := p.node.newRef()
	if p.gone.Load() {
		return ref
	}
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		return ref
	}
	p.monitors.put(ref, to)
	p.mu.Unlock()
	p.node.route(signal{kind: sigMonitor, from: p.pid, to: to, ref: ref})
	return ref
}

// Demonitor stops the monitor ref (erlang:demonitor/2). No Down for it is
// delivered after Demonitor returns; with flush, a Down already in the
// mailbox is removed too. It reports whether the monitor was still active
// (false if it had already fired or never existed), like demonitor's info
// option.
func (p *Process) Demonitor(ref Ref, flush bool) bool {
	p.mu.Lock()
	to, active := p.monitors.del(ref)
	p.mu.Unlock()
	if active {
		p.node.route(signal{kind: sigDemonitor, from: p.pid, to: to, ref: ref})
	}
	if flush {
		p.flush(func(m any) bool {
			d, ok := m.(Down)
			return ok && d.Ref == ref
		})
	}
	return active
}
