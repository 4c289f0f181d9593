package registry

import (
	"hash/maphash"
	"slices"
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
// lookup: no allocation. Values are pids in 16 bytes, their node interned
// (see pidRef), with their claim's origin number.
//
// A name claimed by one origin only keeps its entry while that origin is
// hidden (its node is down here): reads leave out the entries of hidden
// origins, so hiding or showing a node's names is one flag (setHidden),
// not a write per name. Names with claims of several origins are settled
// again on such a flip (events.go).
type index struct {
	seed    maphash.Seed
	n       atomic.Int64           // entries, hidden ones included
	hiddenN atomic.Int64           // entries of hidden origins
	hidden  atomic.Pointer[[]bool] // by origin number: hidden here
	shards  [indexShards]indexShard

	// Engine goroutine only.
	origins map[crdt.ReplicaID]uint32 // origins with entries -> number
	ids     []crdt.ReplicaID          // by number: its origin
	counts  []int64                   // entries per origin number
	free    []uint32                  // numbers of origins without entries
}

type indexShard struct {
	mu sync.RWMutex
	m  map[string]holder
	_  [32]byte // keep shards' locks on different cache lines
}

// holder is a name's entry: its holder and the number of its claim's
// origin.
type holder struct {
	ref    pidRef
	origin uint32
}

func newIndex() *index {
	x := &index{seed: maphash.MakeSeed(), origins: map[crdt.ReplicaID]uint32{}}
	for i := range x.shards {
		x.shards[i].m = map[string]holder{}
	}
	x.hidden.Store(&[]bool{})
	return x
}

func (x *index) shard(name string) *indexShard {
	return &x.shards[maphash.String(x.seed, name)%indexShards]
}

// shown reports whether entries of origin number o are read.
func (x *index) shown(o uint32) bool {
	h := *x.hidden.Load()
	return int(o) >= len(h) || !h[o]
}

func (x *index) get(name string) (nodal.Pid, bool) {
	s := x.shard(name)
	s.mu.RLock()
	e, ok := s.m[name]
	s.mu.RUnlock()
	if !ok || !x.shown(e.origin) {
		return nodal.Pid{}, false
	}
	return e.ref.pid(), true
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
	return e.ref, ok && e.origin == o
}

// swap makes p, claimed by origin id, the holder of name (has) or removes
// name (!has), and returns the holder a read saw before (none if it was
// hidden). hidden says whether id is hidden, for an origin new here.
func (x *index) swap(name string, p pidRef, id crdt.ReplicaID, hidden, has bool) (old pidRef, had bool) {
	var o uint32
	if has {
		o = x.number(id, hidden)
	}
	s := x.shard(name)
	s.mu.Lock()
	e, was := s.m[name]
	switch {
	case has && (!was || e.origin != o || !e.ref.same(p)):
		if !was {
			x.n.Add(1)
		}
		s.m[name] = holder{p, o}
	case !has && was:
		x.n.Add(-1)
		delete(s.m, name)
	}
	s.mu.Unlock()
	had = was && x.shown(e.origin) // before count: it may free e's number
	if has && (!was || e.origin != o) {
		x.count(o, 1)
	}
	if was && (!has || e.origin != o) {
		x.count(e.origin, -1)
	}
	if !had {
		return pidRef{}, false
	}
	return e.ref, true
}

// number returns origin id's number, giving it one if it has none.
func (x *index) number(id crdt.ReplicaID, hidden bool) uint32 {
	if o, ok := x.origins[id]; ok {
		return o
	}
	var o uint32
	if n := len(x.free); n > 0 {
		o, x.free = x.free[n-1], x.free[:n-1]
	} else {
		o = uint32(len(x.counts))
		x.counts = append(x.counts, 0)
		x.ids = append(x.ids, crdt.ReplicaID{})
	}
	x.origins[id], x.ids[o] = o, id
	if hidden != !x.shown(o) {
		x.flag(o, hidden)
	}
	return o
}

// count adds d to origin number o's entries; an origin left without any
// gives its number back.
func (x *index) count(o uint32, d int64) {
	x.counts[o] += d
	if !x.shown(o) {
		x.hiddenN.Add(d)
	}
	if x.counts[o] > 0 {
		return
	}
	delete(x.origins, x.ids[o])
	x.ids[o] = crdt.ReplicaID{}
	if !x.shown(o) {
		x.flag(o, false)
	}
	x.free = append(x.free, o)
}

// flag sets origin number o's hidden flag (a new slice: readers hold the
// old one).
func (x *index) flag(o uint32, hidden bool) {
	h := slices.Clone(*x.hidden.Load())
	if int(o) >= len(h) {
		h = append(h, make([]bool, int(o)+1-len(h))...)
	}
	h[o] = hidden
	x.hidden.Store(&h)
}

// setHidden hides or shows the entries of origin id at once.
func (x *index) setHidden(id crdt.ReplicaID, hidden bool) {
	o, ok := x.origins[id]
	if !ok || hidden == !x.shown(o) {
		return
	}
	x.flag(o, hidden)
	if hidden {
		x.hiddenN.Add(x.counts[o])
	} else {
		x.hiddenN.Add(-x.counts[o])
	}
}

// all returns a copy of the index, name -> pid, without hidden entries.
func (x *index) all() map[string]nodal.Pid {
	out := make(map[string]nodal.Pid, x.len())
	h := *x.hidden.Load()
	for i := range x.shards {
		s := &x.shards[i]
		s.mu.RLock()
		for k, e := range s.m {
			if int(e.origin) >= len(h) || !h[e.origin] {
				out[k] = e.ref.pid()
			}
		}
		s.mu.RUnlock()
	}
	return out
}

func (x *index) len() int { return int(x.n.Load() - x.hiddenN.Load()) }
