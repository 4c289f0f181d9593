package heal

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// loopState is the loop's memory between steps. Guarded by mu (View reads
// it); only the loop and its workers write it.
type loopState struct {
	missing     map[string]bool // reported missing (PartitionDetected)
	partitionAt time.Time       // first detection of the current split; zero when whole
	returned    map[string]bool // came back since the last reconcile round
	returnedAt  time.Time       // the last return
	syncing     bool            // a reconcile round runs
	heals       Heals           // the Healed events reported so far

	viewKey   string    // the reachable expected nodes, joined
	viewSince time.Time // when viewKey last changed
	decided   string    // the viewKey the current decision is for
	decision  *Decision

	reachSeq  uint64
	lastReach []string

	seedTrying  bool
	seedNext    time.Time
	seedBackoff time.Duration
}

func (s *loopState) init(now time.Time) {
	s.missing = map[string]bool{}
	s.returned = map[string]bool{}
	s.viewSince = now
}

// tick is the loop's period: a quarter of the reconnect interval, so
// detection, attempts and decisions are late by at most that.
func (h *Heal) tick() time.Duration {
	return max(h.cfg.ReconnectInterval/4, 10*time.Millisecond)
}

// loop runs a step on every state change, every tick, and when the next
// reconnect attempt is due (so an attempt is never late by a tick); a
// worker of h.stopper.
func (h *Heal) loop() {
	t := time.NewTimer(h.tick())
	defer t.Stop()
	for {
		select {
		case <-h.stopper.ShouldStop():
			return
		case <-h.wake:
		case <-t.C:
		}
		wait := h.tick()
		if due := h.step(time.Now()); !due.IsZero() {
			wait = min(wait, max(time.Until(due), 0))
		}
		t.Reset(wait)
	}
}

// shorten returns a pause in [¾d, d]: jitter spreads the attempts of many
// nodes but never lengthens a pause, so the bounds below hold.
func shorten(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d - rand.N(d/4+1)
}

// The reconnect schedule of a lost node (and of the seeds): the first
// attempt within a quarter of ReconnectInterval, each failed attempt
// doubling the pause up to ReconnectInterval, so that while the node has
// been lost for less than ReconnectSlowAfter two attempts start at most
// ReconnectInterval apart (an attempt is bounded by ReconnectInterval
// too): a network that comes back is used within ReconnectInterval. After
// ReconnectSlowAfter the pause grows to ReconnectMaxInterval, serf's pace
// for a node gone for hours. Any lost node coming back resets every lost
// node's schedule to an attempt at once.

// reconnectBase is the first pause after a loss or a reset.
func (h *Heal) reconnectBase() time.Duration { return max(h.cfg.ReconnectInterval/4, time.Millisecond) }

// reconnectCap is the longest pause between two attempts at a node lost
// for lostFor.
func (h *Heal) reconnectCap(lostFor time.Duration) time.Duration {
	if lostFor >= h.cfg.ReconnectSlowAfter {
		return h.cfg.ReconnectMaxInterval
	}
	return h.cfg.ReconnectInterval
}

// nextBackoff is the pause after a failed attempt that waited b.
func (h *Heal) nextBackoff(b, lostFor time.Duration) time.Duration {
	return min(max(2*b, h.reconnectBase()), h.reconnectCap(lostFor))
}

// outFrame is a frame the step sends once it released mu.
type outFrame struct {
	node  string
	data  []byte
	hello bool   // a hello: on failure, send again
	seq   uint64 // a reach report: on failure, send again
}

