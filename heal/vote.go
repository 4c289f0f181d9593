package heal

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nodal-go/nodal"
)

// Proposal is a value put to the vote (Propose), as a vote handler gets it.
type Proposal struct {
	From  string // the proposing node
	Topic string
	Value []byte
}

// VoteHandler answers a proposal: true votes for it. It runs on the heal
// service's voter goroutine, one proposal at a time (this node's own
// proposals too), and should return by ctx's deadline (the proposal's,
// capped at Config.VoteTimeout); a vote that is late is not counted.
type VoteHandler func(ctx context.Context, p Proposal) bool

// Outcome is how a vote ended.
type Outcome uint8

// Outcomes.
const (
	// Majority: more than half of the expected nodes voted yes.
	Majority Outcome = iota + 1
	// NoMajority: so many voted no or cannot answer (unreachable) that a
	// majority of yes is out of reach.
	NoMajority
	// Timeout: the deadline passed before either was known.
	Timeout
)

// String returns "majority", "no majority" or "timeout".
func (o Outcome) String() string {
	switch o {
	case Majority:
		return "majority"
	case NoMajority:
		return "no majority"
	case Timeout:
		return "timeout"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// VoteResult is a vote's outcome and who answered what.
type VoteResult struct {
	Outcome Outcome
	Voters  int      // the expected nodes (this one included): the majority is of these
	Yes     []string // sorted
	No      []string // sorted
	Silent  []string // expected nodes that did not answer (unreachable, late), sorted
}

// voteTable holds the votes this node proposed and the proposals it was
// asked to vote on.
type voteTable struct {
	mu      sync.Mutex
	next    uint64
	pending map[uint64]*pendingVote
	handler VoteHandler

	queue   chan voteJob
	dropped atomic.Uint64
}

type pendingVote struct {
	ch     chan ballot       // room for every voter
	voters map[string]uint64 // voters still expected to answer, with their incarnation
}

type ballot struct {
	node string
	yes  bool
}

type voteJob struct {
	from    nodal.NodeRef
	id      uint64
	p       Proposal
	timeout time.Duration
}

// voteQueue bounds the proposals waiting for this node's vote handler.
const voteQueue = 64

func (t *voteTable) init() {
	t.pending = map[uint64]*pendingVote{}
	t.queue = make(chan voteJob, voteQueue)
}

// HandleVotes sets the function that answers proposals on this node
// (replacing the earlier one). Without one, this node votes no.
func (h *Heal) HandleVotes(f VoteHandler) {
	h.votes.mu.Lock()
	h.votes.handler = f
	h.votes.mu.Unlock()
}

// Propose puts value to the vote of the expected nodes (the seed's
// consensus:propose): every reachable one's vote handler answers, this
// node's too. It returns as soon as the outcome is known: Majority once more
// than half of the expected nodes voted yes, NoMajority once that cannot
// happen any more. A vote never waits without a deadline: without one in
// ctx, Config.VoteTimeout applies; when it passes first the result's
// Outcome is Timeout and the error wraps ErrTimeout and ctx's error. The
// topic is at most 256 bytes and the value at most 64 KiB.
func (h *Heal) Propose(ctx context.Context, topic string, value []byte) (VoteResult, error) {
	if len(topic) > maxTopic || len(value) > maxValue {
		return VoteResult{}, fmt.Errorf("%w: vote topic at most %d bytes and value at most %d bytes", ErrBadOption, maxTopic, maxValue)
	}
	if h.stopped.Load() {
		return VoteResult{}, errStopped("heal: propose")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.cfg.VoteTimeout)
		defer cancel()
	}
	v := h.View()
	res := VoteResult{Voters: len(v.Expected)}
	answered := map[string]bool{}
	pv := &pendingVote{ch: make(chan ballot, len(v.Expected)), voters: map[string]uint64{}}
	h.votes.mu.Lock()
	h.votes.next++
	id := h.votes.next
	h.votes.pending[id] = pv
	for _, name := range v.Reachable {
		if name != h.self {
			pv.voters[name] = 0
		}
	}
	h.votes.mu.Unlock()
	defer func() {
		h.votes.mu.Lock()
		delete(h.votes.pending, id)
		h.votes.mu.Unlock()
	}()
	var timeout time.Duration
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	req := encodeVoteReq(id, topic, value, timeout)
	outstanding := 0
	for _, name := range v.Reachable {
		if name == h.self {
			continue
		}
		if err := h.n.SendService(ctx, name, ServiceName, req); err != nil {
			h.votes.mu.Lock()
			delete(pv.voters, name)
			h.votes.mu.Unlock()
			continue
		}
		outstanding++
	}
	// This node's own vote goes through the voter too, under the same
	// deadline.
	self := nodal.NodeRef{Name: h.self, Incarnation: h.n.Incarnation()}
	h.votes.mu.Lock()
	pv.voters[h.self] = 0
	h.votes.mu.Unlock()
	if h.votes.enqueue(h, voteJob{from: self, id: id, p: Proposal{From: h.self, Topic: topic, Value: value}, timeout: timeout}) {
		outstanding++
	}
	need := res.Voters/2 + 1
	finish := func(o Outcome) VoteResult {
		res.Outcome = o
		for _, e := range v.Expected {
			if !answered[e] {
				res.Silent = append(res.Silent, e)
			}
		}
		slices.Sort(res.Yes)
		slices.Sort(res.No)
		return res
	}
	for {
		switch {
		case len(res.Yes) >= need:
			return finish(Majority), nil
		case len(res.Yes)+outstanding < need:
			return finish(NoMajority), nil
		}
		select {
		case b := <-pv.ch:
			if ctx.Err() != nil {
				continue // late: the deadline case decides
			}
			outstanding--
			answered[b.node] = true
			if b.yes {
				res.Yes = append(res.Yes, b.node)
			} else {
				res.No = append(res.No, b.node)
			}
		case <-ctx.Done():
			r := finish(Timeout)
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return r, fmt.Errorf("heal: vote on %q: %w: %w", topic, ErrTimeout, ctx.Err())
			}
			return r, fmt.Errorf("heal: vote on %q: %w", topic, ctx.Err())
		case <-h.ctx.Done():
			return finish(Timeout), errStopped("heal: vote")
		}
	}
}

