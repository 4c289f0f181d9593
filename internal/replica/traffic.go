package replica

import (
	"sync"
	"sync/atomic"
)

// Traffic is what a replica exchanged with some nodes since each of them
// last came up: what a heal moved, once the nodes of the other side are
// back (the heal package reports it).
type Traffic struct {
	Bytes     uint64 // frame and push/pull state bytes, both ways
	Entries   uint64 // live entries taken in from those nodes' frames
	Conflicts uint64 // conflicts the service settled against their entries (State.CountConflict)
}

// peerTraffic counts one node's Traffic since it last came up.
type peerTraffic struct{ bytes, entries, conflicts atomic.Uint64 }

// trafficTable holds a peerTraffic per node that has sent or been sent a
// frame (one per node name this replica ever exchanged with).
type trafficTable struct{ m sync.Map } // node name -> *peerTraffic

func (t *trafficTable) of(node string) *peerTraffic {
	if p, ok := t.m.Load(node); ok {
		return p.(*peerTraffic)
	}
	p, _ := t.m.LoadOrStore(node, new(peerTraffic))
	return p.(*peerTraffic)
}

// reset starts node's count again; called when node comes up, before any
// frame of that connection is handled.
func (t *trafficTable) reset(node string) { t.m.Store(node, new(peerTraffic)) }

// TrafficSinceUp returns what this replica exchanged with nodes, summed,
// since each of them last came up (a node that never came up counts
// nothing).
func (r *Replica[K, V]) TrafficSinceUp(nodes ...string) Traffic {
	var t Traffic
	for _, n := range nodes {
		if v, ok := r.traffic.m.Load(n); ok {
			p := v.(*peerTraffic)
			t.Bytes += p.bytes.Load()
			t.Entries += p.entries.Load()
			t.Conflicts += p.conflicts.Load()
		}
	}
	return t
}

// CountConflict counts a conflict the service settled against an entry of
// node (its TrafficSinceUp's Conflicts).
func (s *State[K, V]) CountConflict(node string) { s.r.traffic.of(node).conflicts.Add(1) }
