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
	defer func() {
		h.mu.Lock()
		delete(h.meshDial, name)
		h.mu.Unlock()
	}()
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
				return
			}
		}
		m := h.member(name)
		h.mu.Lock()
		c := h.conns[name]
		h.mu.Unlock()
		if m == nil || (c != nil && c.peer.ID == m.ID) {
			return
		}
		if c == nil {
			_, err := h.dial(h.ctx, m.addrInfo(), name)
			if err == nil {
				return
			}
			log.Debugw("mesh dial failed", "node", name, "err", err.Error())
		}
		wait = backoff
		backoff = min(backoff*2, 5*time.Second)
	}
}
