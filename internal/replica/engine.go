package replica

import (
	"errors"
	"slices"
	"time"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/crdt"
)

// maxBatch bounds the local operations joined into one pushed delta.
const maxBatch = 4096

// maxSpare bounds the change buffer kept for the next turn.
const maxSpare = 1 << 16

// pushCoalesce: local deltas made within this time of the last push wait
// for the next one, so that a stream of operations (even sequential ones)
// goes out in few frames; an operation after a quiet spell goes at once.
const pushCoalesce = 200 * time.Microsecond

// run is the engine's goroutine. Each turn holds r.mu, which an Update
// that finds the engine idle takes to run its operation on its own
// goroutine (Update).
func (r *Replica[K, V]) run() {
	tick := time.NewTicker(housekeeping)
	defer tick.Stop()
	defer r.pushTimer.Stop()
	for {
		select {
		case <-r.stopper.ShouldStop():
			r.failOps()
			return
		case <-r.wake:
			r.mu.Lock()
			r.drainQueue()
		case o := <-r.ops:
			r.mu.Lock()
			r.catchUp()
			r.runOp(o)
			for range maxBatch - 1 {
				select {
				case o := <-r.ops:
					r.catchUp()
					r.runOp(o)
					continue
				default:
				}
				break
			}
		case now := <-tick.C:
			r.mu.Lock()
			r.housekeep(now)
		case <-r.pushTimer.C:
			r.mu.Lock()
			r.pushArmed = false
			r.pushOut()
		}
		r.flush()
		r.mu.Unlock()
	}
}

func (r *Replica[K, V]) failOps() {
	for {
		select {
		case o := <-r.ops:
			o.done <- ErrStopped
		default:
			return
		}
	}
}

// runOp runs a local operation; its caller is told after the turn's flush,
// so that OnChange has seen its changes when Update returns.
func (r *Replica[K, V]) runOp(o op[K, V]) {
	r.done = append(r.done, opResult{o.done, o.fn(&r.state)})
}

// flush reports changes (OnChange may make more), pushes the batched local
// delta to every peer and refreshes the push/pull digest.
func (r *Replica[K, V]) flush() {
	r.report()
	for i, d := range r.done {
		d.done <- d.err
		r.done[i] = opResult{}
	}
	r.done = r.done[:0]
	for i, c := range r.synced {
		close(c)
		r.synced[i] = nil
	}
	r.synced = r.synced[:0]
	if r.out == nil {
		return
	}
	if since := time.Since(r.lastPush); since >= pushCoalesce || r.out.LiveLen() >= maxBatch {
		r.pushOut()
	} else if !r.pushArmed {
		r.pushArmed = true
		r.pushTimer.Reset(pushCoalesce - since)
	}
}

// growPending makes room for n more pending changes, at least doubling
// the buffer when it must grow: a turn that joins many deltas copies its
// changes a few times, not once per delta (slices.Grow alone allocates
// exactly what a delta needs when that exceeds twice the buffer).
func (r *Replica[K, V]) growPending(n int) {
	if len(r.pending)+n > cap(r.pending) {
		r.pending = slices.Grow(r.pending, max(n, cap(r.pending)))
	}
}

// report hands the pending changes to OnChange (what it makes comes in
// the next round, until none is left).
func (r *Replica[K, V]) report() {
	for len(r.pending) > 0 {
		cs := r.pending
		r.pending = r.spare[:0] // what OnChange makes goes to the other buffer
		r.spare = nil
		if r.cfg.OnChange != nil {
			r.cfg.OnChange(&r.state, cs)
		}
		if cap(cs) <= maxSpare {
			clear(cs)
			r.spare = cs[:0]
		}
	}
}

// pushOut sends the batched local delta to every peer.
func (r *Replica[K, V]) pushOut() {
	if r.out == nil {
		return
	}
	d, entries := r.out, uint64(r.out.LiveLen())
	r.out = nil
	r.lastPush = time.Now()
	defer r.recycle(d)
	peers := r.peers()
	if len(peers) == 0 {
		return
	}
	b := r.encodePush(d, int(entries))
	for _, p := range peers {
		if r.send(p, b) {
			r.st.deltasSent.Add(1)
			r.st.entriesSent.Add(entries)
		} else {
			r.behind[p] = true
		}
	}
}

