package registry

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/crdt"
)

// indexShards is the number of independently locked parts of the read
// index, so that readers on different cores rarely share a lock.
const indexShards = 64

// index is the read side: each name's resolved holder among the visible
// claims, written by the engine's goroutine only, read by any goroutine.
// A read hashes the name, takes one shard's read lock and does one map
// lookup: no allocation. An entry is 16 bytes: its claim's origin (see
// origin) and the pid's ID. The origin gives the pid's node and
// incarnation, which are the origin's own: the replica refuses a claim
// whose pid is not of the node that wrote it (checkClaim).
//
// A name claimed by one origin only keeps its entry while that origin is
// hidden (its node is down here): reads leave out the entries of hidden
// origins, so hiding or showing a node's names is one flag (setHidden),
// not a write per name. Names with claims of several origins are settled
// again on such a flip (events.go).
type index struct {
	seed    maphash.Seed
	n       atomic.Int64 // entries, hidden ones included
	hiddenN atomic.Int64 // entries of hidden origins
	shards  [indexShards]indexShard

	// Engine goroutine only.
	origins map[crdt.ReplicaID]*origin // origins with entries
	last    *origin                    // the origin used last (a delta's names are mostly of one)
}

type indexShard struct {
	mu sync.RWMutex
	m  map[string]holder
	_  [32]byte // keep shards' locks on different cache lines
}

// origin is a replica (node and incarnation) with entries in the index,
// shared by its entries.
type origin struct {
	node   *nodeInc    // the node of the origin's pids: the origin itself
	hidden atomic.Bool // its entries are left out of reads
	id     crdt.ReplicaID
	count  int64 // entries (engine goroutine only)
}

// holder is a name's entry: its claim's origin and the pid's ID.
type holder struct {
	o  *origin
	id uint64
}

func (h holder) ref() pidRef { return pidRef{h.o.node, h.id} }

func newIndex() *index {
	x := &index{seed: maphash.MakeSeed(), origins: map[crdt.ReplicaID]*origin{}}
	for i := range x.shards {
		x.shards[i].m = map[string]holder{}
	}
	return x
}

func (x *index) shard(name string) *indexShard {
	return &x.shards[maphash.String(x.seed, name)%indexShards]
}

func (x *index) get(name string) (nodal.Pid, bool) {
	s := x.shard(name)
	s.mu.RLock()
	e, ok := s.m[name]
	s.mu.RUnlock()
	if !ok || e.o.hidden.Load() {
		return nodal.Pid{}, false
	}
	return nodal.Pid{Node: e.o.node.name, ID: e.id, Incarnation: e.o.node.inc}, true
}

// entryOf returns name's holder, hidden or not, and whether its claim is
// origin id's (engine goroutine).
func (x *index) entryOf(name string, id crdt.ReplicaID) (pidRef, bool) {
	o, ok := x.origins[id]
	if !ok {
		return pidRef{}, false
	}
	s := x.shard(name)
	s.mu.RLock()
	e, ok := s.m[name]
	s.mu.RUnlock()
	if !ok || e.o != o {
		return pidRef{}, false
	}
	return e.ref(), true
}

// swap makes p, claimed by origin id (p's node, checkClaim), the holder of
// name (has) or removes name (!has), and returns the holder a read saw
// before (none if it was hidden). hidden says whether id is hidden, for an
// origin new here.
func (x *index) swap(name string, p pidRef, id crdt.ReplicaID, hidden, has bool) (old pidRef, had bool) {
	var o *origin
	if has {
		o = x.origin(id, p.node, hidden)
	}
	s := x.shard(name)
	s.mu.Lock()
	e, was := s.m[name]
	switch {
	case has && (!was || e.o != o || e.id != p.id):
		if !was {
			x.n.Add(1)
		}
		s.m[name] = holder{o, p.id}
	case !has && was:
		x.n.Add(-1)
		delete(s.m, name)
	}
	s.mu.Unlock()
	had = was && !e.o.hidden.Load()
	if has && (!was || e.o != o) {
		x.count(o, 1)
	}
	if was && (!has || e.o != o) {
		x.count(e.o, -1)
	}
	if !had {
		return pidRef{}, false
	}
	return e.ref(), true
}

// origin returns origin id's record, making one (with node, the node of
// its pids) if it has none.
func (x *index) origin(id crdt.ReplicaID, node *nodeInc, hidden bool) *origin {
	if o := x.last; o != nil && o.id == id {
		return o
	}
	o, ok := x.origins[id]
	if !ok {
		o = &origin{node: node, id: id}
		o.hidden.Store(hidden)
		x.origins[id] = o
	}
	x.last = o
	return o
}

// count adds d to origin o's entries; an origin left without any is
// forgotten.
func (x *index) count(o *origin, d int64) {
	o.count += d
	if o.hidden.Load() {
		x.hiddenN.Add(d)
	}
	if o.count <= 0 {
		delete(x.origins, o.id)
		if x.last == o {
			x.last = nil
		}
	}
}

// setHidden hides or shows the entries of origin id at once.
func (x *index) setHidden(id crdt.ReplicaID, hidden bool) {
	o, ok := x.origins[id]
	if !ok || o.hidden.Load() == hidden {
		return
	}
	o.hidden.Store(hidden)
	if hidden {
		x.hiddenN.Add(o.count)
	} else {
		x.hiddenN.Add(-o.count)
	}
}

// all returns a copy of the index, name -> pid, without hidden entries.
func (x *index) all() map[string]nodal.Pid {
	out := make(map[string]nodal.Pid, x.len())
	for i := range x.shards {
		s := &x.shards[i]
		s.mu.RLock()
		for k, e := range s.m {
			if !e.o.hidden.Load() {
				out[k] = e.ref().pid()
			}
		}
		s.mu.RUnlock()
	}
	return out
}

func (x *index) len() int { return int(x.n.Load() - x.hiddenN.Load()) }
