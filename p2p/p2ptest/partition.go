package p2ptest

import (
	"fmt"
	"math"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Partition cuts node a from node b in both directions: packets between
// them are dropped, stream dials fail with ErrUnreachable, open streams
// between them close, and their libp2p hosts are unlinked and
// disconnected. The cut holds for nodes started later under these names,
// until Heal. Partition(a, a) does nothing.
func (n *Network) Partition(a, b string) {
	n.change(fmt.Sprintf("partition %s | %s", a, b), func() {
		if a != b {
			n.cuts[pairKey(a, b)] = struct{}{}
		}
	})
}

// Split cuts every node of groupA from every node of groupB, as Partition
// does for each pair. Nodes in neither group keep their links.
func (n *Network) Split(groupA, groupB []string) {
	n.change(fmt.Sprintf("split %v | %v", groupA, groupB), func() {
		for _, a := range groupA {
			for _, b := range groupB {
				if a != b {
					n.cuts[pairKey(a, b)] = struct{}{}
				}
			}
		}
	})
}

// Isolate cuts node name from every other node, including nodes that
// start later, until Heal.
func (n *Network) Isolate(name string) {
	n.change("isolate "+name, func() { n.isolated[name] = struct{}{} })
}

// Drop makes each memberlist packet from node from to node to get lost
// with probability rate, decided by the seeded RNG; rate 0 removes the
// rule. Stream dials between the two fail with the probability that either
// direction loses a packet, and open streams are reliable (like TCP over a
// lossy link) unless rate is 1, which closes them. Drop does not touch
// libp2p: hosts stay linked and connected, as a frozen process's TCP
// connections stay open while its gossip goes unanswered; use Partition to
// cut libp2p too. Drop panics if rate is not in [0, 1].
func (n *Network) Drop(from, to string, rate float64) {
	if math.IsNaN(rate) || rate < 0 || rate > 1 {
		panic(fmt.Sprintf("p2ptest: drop rate %v of %s -> %s is not in [0, 1]", rate, from, to))
	}
	n.change(fmt.Sprintf("drop %s -> %s rate %v", from, to, rate), func() {
		if rate == 0 || from == to {
			delete(n.drops, [2]string{from, to})
			return
		}
		n.drops[[2]string{from, to}] = rate
	})
}

// Heal removes every cut, isolation and drop rule and relinks all libp2p
// hosts that a cut had unlinked. It does not reconnect anything: memberlist needs a new Join and
// libp2p a new dial, as after a real partition.
func (n *Network) Heal() {
	n.change("heal", func() {
		clear(n.cuts)
		clear(n.isolated)
		clear(n.drops)
	})
}

// Reachable reports whether a memberlist packet from node from to node to
// can get through at all: no cut between them and a drop rate below 1.
func (n *Network) Reachable(from, to string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return !n.blockedLocked(from, to) && n.drops[[2]string{from, to}] < 1
}

// change applies a partition table edit, then brings the mocknet links and
// the open streams in line with the new table.
func (n *Network) change(what string, edit func()) {
	n.opMu.Lock()
	defer n.opMu.Unlock()
	n.mu.Lock()
	edit()
	plan := n.planLinksLocked()
	severed := n.severedStreamsLocked()
	n.mu.Unlock()
	log.Infow("network change", "change", what)
	n.applyLinks(plan)
	closeStreams(severed)
}

// blocked reports a cut between from and to (cuts are symmetric).
// Callers hold mu.
func (n *Network) blockedLocked(from, to string) bool {
	if from == to {
		return false
	}
	if _, ok := n.isolated[from]; ok {
		return true
	}
	if _, ok := n.isolated[to]; ok {
		return true
	}
	_, ok := n.cuts[pairKey(from, to)]
	return ok
}

// streamSevered reports that no memberlist stream can live between a and
// b: a cut, or every packet lost one way. Callers hold mu.
func (n *Network) streamSeveredLocked(a, b string) bool {
	return n.blockedLocked(a, b) || n.drops[[2]string{a, b}] >= 1 || n.drops[[2]string{b, a}] >= 1
}

type linkOp struct {
	link   bool
	a, b   peer.ID
	ha, hb *Host
}

// planLinks lists the link changes that make the mocknet match the table,
// in a stable order, and records the new state. Callers hold mu and opMu.
func (n *Network) planLinksLocked() []linkOp {
	hs := n.sortedHostsLocked()
	var plan []linkOp
	for i, ha := range hs {
		for _, hb := range hs[i+1:] {
			k := idKey(ha.ID(), hb.ID())
			want := !ha.closing && !hb.closing && !n.blockedLocked(ha.name, hb.name)
			if want == n.linked[k] {
				continue
			}
			if want {
				n.linked[k] = true
			} else {
				delete(n.linked, k)
			}
			plan = append(plan, linkOp{link: want, a: ha.ID(), b: hb.ID(), ha: ha, hb: hb})
		}
	}
	return plan
}

// applyLinks carries out a plan on the mocknet. Callers hold opMu, not mu.
func (n *Network) applyLinks(plan []linkOp) {
	for _, op := range plan {
		if op.link {
			if _, err := n.mn.LinkPeers(op.a, op.b); err != nil {
				log.Warnw("link peers", "a", op.ha.name, "b", op.hb.name, "err", err)
			}
			continue
		}
		_ = n.mn.UnlinkPeers(op.a, op.b)
		_ = op.ha.inner.Network().ClosePeer(op.b)
		_ = op.hb.inner.Network().ClosePeer(op.a)
	}
}

// severedStreams takes the open streams whose ends can no longer talk off
// the books and returns them for closeStreams. Callers hold mu.
func (n *Network) severedStreamsLocked() []*stream {
	var out []*stream
	for s := range n.streams {
		if n.streamSeveredLocked(s.dialer.name, s.listener.name) {
			out = append(out, s)
		}
	}
	for _, s := range out {
		delete(n.streams, s)
		n.countLocked(s.dialer.name, s.listener.name, func(st *Stats) *uint64 { return &st.StreamsSevered })
	}
	slices.SortFunc(out, func(a, b *stream) int { return cmpUint(a.id, b.id) })
	return out
}

func pairKey(a, b string) [2]string {
	if b < a {
		a, b = b, a
	}
	return [2]string{a, b}
}

func idKey(a, b peer.ID) [2]peer.ID {
	if b < a {
		a, b = b, a
	}
	return [2]peer.ID{a, b}
}