// recycle keeps d, a pushed delta, emptied for the next local mutations
// (its entry buffer is reused), unless that buffer is larger than a batch.
func (r *Replica[K, V]) recycle(d *crdt.ORMap[K, V]) {
	if d.LiveLen() <= 2*maxBatch {
		d.Reset()
		r.spareOut = d
	}
}

// encodePush encodes d, a push of entries live entries, into a buffer
// sized by the bytes per entry of the last push.
func (r *Replica[K, V]) encodePush(d *crdt.ORMap[K, V], entries int) []byte {
	b := encodeDelta(d, 64+entries*r.pushPerEntry)
	if entries > 0 {
		r.pushPerEntry = (len(b)+entries-1)/entries + 1 // room for a little longer keys
	}
	return b
}

// sendCtl sends a frame other than a push, after the pending push, so that
// a peer never sees it before this node's earlier mutations.
func (r *Replica[K, V]) sendCtl(node string, b []byte) bool {
	r.pushOut()
	return r.send(node, b)
}

// send queues a frame to node without blocking; false if it could not.
func (r *Replica[K, V]) send(node string, b []byte) bool {
	if err := r.n.TrySendService(node, r.cfg.Service, b); err != nil {
		r.st.queueDrops.Add(1)
		if !errors.Is(err, nodal.ErrQueueFull) {
			log.Debugw("replica frame not sent", "service", r.cfg.Service, "to", node, "err", err)
		}
		return false
	}
	r.st.bytesSent.Add(uint64(len(b)))
	r.traffic.of(node).bytes.Add(uint64(len(b)))
	return true
}

func (r *Replica[K, V]) sendDelta(node string, d *crdt.ORMap[K, V]) {
	if isEmpty(d) {
		return
	}
	if r.sendCtl(node, encodeDelta(d, 0)) {
		r.st.deltasSent.Add(1)
		r.st.entriesSent.Add(uint64(len(d.LiveDots())))
	}
}

// exchange sends node this replica's digest, so that node pulls what it
// lacks; with digestAnswer, node sends its digest back when this replica
// lacks something, so that this one pulls in turn. Both ends of a new
// connection send theirs, so they need no answer.
func (r *Replica[K, V]) exchange(node string, flags byte) {
	if r.sendCtl(node, encodeDigest(flags, r.m.Digest())) {
		r.st.digestsSent.Add(1)
		delete(r.behind, node)
	}
}

func isEmpty[K comparable, V any](d *crdt.ORMap[K, V]) bool {
	return d.Len() == 0 && len(d.Context().Replicas()) == 0
}

func (r *Replica[K, V]) refreshGossip() {
	b := encodeGossip(r.m.Digest())
	r.gossip.Store(&b)
}

// housekeep retries peers a push missed, runs the periodic exchange and
// purges nodes down for longer than PermdownPeriod.
func (r *Replica[K, V]) housekeep(now time.Time) {
	if r.dirty { // the push/pull digest follows within a housekeeping tick
		r.dirty = false
		r.refreshGossip()
	}
	for p := range r.behind {
		if _, up := r.up[p]; !up || !r.serving[p] {
			delete(r.behind, p)
			continue
		}
		r.exchange(p, digestAnswer)
	}
	r.expireAsks(now)
	if now.Sub(r.lastSync) < r.cfg.SyncInterval {
		return
	}
	r.lastSync = now
	if peers := r.peers(); len(peers) > 0 {
		r.exchange(peers[r.rng.IntN(len(peers))], digestAnswer)
	}
	// Origins of nodes that are not up start their permanent-down clock
	// (also those relayed from nodes this node never saw).
	for _, id := range r.m.Context().Replicas() {
		if id == r.self {
			continue
		}
		if _, up := r.up[id.Name]; !up {
			if _, ok := r.downSince[id.Name]; !ok {
				r.downSince[id.Name] = now
			}
		}
	}
	for name, since := range r.downSince {
		if now.Sub(since) < r.cfg.PermdownPeriod {
			continue
		}
		delete(r.downSince, name)
		for _, id := range r.m.Context().Replicas() {
			if id.Name == name && id != r.self {
				r.purge(id, false)
			}
		}
	}
}

