package nodal

// Monitor starts monitoring the process to (erlang:monitor(process, To)) and
// returns a new Ref; every call makes a new monitor. When to exits the caller
// receives exactly one Down{Ref, Pid, Reason}. If to does not exist the Down
// (reason noproc) is in the mailbox when Monitor returns; a pid on an
// unreachable node gives reason noconnection.
func (p *Process) Monitor(to Pid) Ref {
	ref, ok := p.addMonitor(to)
	if ok {
		p.node.route(signal{kind: sigMonitor, from: p.pid, to: to, ref: ref})
	}
	return ref
}

// addMonitor records a new monitor of to on p's side and returns its Ref;
// ok is false if p is dead (nothing recorded, nothing to send).
func (p *Process) addMonitor(to Pid) (ref Ref, ok bool) {
	ref = p.node.newRef()
	if p.gone.Load() {
		return ref, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead {
		return ref, false
	}
	p.monitors.put(ref, to)
	return ref, true
}

// Demonitor stops the monitor ref (erlang:demonitor/2). No Down for it is
// delivered after Demonitor returns; with flush, a Down already in the
// mailbox is removed too. It reports whether the monitor was still active
// (false if it had already fired or never existed), like demonitor's info
// option.
func (p *Process) Demonitor(ref Ref, flush bool) bool {
	return p.demonitor(ref, flush, true)
}

// demonitor ends the monitor ref on p's side, tells its target if tell
// (a target that ended it already need not be told), and with flush
// removes a Down for it from the mailbox.
func (p *Process) demonitor(ref Ref, flush, tell bool) bool {
	p.mu.Lock()
	to, active := p.monitors.del(ref)
	p.mu.Unlock()
	if active && tell {
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