// step looks at the state once: it reports partitions and returns, starts
// reconnect attempts and reconcile rounds, sends hellos and reach reports
// and applies the strategy. It returns when the next attempt is due (zero
// if none is waiting).
func (h *Heal) step(now time.Time) (due time.Time) {
	soonest := func(t time.Time) {
		if due.IsZero() || t.Before(due) {
			due = t
		}
	}
	var (
		events []Event
		out    []outFrame
		lose   *Decision
	)
	h.mu.Lock()
	st := &h.st
	cfg := &h.cfg

	// Classify the nodes.
	missing := map[string]bool{}
	reachable := map[string]bool{h.self: true}
	var connected []string
	anyLostNonMember := false
	var seedLostFor time.Duration // the most recent loss of a lost non-member
	for name, r := range h.nodes {
		if r.connected {
			connected = append(connected, name)
		}
		if !r.expected() {
			r.lost = false
			if r.left && !r.configured && now.Sub(r.since) > cfg.PurgePeriod {
				delete(h.nodes, name)
			}
			continue
		}
		if r.connected {
			reachable[name] = true
			r.lost = false
			continue
		}
		if r.left {
			r.lost = false
			continue
		}
		if !r.lost {
			r.lost, r.since = true, now
			r.backoff, r.attempts, r.lastErr = h.reconnectBase(), 0, nil
			r.nextTry = now.Add(shorten(r.backoff))
		}
		lostFor := now.Sub(r.since)
		if !r.configured && !r.member && lostFor > cfg.PurgePeriod {
			delete(h.nodes, name) // purged: no longer expected
			continue
		}
		// A member declared failed is missing at once (failure detection
		// took its time); a lost connection to a live member, or a
		// configured node not seen yet, after ReconnectInterval. A missing
		// node stays missing until it is reachable: memberlist often has
		// it back before its connection is.
		if (!r.member && r.seen) || lostFor >= cfg.ReconnectInterval || st.missing[name] {
			missing[name] = true
		}
		if !r.member && lostFor < cfg.ReconnectHorizon {
			if !anyLostNonMember || lostFor < seedLostFor {
				seedLostFor = lostFor
			}
			anyLostNonMember = true
			if !r.trying && r.gossip != "" {
				if !now.Before(r.nextTry) {
					r.trying = true
					name, addr, lostFor := name, r.gossip, lostFor
					h.work.RunWorker(func() { h.attempt(name, addr, now, lostFor) })
				} else {
					soonest(r.nextTry)
				}
			}
		}
	}

	// Seeds, while a node is lost.
	if anyLostNonMember && len(cfg.Seeds) > 0 && !st.seedTrying {
		if st.seedNext.IsZero() {
			st.seedBackoff = h.reconnectBase()
			st.seedNext = now.Add(shorten(st.seedBackoff))
		}
		if !now.Before(st.seedNext) {
			st.seedTrying = true
			h.work.RunWorker(func() { h.attemptSeeds(now, seedLostFor) })
		} else {
			soonest(st.seedNext)
		}
	} else if !anyLostNonMember {
		st.seedNext = time.Time{}
	}

	// Partitions and returns.
	var newly, back []string
	for name := range missing {
		if !st.missing[name] {
			newly = append(newly, name)
		}
	}
	for name := range st.missing {
		if !missing[name] {
			if reachable[name] {
				back = append(back, name)
			}
		}
	}
	st.missing = missing
	if len(newly) > 0 {
		if st.partitionAt.IsZero() {
			st.partitionAt = now
		}
		slices.Sort(newly)
		events = append(events, PartitionDetected{At: now, New: newly, Missing: sortedKeys(missing)})
	}
	if len(back) > 0 {
		for _, b := range back {
			st.returned[b] = true
		}
		st.returnedAt = now
		// The network is back for some: try every other lost node at once.
		for _, r := range h.nodes {
			if r.lost {
				r.backoff, r.nextTry = h.reconnectBase(), now
				soonest(now)
			}
		}
		if !st.seedNext.IsZero() {
			st.seedBackoff, st.seedNext = h.reconnectBase(), now
			soonest(now)
		}
	}
	if len(st.returned) > 0 && !st.syncing {
		st.syncing = true
		returned, still := sortedKeys(st.returned), sortedKeys(missing)
		lasted := st.returnedAt.Sub(st.partitionAt)
		returnedAt := st.returnedAt
		clear(st.returned)
		if len(missing) == 0 {
			st.partitionAt = time.Time{}
		}
		h.work.RunWorker(func() { h.reconcile(returned, still, lasted, returnedAt) })
	} else if len(missing) == 0 && len(st.returned) == 0 {
		st.partitionAt = time.Time{} // the missing nodes left or were purged
	}

	// Hellos and reach reports.
	slices.Sort(connected)
	if !slices.Equal(connected, st.lastReach) {
		st.reachSeq++
		st.lastReach = connected
	}
	var hello, reach []byte
	for _, name := range connected {
		r := h.nodes[name]
		if !r.runsHeal() {
			continue
		}
		if !r.helloSent {
			if hello == nil {
				hello = encodeHello(cfg.settings(), h.started)
			}
			r.helloSent = true
			out = append(out, outFrame{node: name, data: hello, hello: true})
		}
		if r.reachSent != st.reachSeq {
			if reach == nil {
				reach = encodeReach(st.reachSeq, connected)
			}
			r.reachSent = st.reachSeq
			out = append(out, outFrame{node: name, data: reach, seq: st.reachSeq})
		}
	}

	// The split-brain strategy.
	var onSide []string
	for name := range reachable {
		onSide = append(onSide, name)
	}
	slices.Sort(onSide)
	key := strings.Join(onSide, ",")
	if key != st.viewKey {
		st.viewKey, st.viewSince = key, now
	}
	if cfg.Strategy != StrategyNone {
		switch {
		case len(missing) == 0:
			if st.decision != nil {
				if !st.decision.Survive {
					events = append(events, Resumed{At: now})
				}
				st.decision, st.decided = nil, ""
			}
		case now.Sub(st.viewSince) >= cfg.StableAfter && st.decided != key:
			in := h.sideLocked(reachable)
			survive, reason := decide(in)
			var onExpected []string
			for _, e := range in.expected {
				if in.reachable[e] {
					onExpected = append(onExpected, e)
				}
			}
			d := &Decision{At: now, Strategy: cfg.Strategy, Survive: survive, Reason: reason,
				Reachable: onExpected, Missing: sortedKeys(missing), Action: cfg.Action}
			if st.decision != nil && !st.decision.Survive && survive {
				events = append(events, Resumed{At: now})
			}
			lost := st.decision != nil && !st.decision.Survive
			st.decision, st.decided = d, key
			events = append(events, Decided{*d})
			if !survive && !lost {
				lose = d
			}
		}
	}
	h.mu.Unlock()

	for _, ev := range events {
		if pd, ok := ev.(PartitionDetected); ok {
			pd.View = h.View()
			ev = pd
		}
		h.emit(ev)
	}
	h.send(out)
	if lose != nil {
		h.lose(*lose)
	}
	return due
}