// purge forgets incarnation id and remembers it as purged.
func (r *Replica[K, V]) purge(id crdt.ReplicaID, final bool) {
	if id == r.self {
		return
	}
	marks := r.purged[id.Name]
	found := false
	for i := range marks {
		if marks[i].epoch == id.Epoch {
			marks[i].final = marks[i].final || final
			found = true
		}
	}
	if !found {
		if len(marks) >= maxPurgeMarks {
			marks = slices.Delete(marks, 0, 1)
		}
		marks = append(marks, purgeMark{epoch: id.Epoch, final: final})
	}
	r.purged[id.Name] = marks
	if !r.m.Mentions(id) {
		return
	}
	shown := r.visible(id)
	ch := r.m.Purge(id)
	r.st.purged.Add(1)
	r.dirty = true
	if shown || r.cfg.OnVisibility != nil {
		r.growPending(len(ch.Values))
		for _, vc := range ch.Values {
			r.pending = append(r.pending, Change[K, V]{Op: vc.Op, Key: vc.Key, Value: vc.Value, Dot: vc.Dot, Reason: Purged, Hidden: !shown})
		}
	}
	log.Debugw("replica purged an incarnation", "service", r.cfg.Service, "replica", id.String(), "final", final, "entries", len(ch.Values))
	r.forgetOrigin(id)
}

// catchUp handles the events queued so far, before a local operation runs:
// an Update sees every frame, node and member event delivered to the
// service before it was called (a reconciler that runs Sync once a node's
// NodeUp has been delivered syncs with that node), whether the engine's
// goroutine or the caller runs it. What they changed is reported to
// OnChange before the operation runs, as when they had a turn of their
// own: the service has settled them when the operation reads its state,
// and its watchers see them before the operation's changes.
func (r *Replica[K, V]) catchUp() {
	if r.queued.Load() {
		r.drainQueue()
		r.report()
	}
}

// drainQueue handles every queued event.
func (r *Replica[K, V]) drainQueue() {
	r.qmu.Lock()
	q := r.queue
	r.queue = nil
	r.queueBytes = 0
	r.queued.Store(false)
	r.qmu.Unlock()
	members := false
	for i := range q {
		members = members || q[i].kind != evFrame
		r.handle(&q[i])
		q[i] = event[K, V]{}
	}
	if members {
		p := r.peers()
		r.peerList.Store(&p)
	}
}

func (r *Replica[K, V]) handle(ev *event[K, V]) {
	switch ev.kind {
	case evUp:
		r.nodeUp(ev.from)
	case evDown:
		r.nodeDown(ev.from)
	case evMember:
		r.memberEvent(ev.member)
	case evFrame:
		r.handleFrame(ev.from, &ev.frame)
	}
}

func (r *Replica[K, V]) nodeUp(ref nodal.NodeRef) {
	if r.cfg.OnVisibility != nil {
		r.report() // what came before is seen with the visibility before
	}
	r.up[ref.Name] = ref.Incarnation
	delete(r.downSince, ref.Name)
	// An incarnation purged for being down too long is a fresh replica
	// when it comes back.
	r.purged[ref.Name] = slices.DeleteFunc(r.purged[ref.Name], func(p purgeMark) bool {
		return p.epoch == ref.Incarnation && !p.final
	})
	if len(r.purged[ref.Name]) == 0 {
		delete(r.purged, ref.Name)
	}
	// Any other incarnation of the node is gone for good.
	for _, id := range r.m.Context().Replicas() {
		if id.Name == ref.Name && id.Epoch != ref.Incarnation {
			r.purge(id, true)
		}
	}
	r.show(crdt.ReplicaID{Name: ref.Name, Epoch: ref.Incarnation}, true)
	if r.serving[ref.Name] {
		r.exchange(ref.Name, 0)
	}
}

func (r *Replica[K, V]) nodeDown(ref nodal.NodeRef) {
	if inc, ok := r.up[ref.Name]; !ok || inc != ref.Incarnation {
		return
	}
	id := crdt.ReplicaID{Name: ref.Name, Epoch: ref.Incarnation}
	if r.cfg.OnVisibility != nil {
		r.report()
		delete(r.up, ref.Name)
		r.show(id, false)
	} else {
		r.show(id, false)
		delete(r.up, ref.Name)
	}
	delete(r.behind, ref.Name)
	r.downSince[ref.Name] = time.Now()
	r.dropFromSyncs(ref.Name)
	r.peerGone(ref.Name)
}

