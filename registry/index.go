package registry

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/nodal-go/nodal"
)

// indexShards is the number of independently locked parts of the read
// index, so that readers on different cores rarely share a lock.
const indexShards = 64

// index is the read side: each name's resolved holder among the visible
// claims, written by the engine's goroutine only, read by any goroutine.
// A read hashes the name, takes one shard's read lock and does one map
// lookup: no allocation. Values are pids in 16 bytes, their node interned
// (see pidRef).
type index struct {
	seed   maphash.Seed
	n      atomic.Int64
	shards [indexShards]indexShard
}

type indexShard struct {
	mu sync.RWMutex
	m  map[string]pidRef
	_  [32]byte // keep shards' locks on different cache lines
}

func newIndex() *index {
	x := &index{seed: maphash.MakeSeed()}
	for i := range x.shards {
		x.shards[i].m = map[string]pidRef{}
	}
	return x
}

func (x *index) shard(name string) *indexShard {
	return &x.shards[maphash.String(x.seed, name)%indexShards]
}

func (x *index) get(name string) (nodal.Pid, bool) {
	p, ok := x.ref(name)
	if !ok {
		return nodal.Pid{}, false
	}
	return p.pid(), true
}

func (x *index) ref(name string) (pidRef, bool) {
	s := x.shard(name)
	s.mu.RLock()
	p, ok := s.m[name]
	s.mu.RUnlock()
	return p, ok
}

// swap makes p the holder of name (has) or removes name (!has), and
// returns the holder before.
func (x *index) swap(name string, p pidRef, has bool) (old pidRef, had bool) {
	s := x.shard(name)
	s.mu.Lock()
	old, had = s.m[name]
	switch {
	case has && (!had || !old.same(p)):
		if !had {
			x.n.Add(1)
		}
		s.m[name] = p
	case !has && had:
		x.n.Add(-1)
		delete(s.m, name)
	}
	s.mu.Unlock()
	return old, had
}

// all returns a copy of the index, name -> pid.
func (x *index) all() map[string]nodal.Pid {
	out := make(map[string]nodal.Pid, x.len())
	for i := range x.shards {
		s := &x.shards[i]
		s.mu.RLock()
		for k, v := range s.m {
			out[k] = v.pid()
		}
		s.mu.RUnlock()
	}
	return out
}

func (x *index) len() int { return int(x.n.Load()) }