// runsHeal: the node runs the heal service, as its hello or metadata says.
func (r *nodeRec) runsHeal() bool { return r.heal || r.healTag }

// sideLocked builds the strategy's input; callers hold mu.
func (h *Heal) sideLocked(reachable map[string]bool) side {
	s := side{strategy: h.cfg.Strategy, quorum: h.cfg.QuorumSize, referee: h.cfg.Referee, downIfAlone: h.cfg.DownIfAlone,
		expected: []string{h.self}, reachable: map[string]bool{}, started: map[string]int64{h.self: h.started}}
	for name, r := range h.nodes {
		if !r.expected() {
			continue
		}
		s.expected = append(s.expected, name)
		if r.started != 0 {
			s.started[name] = r.started
		}
	}
	slices.Sort(s.expected)
	for _, e := range s.expected {
		if reachable[e] {
			s.reachable[e] = true
		}
	}
	// The referee counts wherever it is reachable, expected or not.
	if r := h.nodes[h.cfg.Referee]; h.cfg.Referee == h.self || (r != nil && r.connected) {
		s.reachable[h.cfg.Referee] = true
	}
	return s
}

// send sends the step's frames without blocking; what cannot be sent now
// is sent again at a later step.
func (h *Heal) send(out []outFrame) {
	for _, f := range out {
		if err := h.n.TrySendService(f.node, ServiceName, f.data); err != nil {
			h.mu.Lock()
			if r := h.nodes[f.node]; r != nil {
				if f.hello {
					r.helloSent = false
				} else if r.reachSent == f.seq {
					r.reachSent = 0
				}
			}
			h.mu.Unlock()
		}
	}
}

// lose carries out the action of a losing side.
func (h *Heal) lose(d Decision) {
	log.Warnw("this node's side lost the split", "node", h.self, "decision", d.String())
	if h.cfg.OnLose != nil {
		h.cfg.OnLose(d)
	}
	if h.cfg.Action == ActionStop {
		// Node.Stop stops this service first, which waits for the loop:
		// it cannot run on the loop, nor on a worker the Stop waits for.
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
			defer cancel()
			if err := h.n.Stop(ctx); err != nil {
				log.Warnw("stopping the node of a losing side", "node", h.self, "err", err)
			}
		}()
	}
}

// stopTimeout bounds ActionStop's Node.Stop.
const stopTimeout = 10 * time.Second

// attemptTimeout bounds one reconnect attempt: within ReconnectInterval,
// so an attempt that hangs on a cut network never delays the next one
// beyond the schedule's bound.
func (h *Heal) attemptTimeout() time.Duration { return h.cfg.ReconnectInterval }

// attempt tries to join a lost node through its last known gossip address;
// a worker of h.work. started is when it was due and lostFor how long the
// node had been lost then; the next attempt is scheduled from started.
func (h *Heal) attempt(name, addr string, started time.Time, lostFor time.Duration) {
	ctx, cancel := context.WithTimeout(h.ctx, h.attemptTimeout())
	err := h.n.Join(ctx, addr)
	cancel()
	if err != nil {
		log.Debugw("reconnect attempt failed", "node", h.self, "lost", name, "addr", addr, "err", err)
	} else {
		log.Infow("reconnect attempt reached a lost node", "node", h.self, "lost", name, "addr", addr)
	}
	h.mu.Lock()
	if r := h.nodes[name]; r != nil {
		r.trying = false
		r.attempts++
		r.lastErr = err
		if err != nil {
			r.backoff = h.nextBackoff(r.backoff, lostFor)
		} else {
			r.backoff = h.reconnectBase()
		}
		if r.nextTry.After(started) { // reset while it ran: keep the reset
			r.backoff = h.reconnectBase()
		} else {
			r.nextTry = started.Add(shorten(r.backoff))
		}
	}
	h.mu.Unlock()
	h.signal()
}

// attemptSeeds joins through the configured seeds; a worker of h.work,
// scheduled like attempt (lostFor: of the node lost last).
func (h *Heal) attemptSeeds(started time.Time, lostFor time.Duration) {
	ctx, cancel := context.WithTimeout(h.ctx, h.attemptTimeout())
	err := h.n.Join(ctx, h.cfg.Seeds...)
	cancel()
	h.mu.Lock()
	st := &h.st
	st.seedTrying = false
	if err != nil {
		st.seedBackoff = h.nextBackoff(st.seedBackoff, lostFor)
	} else {
		st.seedBackoff = h.reconnectBase()
	}
	if st.seedNext.After(started) {
		st.seedBackoff = h.reconnectBase()
	} else {
		st.seedNext = started.Add(shorten(st.seedBackoff))
	}
	h.mu.Unlock()
	h.signal()
}