// vote runs this node's handler (no handler: no).
func (t *voteTable) vote(ctx context.Context, p Proposal) bool {
	t.mu.Lock()
	f := t.handler
	t.mu.Unlock()
	if f == nil {
		return false
	}
	return f(ctx, p)
}

// request queues a proposal from another node for the voter; a full queue
// drops it (the proposer counts this node as silent).
func (t *voteTable) request(h *Heal, from nodal.NodeRef, f frame) {
	t.enqueue(h, voteJob{from: from, id: f.id, p: Proposal{From: from.Name, Topic: f.topic, Value: f.value}, timeout: f.timeout})
}

// enqueue hands a job to the voter without blocking; false if the queue is
// full (the job is dropped and counted).
func (t *voteTable) enqueue(h *Heal, job voteJob) bool {
	select {
	case t.queue <- job:
		return true
	default:
		if t.dropped.Add(1) == 1 {
			log.Warnw("vote request dropped: the vote handler is behind (logged once)", "node", h.self, "from", job.from.Name)
		}
		return false
	}
}

// answer hands a vote to the proposal waiting for it.
func (t *voteTable) answer(from string, f frame) {
	t.mu.Lock()
	defer t.mu.Unlock()
	pv := t.pending[f.id]
	if pv == nil {
		return
	}
	if _, ok := pv.voters[from]; !ok {
		return // not asked, or answered already
	}
	delete(pv.voters, from)
	select {
	case pv.ch <- ballot{node: from, yes: f.yes}:
	default:
	}
}

// voter answers other nodes' proposals, one at a time; a worker of
// h.stopper.
func (h *Heal) voter() {
	for {
		select {
		case <-h.stopper.ShouldStop():
			return
		case job := <-h.votes.queue:
			timeout := job.timeout
			if timeout <= 0 || timeout > h.cfg.VoteTimeout {
				timeout = h.cfg.VoteTimeout
			}
			ctx, cancel := context.WithTimeout(h.ctx, timeout)
			yes := h.votes.vote(ctx, job.p)
			if job.from.Name == h.self {
				cancel()
				h.votes.answer(h.self, frame{id: job.id, yes: yes})
				continue
			}
			err := h.n.SendService(ctx, job.from.Name, ServiceName, encodeVoteResp(job.id, yes))
			cancel()
			if err != nil {
				log.Debugw("vote not delivered", "node", h.self, "to", job.from.Name, "err", err)
			}
		}
	}
}
