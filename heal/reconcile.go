package heal

import (
	"context"
	"fmt"
	"time"
)

// Reconciler is what the heal service drives after a heal: one
// anti-entropy round of a replicated service (a registry scope, a groups
// scope) with the nodes that came back. The service's own adapter
// implements it, e.g. a registry scope's digest exchange.
//
// Concurrency: Sync is called from the heal service's goroutine, one call
// at a time per Heal; it may block, bounded by ctx (Config.SyncTimeout and
// Stop), and must be safe to call while the service runs.
type Reconciler interface {
	// Sync exchanges state with peers (the nodes that came back, sorted)
	// until this node's replica has what they have, and returns what it
	// moved.
	Sync(ctx context.Context, peers []string) (Exchange, error)
}

// ReconcilerFunc adapts a function to a Reconciler.
type ReconcilerFunc func(ctx context.Context, peers []string) (Exchange, error)

// Sync implements Reconciler.
func (f ReconcilerFunc) Sync(ctx context.Context, peers []string) (Exchange, error) {
	return f(ctx, peers)
}

// Exchange is what one reconcile round moved, as its Reconciler counts it.
type Exchange struct {
	Bytes     uint64 // bytes sent and received
	Entries   uint64 // entries this node took in
	Conflicts uint64 // conflicts resolved (the same name on two sides)
}

// Add returns the sum of e and o.
func (e Exchange) Add(o Exchange) Exchange {
	return Exchange{Bytes: e.Bytes + o.Bytes, Entries: e.Entries + o.Entries, Conflicts: e.Conflicts + o.Conflicts}
}

// String describes the exchange, e.g. "120 bytes, 3 entries, 1 conflicts".
func (e Exchange) String() string {
	return fmt.Sprintf("%d bytes, %d entries, %d conflicts", e.Bytes, e.Entries, e.Conflicts)
}

type namedReconciler struct {
	name string
	r    Reconciler
}

// AddReconciler attaches r under name (unique, for reports): after every
// heal the heal service calls its Sync with the nodes that came back, and
// Healed reports what it returned. Reconcilers run in the order they were
// added.
func (h *Heal) AddReconciler(name string, r Reconciler) error {
	if name == "" || r == nil {
		return fmt.Errorf("%w: a reconciler needs a name and a value", ErrBadOption)
	}
	h.recMu.Lock()
	defer h.recMu.Unlock()
	for _, nr := range h.reconcilers {
		if nr.name == name {
			return fmt.Errorf("%w: reconciler %q already added", ErrBadOption, name)
		}
	}
	h.reconcilers = append(h.reconcilers, namedReconciler{name, r})
	return nil
}

// reconcile runs one round of every reconciler with the returned nodes and
// emits Healed; a worker of h.work.
func (h *Heal) reconcile(returned, still []string, lasted time.Duration, returnedAt time.Time) {
	defer func() {
		h.mu.Lock()
		h.st.syncing = false
		h.mu.Unlock()
		h.signal()
	}()
	h.recMu.Lock()
	recs := append([]namedReconciler(nil), h.reconcilers...)
	h.recMu.Unlock()
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.SyncTimeout)
	defer cancel()
	ev := Healed{Returned: returned, StillMissing: still, Lasted: lasted}
	for _, nr := range recs {
		start := time.Now()
		x, err := nr.r.Sync(ctx, returned)
		if err != nil {
			log.Warnw("reconciler failed after a heal", "node", h.self, "reconciler", nr.name, "peers", returned, "err", err)
		}
		ev.Reconcilers = append(ev.Reconcilers, SyncResult{Name: nr.name, Exchange: x, Took: time.Since(start), Err: err})
		ev.Exchange = ev.Exchange.Add(x)
	}
	if h.ctx.Err() != nil {
		return // stopped: no report
	}
	ev.At = time.Now()
	ev.Converged = ev.At.Sub(returnedAt)
	h.mu.Lock()
	last := ev
	h.st.heals = Heals{Count: h.st.heals.Count + 1, Exchange: h.st.heals.Exchange.Add(ev.Exchange), Last: &last}
	h.mu.Unlock()
	h.emit(ev)
}

// CountedSync adapts a replicated service (a registry or groups scope:
// Sync(ctx), and ExchangedSinceUp(nodes...)) to a Reconciler: Sync calls
// sync, then reports exchanged(peers), what the service moved with the
// returned nodes since they came back (the exchange their return started
// and the Sync, nothing else).
func CountedSync(sync func(ctx context.Context) error, exchanged func(peers []string) Exchange) Reconciler {
	return ReconcilerFunc(func(ctx context.Context, peers []string) (Exchange, error) {
		err := sync(ctx)
		return exchanged(peers), err
	})
}