// show reports origin id's entries shown (its node came up) or hidden (it
// went down): to OnVisibility once, or entry by entry to OnChange. With
// OnVisibility the visibility has changed already; without, the changes
// are made with it.
func (r *Replica[K, V]) show(id crdt.ReplicaID, visible bool) {
	if r.cfg.OnVisibility != nil {
		if r.m.Mentions(id) {
			r.cfg.OnVisibility(&r.state, id, visible)
		}
		return
	}
	op, why := crdt.Added, NodeUp
	if !visible {
		op, why = crdt.Removed, NodeDown
	}
	for k, s := range r.m.ByReplica(id) {
		r.pending = append(r.pending, Change[K, V]{Op: op, Key: k, Value: s.Value, Dot: s.Dot, Reason: why})
	}
}

func (r *Replica[K, V]) memberEvent(ev nodal.MemberEvent) {
	name := ev.Member.Name
	switch ev.Kind {
	case nodal.MemberJoined, nodal.MemberUpdated:
		was := r.serving[name]
		now := slices.Contains(ev.Member.Services, r.cfg.Service)
		if now {
			r.serving[name] = true
		} else {
			delete(r.serving, name)
			r.dropFromSyncs(name)
			r.peerGone(name)
		}
		if now && !was {
			if _, up := r.up[name]; up {
				r.exchange(name, 0)
			}
		}
	case nodal.MemberLeft:
		delete(r.serving, name)
		r.dropFromSyncs(name)
		r.peerGone(name)
		r.purge(crdt.ReplicaID{Name: name, Epoch: ev.Member.Incarnation}, true)
	case nodal.MemberReplaced:
		r.purge(crdt.ReplicaID{Name: name, Epoch: ev.OldIncarnation}, true)
	}
}

// startSync sends a sync request to every peer; the wait ends when, for
// each, this replica took in what its answer's digest showed and the peer
// acknowledged it took in what the request's digest showed, or the peer
// went away.
func (r *Replica[K, V]) startSync() (*syncWait, uint64) {
	r.syncID++
	id := r.syncID
	w := &syncWait{peers: map[string]int{}, sent: map[string]crdt.Digest{}, done: make(chan struct{})}
	peers := r.peers()
	if len(peers) > 0 {
		g := r.m.Digest()
		full, bare := encodeSync(kindSyncReq, id, &g), encodeSync(kindSyncReq, id, nil)
		for _, p := range peers {
			if !r.mayLack(p) { // known to hold all this replica has: no digest, no ack
				if r.sendCtl(p, bare) {
					w.peers[p] = 1 // covered
				}
				continue
			}
			if r.sendCtl(p, full) {
				r.st.digestsSent.Add(1)
				w.peers[p] = 2 // covered, acknowledged
				w.sent[p] = g
			}
		}
	}
	if len(w.peers) == 0 {
		close(w.done)
		return w, id
	}
	r.syncs[id] = w
	return w, id
}

// syncAnswered counts one of the two halves of node's part in sync id.
func (r *Replica[K, V]) syncAnswered(id uint64, node string) {
	w := r.syncs[id]
	if w == nil || w.peers[node] == 0 {
		return
	}
	if w.peers[node]--; w.peers[node] > 0 {
		return
	}
	delete(w.peers, node)
	if len(w.peers) == 0 {
		// Told after the turn's flush, so that OnChange has settled what
		// the sync brought (a heal reads the conflicts it counted).
		r.synced = append(r.synced, w.done)
		delete(r.syncs, id)
	}
}

func (r *Replica[K, V]) dropFromSyncs(node string) {
	for id, w := range r.syncs {
		if w.peers[node] > 0 {
			w.peers[node] = 1
			r.syncAnswered(id, node)
		}
	}
}

