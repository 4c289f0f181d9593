package p2p

import "time"

// ensureMesh starts a mesh dialer for name if it is a member without a
// connection to its current start and none is running (Erlang's full
// mesh). It runs on the membership worker.
func (h *Host) ensureMesh(name string) {
	m := h.member(name)
	if m == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopping {
		return
	}
	if c := h.conns[name]; (c != nil && c.peer.ID == m.ID) || h.meshDial[name] {
		return
	}
	h.meshDial[name] = true
	h.connStopper.RunWorker(func() { h.meshDialer(name) })
}

// meshDialer keeps dialing a member until connected, gone or stopping.
// The node with the lower name dials first; the other waits a little so
// that both rarely dial at once.
func (h *Host) meshDialer(name string) {
	wait := time.Duration(0)
	if h.cfg.Name > name {
		wait = time.Second
	}
	backoff := 100 * time.Millisecond
	for {
		if wait > 0 {
			select {
			case <-time.After(wait):
			case <-h.connStopper.ShouldStop():
				return // the host stops: its mesh with it
			}
		}
		m, done := h.meshDialDone(name)
		if done {
			return
		}
		if m != nil {
			_, err := h.dial(h.ctx, m.addrInfo(), name)
			if err == nil {
				wait = 0 // checks again at once: the connection may be gone already
				continue
			}
			log.Debugw("mesh dial failed", "node", name, "err", err.Error())
		}
		wait = backoff
		backoff = min(backoff*2, 5*time.Second)
	}
}

// meshDialDone reports whether name's mesh dialer is done (name is no
// longer a member, or is connected to its current start), and if so
// removes the dialer. Else it returns the member to dial, or nil while a
// connection to an earlier start of name is still open. The check and the
// removal are one step under mu, so that an ensureMesh after a change (a
// join, a lost connection) either finds the dialer still running, which
// then sees that change here, or finds none and starts one: no change is
// missed.
func (h *Host) meshDialDone(name string) (*memberRec, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.member(name)
	c := h.conns[name]
	if m == nil || (c != nil && c.peer.ID == m.ID) {
		delete(h.meshDial, name)
		return nil, true
	}
	if c != nil {
		return nil, false
	}
	return m, false
}
