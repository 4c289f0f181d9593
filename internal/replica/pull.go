package replica

import (
	"maps"
	"slices"
	"time"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/crdt"
)

// Pulls: a replica that learns from a peer's digest that it lacks some
// origins' events asks for them, and takes each origin's gap from one peer
// at a time, not from every peer that has it (Phoenix.Tracker's transfer
// from one dominating peer). A node returning from a split hears from every
// node of the other side at once; each would otherwise send it the same
// difference.
//
//   - offers: per up peer, its latest digest and the origins it has that
//     this replica lacks and has not taken from it since;
//   - asks: the asks in flight; taking maps each origin to the one ask
//     that fetches it, so a second peer offering it is not asked;
//   - an ask's answer (or its peer going down, or pullTimeout) frees its
//     origins; the next plan takes what is still missing from the peer that
//     has the most of it, the origin's own node first on a tie;
//   - covers: waits until this replica took in what a peer's digest showed
//     (Sync's two halves).
type puller struct {
	known  map[string][]crdt.Digest // per up peer: digests it is known to hold, newest last
	offers map[string]*offer
	asks   map[uint64]*ask
	taking map[crdt.ReplicaID]uint64
	seq    uint64
	covers []*cover
}

type offer struct {
	digest  crdt.Digest
	origins map[crdt.ReplicaID]bool
}

type ask struct {
	peer    string
	origins []crdt.ReplicaID
	at      time.Time
}

// cover waits until none of need is still offered by peer: this replica
// took in (from peer or others) what peer's digest showed of them.
type cover struct {
	peer string
	need map[crdt.ReplicaID]bool
	done func()
}

func (p *puller) init() {
	p.known = map[string][]crdt.Digest{}
	p.offers = map[string]*offer{}
	p.asks = map[uint64]*ask{}
	p.taking = map[crdt.ReplicaID]uint64{}
}

// pullTimeout: an ask unanswered for this long (its answer was dropped, or
// its peer is stuck) is given up and its origins are planned again.
func (r *Replica[K, V]) pullTimeout() time.Duration {
	return max(2*r.cfg.SyncInterval, 10*time.Second)
}

// behindOf returns the origins of which digest g shows something this
// replica lacks, leaving out its own and purged incarnations.
func (r *Replica[K, V]) behindOf(g crdt.Digest) []crdt.ReplicaID {
	return slices.DeleteFunc(g.Ahead(r.m.Digest()), func(id crdt.ReplicaID) bool {
		return id == r.self || r.isPurged(id.Name, id.Epoch)
	})
}

// offered records a digest from peer from and plans the pulls it calls for.
// A digest from a node that is not up here (with that incarnation) is
// ignored.
func (r *Replica[K, V]) offered(from nodal.NodeRef, g crdt.Digest) {
	if inc, up := r.up[from.Name]; !up || inc != from.Incarnation {
		return
	}
	r.knownAt(from.Name, g)
	lack := r.behindOf(g)
	if len(lack) == 0 {
		delete(r.pl.offers, from.Name)
	} else {
		o := &offer{digest: g, origins: make(map[crdt.ReplicaID]bool, len(lack))}
		for _, id := range lack {
			o.origins[id] = true
		}
		r.pl.offers[from.Name] = o
	}
	r.plan(time.Now())
}

// plan drops what the offers no longer hold over this replica and asks,
// for each origin still missing and not being taken, one peer.
func (r *Replica[K, V]) plan(now time.Time) {
	if len(r.pl.offers) > 0 {
		mine := r.m.Digest()
		want := map[crdt.ReplicaID][]string{} // origin -> peers offering it
		for _, name := range slices.Sorted(maps.Keys(r.pl.offers)) {
			o := r.pl.offers[name]
			still := o.digest.Ahead(mine)
			for id := range o.origins {
				if !slices.Contains(still, id) || r.isPurged(id.Name, id.Epoch) {
					delete(o.origins, id)
				}
			}
			if len(o.origins) == 0 {
				delete(r.pl.offers, name)
				continue
			}
			for id := range o.origins {
				if _, busy := r.pl.taking[id]; !busy {
					want[id] = append(want[id], name)
				}
			}
		}
		byPeer := map[string][]crdt.ReplicaID{}
		for id, peers := range want {
			p := r.choosePeer(id, peers)
			byPeer[p] = append(byPeer[p], id)
		}
		for _, p := range slices.Sorted(maps.Keys(byPeer)) {
			ids := byPeer[p]
			slices.SortFunc(ids, crdt.ReplicaID.Compare)
			r.pl.seq++
			if !r.sendCtl(p, encodeAsk(r.pl.seq, ids, mine)) {
				continue // the offer stays: the next plan asks again
			}
			r.st.digestsSent.Add(1)
			r.pl.asks[r.pl.seq] = &ask{peer: p, origins: ids, at: now}
			for _, id := range ids {
				r.pl.taking[id] = r.pl.seq
			}
		}
	}
	r.checkCovers()
}

// maxKnown bounds the digests remembered per peer.
const maxKnown = 4

