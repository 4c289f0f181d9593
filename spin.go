package nodal

// Waiting for a message from the network: a process whose next message is
// likely to come from another node soon (it waits for a remote call's
// reply, or it answered a message from another node and waits for the
// next one, as a server does) spins for it before it parks, through its
// spin.Waiter (internal/spin: the bounds, in time, in breadth and by
// outcome, and why). A process that only takes a stream of messages does
// not spin: its spin would take the CPU its connection's reader needs.

// endNetWait ends p's count in spin.Conversations when its wait ends; the
// owner calls it.
func (p *Process) endNetWait() { p.spinW.End() }

// spin waits up to spin.Budget for a message when p's wait is eligible
// (see above); it reports whether it spun. The owner calls it without
// p.mu, before parking.
func (p *Process) spin() bool {
	// A conversation with another node: this process answered (or sent
	// to) a node whose message it took last.
	talk := p.netIn.Swap(false) && p.sentOut
	p.sentOut = false
	if !talk && !p.spinCall {
		return false
	}
	return p.spinW.Spin(p.hasMail)
}

// hasMail reports whether a message was delivered to p (or p died): what
// its spin looks for.
func (p *Process) hasMail() bool {
	p.mu.Lock()
	got := p.nin > 0 || p.dead
	p.mu.Unlock()
	return got
}

// markNetIn notes that a message from another node is being delivered to
// p: its next wait may spin, and if p spins now the delivery is a hand-off
// to a spinner (spin.Waiter.Handed, for dist.yieldToSpinner).
func (p *Process) markNetIn() {
	if !p.netIn.Load() {
		p.netIn.Store(true)
	}
	p.spinW.Handed()
}
