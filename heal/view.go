package heal

import (
	"slices"
	"time"
)

// View is the cluster as this node sees it now (the seed's
// detect_partition and monitor_cluster in one call).
type View struct {
	Self      string
	Expected  []string // the expected nodes, this one included, sorted
	Reachable []string // the expected nodes this node is connected to, itself included, sorted
	// Unreachable are the expected nodes this node cannot reach and that
	// did not leave, sorted by name.
	Unreachable []Lost
	Left        []string // expected nodes that left gracefully, sorted
	Refused     []string // nodes whose Settings differ from this node's, sorted
	// Partitioned: a PartitionDetected was reported and not every node
	// reported missing is back yet.
	Partitioned bool
	Syncing     bool // a reconcile round runs
	Majority    bool // HasMajority
	Paused      bool // Paused
	Decision    *Decision
	Heals       Heals // the heals this node reported since it started
}

// Heals sums the Healed events a node reported: what its heals moved, for
// a report or a test that has no subscription of its own.
type Heals struct {
	Count    int      // Healed events
	Exchange Exchange // their exchanges, summed
	Last     *Healed  // the latest, nil before the first
}

// Lost is an expected node this node cannot reach.
type Lost struct {
	Node  string
	Since time.Time // when this node lost it
	// Member: the membership still counts it alive (failure detection
	// still hears from it through other nodes), so the others reach it and
	// only this node does not: a partial partition.
	Member bool
	// ReachedBy are the nodes that report a connection to it, sorted.
	ReachedBy  []string
	GossipAddr string // its last known gossip address, where it is tried
	Attempts   int    // reconnect attempts since it was lost
	LastError  string // the last attempt's error, if any
}

// View returns the current view.
func (h *Heal) View() View {
	h.mu.Lock()
	defer h.mu.Unlock()
	v := View{Self: h.self, Expected: []string{h.self}, Reachable: []string{h.self},
		Partitioned: len(h.st.missing) > 0, Syncing: h.st.syncing, Paused: h.pausedLocked()}
	if h.st.decision != nil {
		d := *h.st.decision
		v.Decision = &d
	}
	v.Heals = h.st.heals
	if l := v.Heals.Last; l != nil {
		c := *l
		v.Heals.Last = &c
	}
	for name, r := range h.nodes {
		if r.refused {
			v.Refused = append(v.Refused, name)
		}
		if !r.expected() {
			continue
		}
		v.Expected = append(v.Expected, name)
		switch {
		case r.connected:
			v.Reachable = append(v.Reachable, name)
		case r.left:
			v.Left = append(v.Left, name)
		default:
			l := Lost{Node: name, Since: r.since, Member: r.member, GossipAddr: r.gossip, Attempts: r.attempts}
			if r.lastErr != nil {
				l.LastError = r.lastErr.Error()
			}
			for pname, p := range h.nodes {
				if p.connected && slices.Contains(p.reach, name) {
					l.ReachedBy = append(l.ReachedBy, pname)
				}
			}
			slices.Sort(l.ReachedBy)
			v.Unreachable = append(v.Unreachable, l)
		}
	}
	slices.Sort(v.Expected)
	slices.Sort(v.Reachable)
	slices.Sort(v.Left)
	slices.Sort(v.Refused)
	slices.SortFunc(v.Unreachable, func(a, b Lost) int {
		if a.Node < b.Node {
			return -1
		}
		if a.Node > b.Node {
			return 1
		}
		return 0
	})
	v.Majority = 2*len(v.Reachable) > len(v.Expected)
	return v
}

// UnreachableNames returns the names of v.Unreachable.
func (v View) UnreachableNames() []string {
	out := make([]string, 0, len(v.Unreachable))
	for _, l := range v.Unreachable {
		out = append(out, l.Node)
	}
	return out
}