// knownAt records that node holds what digest g shows (its own digest, or
// this replica's digest it acknowledged holding).
func (r *Replica[K, V]) knownAt(node string, g crdt.Digest) {
	ks := r.pl.known[node]
	if len(ks) >= maxKnown {
		ks = slices.Delete(ks, 0, 1)
	}
	r.pl.known[node] = append(ks, g)
}

// mayLack reports whether node may lack something this replica has: true
// unless, for every origin, one digest node is known to hold has all of
// it that this replica has (a peer's state only grows, so what it held it
// holds). A peer never heard from may lack anything.
func (r *Replica[K, V]) mayLack(node string) bool {
	ks := r.pl.known[node]
	if len(ks) == 0 {
		return true
	}
	mine := r.m.Digest()
	common := mine.Ahead(ks[len(ks)-1])
	for i := len(ks) - 2; i >= 0 && len(common) > 0; i-- {
		ahead := mine.Ahead(ks[i])
		common = slices.DeleteFunc(common, func(id crdt.ReplicaID) bool { return !slices.Contains(ahead, id) })
	}
	return len(common) > 0
}

// choosePeer picks among peers (sorted) offering origin id the one whose
// digest has the most of it: the highest counter applied, then the
// origin's own node, then the one offering the most origins (fewer asks).
func (r *Replica[K, V]) choosePeer(id crdt.ReplicaID, peers []string) string {
	best, bestTop := "", uint64(0)
	for _, p := range peers {
		top := r.pl.offers[p].digest.Applied().Max(id)
		if best == "" || top > bestTop || (top == bestTop && r.preferPeer(id, p, best)) {
			best, bestTop = p, top
		}
	}
	return best
}

// preferPeer breaks a tie between two peers with as much of origin id.
func (r *Replica[K, V]) preferPeer(id crdt.ReplicaID, p, over string) bool {
	if (p == id.Name) != (over == id.Name) {
		return p == id.Name
	}
	return len(r.pl.offers[p].origins) > len(r.pl.offers[over].origins)
}

// answered takes in the answer to ask id from node: its origins are free
// again and taken from node's offer, and what is still missing is planned.
func (r *Replica[K, V]) answered(from string, id uint64, d *crdt.ORMap[K, V]) {
	r.traffic.of(from).entries.Add(r.joinRemote(d))
	if a := r.pl.asks[id]; a != nil && a.peer == from {
		delete(r.pl.asks, id)
		o := r.pl.offers[from]
		for _, origin := range a.origins {
			if r.pl.taking[origin] == id {
				delete(r.pl.taking, origin)
			}
			if o != nil {
				delete(o.origins, origin)
			}
		}
	}
	r.plan(time.Now())
}

// dropAsk frees the origins of ask id.
func (r *Replica[K, V]) dropAsk(id uint64) {
	a := r.pl.asks[id]
	if a == nil {
		return
	}
	delete(r.pl.asks, id)
	for _, origin := range a.origins {
		if r.pl.taking[origin] == id {
			delete(r.pl.taking, origin)
		}
	}
}

// peerGone forgets what node offered, gives its asks up and drops the
// covers on it; the origins it was asked for are planned from the others.
func (r *Replica[K, V]) peerGone(node string) {
	delete(r.pl.known, node)
	delete(r.pl.offers, node)
	for id, a := range r.pl.asks {
		if a.peer == node {
			r.dropAsk(id)
		}
	}
	r.pl.covers = slices.DeleteFunc(r.pl.covers, func(c *cover) bool { return c.peer == node })
	r.plan(time.Now())
}

// expireAsks gives up asks older than pullTimeout and plans again (also
// the offers whose ask could not be queued).
func (r *Replica[K, V]) expireAsks(now time.Time) {
	for id, a := range r.pl.asks {
		if now.Sub(a.at) >= r.pullTimeout() {
			log.Debugw("replica ask unanswered, asking again", "service", r.cfg.Service, "peer", a.peer, "origins", len(a.origins))
			r.dropAsk(id)
		}
	}
	if len(r.pl.offers) > 0 {
		r.plan(now)
	}
}

// forgetOrigin drops a purged incarnation from the offers (and so from the
// covers).
func (r *Replica[K, V]) forgetOrigin(id crdt.ReplicaID) {
	for _, o := range r.pl.offers {
		delete(o.origins, id)
	}
	r.checkCovers()
}

// addCover waits until this replica holds what node's offer shows now,
// then calls done (at once if nothing is missing).
func (r *Replica[K, V]) addCover(node string, done func()) {
	c := &cover{peer: node, need: map[crdt.ReplicaID]bool{}, done: done}
	if o := r.pl.offers[node]; o != nil {
		maps.Copy(c.need, o.origins)
	}
	r.pl.covers = append(r.pl.covers, c)
	r.checkCovers()
}

// checkCovers ends the covers whose peer offers none of their origins any
// more.
func (r *Replica[K, V]) checkCovers() {
	var ready []*cover
	r.pl.covers = slices.DeleteFunc(r.pl.covers, func(c *cover) bool {
		o := r.pl.offers[c.peer]
		for id := range c.need {
			if o == nil || !o.origins[id] {
				delete(c.need, id)
			}
		}
		if len(c.need) == 0 {
			ready = append(ready, c)
			return true
		}
		return false
	})
	for _, c := range ready {
		c.done()
	}
}
