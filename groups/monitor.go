package groups

import "sync/atomic"

// Monitor delivers the changes of a scope's or a group's visible members
// that happen after its snapshot (pg's monitor_scope and monitor): joins
// and leaves on any node, leaves of members whose node went down and joins
// when it comes back. Events arrive in the order this node saw the
// changes, none is lost and none repeats the snapshot.
//
// The channel is buffered (Config.MonitorBuffer). A reader that falls that
// far behind is not waited for: the monitor ends, its channel is closed
// and Err returns ErrMonitorOverflow; monitor again for a fresh snapshot.
// Stop ends it (pg's demonitor); Scope.Stop ends every monitor with
// ErrStopped.
type Monitor struct {
	x     *index
	ch    chan Event
	group *string // nil for a scope monitor
	// closed is guarded by x.mu.
	closed bool
	err    atomic.Pointer[error]
}

// Events returns the channel of events; it is closed when the monitor
// ends.
func (m *Monitor) Events() <-chan Event { return m.ch }

// Err returns why the monitor ended once its channel is closed:
// ErrMonitorOverflow, ErrStopped, or nil after Stop. It is nil while the
// monitor runs.
func (m *Monitor) Err() error {
	if p := m.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Stop ends the monitor: no event is sent after it returns, and the
// channel is closed (events already in it can still be read). It is
// idempotent.
func (m *Monitor) Stop() { m.x.end(m, nil) }
