package heal

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Event is one of PartitionDetected, Healed, Decided, Resumed and Refused;
// callers type-switch on it.
type Event interface {
	// String describes the event in one line.
	String() string
	event()
}

// PartitionDetected says expected nodes became unreachable from this node:
// a member that failure detection declared failed at once, a member this
// node lost its connection to (while others may still reach it: a partial
// partition) after ReconnectInterval.
type PartitionDetected struct {
	At      time.Time
	New     []string // the nodes missing since the last report, sorted
	Missing []string // every expected node unreachable now, sorted
	View    View     // the whole view at that moment
}

// Healed says lost nodes are reachable again and the reconcilers ran with
// them.
type Healed struct {
	At           time.Time
	Returned     []string      // the nodes that came back, sorted
	StillMissing []string      // expected nodes still unreachable, sorted
	Lasted       time.Duration // from the partition's detection to the last return
	Converged    time.Duration // from the last return to the reconcilers' end
	Exchange     Exchange      // what the reconcilers moved, summed
	Reconcilers  []SyncResult  // each reconciler's outcome, in attachment order
}

// SyncResult is one reconciler's part of a heal.
type SyncResult struct {
	Name     string
	Exchange Exchange
	Took     time.Duration
	Err      error
}

// Decided says the split-brain strategy decided for this node's side.
type Decided struct{ Decision }

// Resumed says a paused node runs again: its side won after a heal, or the
// node it disagreed with is gone.
type Resumed struct {
	At time.Time
}

// Refused says a node's Settings differ from this node's. The newer start
// of the two is the one refused: it pauses (Paused), reconnects to no one
// and is left out of the other's quorum, votes and reconcilers.
type Refused struct {
	At     time.Time
	Node   string
	Ours   Settings
	Theirs Settings
	// Self is true when this node is the newer one, so it is the node that
	// is refused (and pauses).
	Self bool
}

func (PartitionDetected) event() {}
func (Healed) event()            {}
func (Decided) event()           {}
func (Resumed) event()           {}
func (Refused) event()           {}

// String implements Event.
func (e PartitionDetected) String() string {
	return fmt.Sprintf("partition detected: missing %s (new %s)", strings.Join(e.Missing, ","), strings.Join(e.New, ","))
}

// String implements Event.
func (e Healed) String() string {
	return fmt.Sprintf("healed: %s back after %v, converged in %v (%v); still missing [%s]",
		strings.Join(e.Returned, ","), e.Lasted, e.Converged, e.Exchange, strings.Join(e.StillMissing, ","))
}

// String implements Event.
func (e Decided) String() string { return e.Decision.String() }

// String implements Event.
func (e Resumed) String() string { return "resumed" }

// String implements Event.
func (e Refused) String() string {
	who := e.Node
	if e.Self {
		who = "this node (newer than " + e.Node + ")"
	}
	return fmt.Sprintf("refused %s: settings %v differ from %v", who, e.Theirs, e.Ours)
}

// Subscription receives a heal service's events (Heal.Subscribe).
type Subscription struct {
	h       *Heal
	c       chan Event
	dropped atomic.Uint64
	once    sync.Once
}

// Events returns the channel the events arrive on, in the order they
// happened. It is closed by Close and when the heal service stops.
func (s *Subscription) Events() <-chan Event { return s.c }

// Dropped counts the events lost because the channel's buffer was full.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close ends the subscription and closes its channel.
func (s *Subscription) Close() {
	s.h.subMu.Lock()
	defer s.h.subMu.Unlock()
	s.closeLocked()
}

func (s *Subscription) closeLocked() {
	s.once.Do(func() {
		delete(s.h.subs, s)
		close(s.c)
	})
}

// Subscribe returns a subscription to this node's heal events with room
// for buf of them (at least 1; default 64 for 0). An event that finds the
// buffer full is dropped and counted (Subscription.Dropped), so a slow
// subscriber never holds up the heal service; View always has the state.
func (h *Heal) Subscribe(buf int) *Subscription {
	if buf <= 0 {
		buf = 64
	}
	s := &Subscription{h: h, c: make(chan Event, buf)}
	h.subMu.Lock()
	defer h.subMu.Unlock()
	if h.subs == nil { // stopped
		close(s.c)
		s.once.Do(func() {})
		return s
	}
	h.subs[s] = struct{}{}
	return s
}

// emit hands ev to every subscriber without blocking.
func (h *Heal) emit(ev Event) {
	log.Infow(ev.String(), "node", h.self)
	h.subMu.Lock()
	defer h.subMu.Unlock()
	for s := range h.subs {
		select {
		case s.c <- ev:
		default:
			s.dropped.Add(1)
		}
	}
}

// closeSubs closes every subscription (at Stop).
func (h *Heal) closeSubs() {
	h.subMu.Lock()
	defer h.subMu.Unlock()
	for s := range h.subs {
		s.closeLocked()
	}
	h.subs = nil
}
