package registry

import (
	"hash/maphash"
	"sync"

	"github.com/nodal-go/nodal"
)

// indexShards is the number of independently locked parts of the read
// index.
const indexShards = 64

// index is the read side: each name's resolved winner among the visible
// claims, written by the engine's goroutine, read by any. A read takes one
// shard's read lock and one map lookup: no allocation.
type index struct {
	seed   maphash.Seed
	shards [indexShards]indexShard
}

type indexShard struct {
	mu sync.RWMutex
	m  map[string]Registration
	_  [24]byte // keep shards' locks on different cache lines
}

func newIndex() *index {
	x := &index{seed: maphash.MakeSeed()}
	for i := range x.shards {
		x.shards[i].m = map[string]Registration{}
	}
	return x
}

func (x *index) shard(name string) *indexShard {
	return &x.shards[maphash.String(x.seed, name)%indexShards]
}

func (x *index) get(name string) (Registration, bool) {
	s := x.shard(name)
	s.mu.RLock()
	r, ok := s.m[name]
	s.mu.RUnlock()
	return r, ok
}

func (x *index) set(name string, r Registration) {
	s := x.shard(name)
	s.mu.Lock()
	s.m[name] = r
	s.mu.Unlock()
}

func (x *index) del(name string) {
	s := x.shard(name)
	s.mu.Lock()
	delete(s.m, name)
	s.mu.Unlock()
}

// all returns a copy of the index, name -> pid.
func (x *index) all() map[string]nodal.Pid {
	out := map[string]nodal.Pid{}
	for i := range x.shards {
		s := &x.shards[i]
		s.mu.RLock()
		for k, v := range s.m {
			out[k] = v.Pid
		}
		s.mu.RUnlock()
	}
	return out
}

func (x *index) len() int {
	n := 0
	for i := range x.shards {
		s := &x.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
