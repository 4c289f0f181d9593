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

// loop runs a step on every state change and every tick; a worker of
// h.stopper.
func (h *Heal) loop() {
	t := time.NewTicker(h.tick())
	defer t.Stop()
	for {
		select {
		case <-h.stopper.ShouldStop():
			return
		case <-h.wake:
		case <-t.C:
		}
		h.step(time.Now())
	}
}

// jitter returns d ±25 %.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d*3/4 + rand.N(d/2+1)
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
// and applies the strategy.
func (h *Heal) step(now time.Time) {
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
			r.backoff, r.attempts, r.lastErr = cfg.ReconnectInterval, 0, nil
			r.nextTry = now.Add(jitter(cfg.ReconnectInterval))
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
			anyLostNonMember = true
			if !r.trying && r.gossip != "" && !now.Before(r.nextTry) {
				r.trying = true
				name, addr := name, r.gossip
				h.work.RunWorker(func() { h.attempt(name, addr) })
			}
		}
	}

	// Seeds, while a node is lost.
	if anyLostNonMember && len(cfg.Seeds) > 0 && !st.seedTrying {
		if st.seedNext.IsZero() {
			st.seedBackoff = cfg.ReconnectInterval
			st.seedNext = now.Add(jitter(cfg.ReconnectInterval))
		}
		if !now.Before(st.seedNext) {
			st.seedTrying = true
			h.work.RunWorker(h.attemptSeeds)
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

// attemptTimeout bounds one reconnect attempt.
func (h *Heal) attemptTimeout() time.Duration { return max(h.cfg.ReconnectInterval, 5*time.Second) }

// attempt tries to join a lost node through its last known gossip address;
// a worker of h.work.
func (h *Heal) attempt(name, addr string) {
	ctx, cancel := context.WithTimeout(h.ctx, h.attemptTimeout())
	err := h.n.Join(ctx, addr)
	cancel()
	if err != nil {
		log.Debugw("reconnect attempt failed", "node", h.self, "lost", name, "addr", addr, "err", err)
	} else {
		log.Infow("reconnect attempt reached a lost node", "node", h.self, "lost", name, "addr", addr)
	}
	now := time.Now()
	h.mu.Lock()
	if r := h.nodes[name]; r != nil {
		r.trying = false
		r.attempts++
		r.lastErr = err
		if err != nil {
			r.backoff = min(max(2*r.backoff, h.cfg.ReconnectInterval), h.cfg.ReconnectMaxInterval)
		} else {
			r.backoff = h.cfg.ReconnectInterval
		}
		r.nextTry = now.Add(jitter(r.backoff))
	}
	h.mu.Unlock()
	h.signal()
}

// attemptSeeds joins through the configured seeds; a worker of h.work.
func (h *Heal) attemptSeeds() {
	ctx, cancel := context.WithTimeout(h.ctx, h.attemptTimeout())
	err := h.n.Join(ctx, h.cfg.Seeds...)
	cancel()
	now := time.Now()
	h.mu.Lock()
	st := &h.st
	st.seedTrying = false
	if err != nil {
		st.seedBackoff = min(max(2*st.seedBackoff, h.cfg.ReconnectInterval), h.cfg.ReconnectMaxInterval)
	} else {
		st.seedBackoff = h.cfg.ReconnectInterval
	}
	st.seedNext = now.Add(jitter(st.seedBackoff))
	h.mu.Unlock()
	h.signal()
}