func (r *Replica[K, V]) handleFrame(from nodal.NodeRef, f *frame[K, V]) {
	if r.isPurged(from.Name, from.Incarnation) && from.Name != r.self.Name {
		r.st.dropped.Add(1)
		return
	}
	switch f.kind {
	case kindDelta:
		r.traffic.of(from.Name).entries.Add(r.joinRemote(f.delta))
		r.recycleIn(f.delta)
	case kindDigest:
		r.offered(from, f.digest)
		if f.flags&digestAnswer != 0 && len(r.m.Digest().Ahead(f.digest)) > 0 {
			r.exchange(from.Name, 0)
		}
	case kindGossip:
		if inc, up := r.up[from.Name]; !up || inc != from.Incarnation || !r.serving[from.Name] {
			return
		}
		// Push/pull runs both ways, but a state can lag the replica by a
		// housekeeping tick: answer a peer that lacks something.
		r.offered(from, f.digest)
		if len(r.m.Digest().Ahead(f.digest)) > 0 {
			r.exchange(from.Name, 0)
		}
	case kindAsk:
		d := r.m.DeltaForOrigins(f.digest, f.origins)
		if r.sendCtl(from.Name, encodeAnswer(f.id, d)) {
			r.st.deltasSent.Add(1)
			r.st.entriesSent.Add(uint64(len(d.LiveDots())))
		}
		r.offered(from, f.digest) // the asker may have what this one lacks
	case kindAnswer:
		r.answered(from.Name, f.id, f.delta)
	case kindSyncReq:
		node, id := from.Name, f.id
		if f.flags == withDigest {
			r.offered(from, f.digest)
		}
		if !r.mayLack(node) {
			r.sendCtl(node, encodeSync(kindSyncDigest, id, nil))
		} else {
			g := r.m.Digest()
			if r.sendCtl(node, encodeSync(kindSyncDigest, id, &g)) {
				r.st.digestsSent.Add(1)
			}
		}
		if f.flags == withDigest {
			r.addCover(node, func() { r.sendCtl(node, encodeSyncAck(id)) })
		}
	case kindSyncDigest:
		w := r.syncs[f.id]
		if f.flags == withDigest {
			r.offered(from, f.digest)
		}
		if w == nil || w.peers[from.Name] == 0 {
			return
		}
		node, id := from.Name, f.id
		if f.flags == withDigest {
			r.addCover(node, func() { r.syncAnswered(id, node) })
		} else {
			r.syncAnswered(id, node)
		}
	case kindSyncAck:
		if w := r.syncs[f.id]; w != nil {
			if g, ok := w.sent[from.Name]; ok {
				r.knownAt(from.Name, g)
			}
		}
		r.syncAnswered(f.id, from.Name)
	case kindNotice:
		if r.cfg.OnNotice != nil {
			r.cfg.OnNotice(&r.state, from, f.notice)
		}
	}
}

// joinRemote joins a delta from another node, drops what it carries of
// purged incarnations, and reports the visible changes.
func (r *Replica[K, V]) joinRemote(d *crdt.ORMap[K, V]) (added uint64) {
	r.st.deltasRecv.Add(1)
	var stale []crdt.ReplicaID
	for _, id := range d.Context().Replicas() {
		if id != r.self && r.isPurged(id.Name, id.Epoch) {
			stale = append(stale, id)
		}
	}
	r.joined = r.m.JoinAppend(r.joined[:0], d)
	for _, id := range stale {
		r.m.PurgeReplica(id)
		r.st.dropped.Add(1)
	}
	r.growPending(len(r.joined))
	var last crdt.ReplicaID // a delta's entries are mostly of one origin
	shown := false
	for i, vc := range r.joined {
		if len(stale) > 0 && slices.Contains(stale, vc.Dot.Replica) {
			continue
		}
		if vc.Op == crdt.Added {
			added++
		}
		if i == 0 || vc.Dot.Replica != last {
			last, shown = vc.Dot.Replica, r.visible(vc.Dot.Replica)
		}
		if shown {
			r.pending = append(r.pending, Change[K, V]{Op: vc.Op, Key: vc.Key, Value: vc.Value, Dot: vc.Dot, Reason: Remote})
		} else if r.cfg.OnVisibility != nil {
			r.pending = append(r.pending, Change[K, V]{Op: vc.Op, Key: vc.Key, Value: vc.Value, Dot: vc.Dot, Reason: Remote, Hidden: true})
		}
	}
	if cap(r.joined) > 1<<16 { // a large delta's buffer is not kept
		r.joined = nil
	} else {
		clear(r.joined) // keys and values held no longer than needed
	}
	r.st.entriesRecv.Add(added)
	r.dirty = true
	return added
}
