package heal

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Decision is what the split-brain strategy decided for this node's side
// of a split, once the split had stayed unchanged for StableAfter.
type Decision struct {
	At        time.Time
	Strategy  Strategy
	Survive   bool     // this side goes on; false: it loses and Action applies
	Reason    string   // why, in words
	Reachable []string // the expected nodes on this side, this node included, sorted
	Missing   []string // the expected nodes on other sides, sorted
	Action    Action   // what a losing node does
}

// String describes the decision in one line.
func (d Decision) String() string {
	verdict := "survives"
	if !d.Survive {
		verdict = "loses (" + d.Action.String() + ")"
	}
	return fmt.Sprintf("%v: side [%s] %s: %s", d.Strategy, strings.Join(d.Reachable, ","), verdict, d.Reason)
}

// side is the input of a decision: what one node sees.
type side struct {
	strategy    Strategy
	quorum      int
	referee     string
	downIfAlone bool
	expected    []string         // sorted, self included
	reachable   map[string]bool  // expected nodes reachable, self included
	started     map[string]int64 // heal start of each expected node known (Unix ns)
}

// decide applies the strategy to one side of a split. It is pure: every
// node of a side computes the same outcome from the same view, and the
// sides' outcomes are complementary for keep-majority, keep-oldest and
// keep-referee when the sides agree on the expected set.
func decide(s side) (survive bool, reason string) {
	n, r := len(s.expected), 0
	for _, e := range s.expected {
		if s.reachable[e] {
			r++
		}
	}
	switch s.strategy {
	case StrategyNone:
		return true, "no strategy"
	case StrategyKeepMajority:
		switch {
		case 2*r > n:
			return true, fmt.Sprintf("majority: %d of %d expected nodes", r, n)
		case 2*r < n:
			return false, fmt.Sprintf("minority: %d of %d expected nodes", r, n)
		}
		lowest := s.expected[0]
		if s.reachable[lowest] {
			return true, fmt.Sprintf("even split (%d of %d): this side has %s, the lowest name", r, n, lowest)
		}
		return false, fmt.Sprintf("even split (%d of %d): %s, the lowest name, is on the other side", r, n, lowest)
	case StrategyStaticQuorum:
		if r >= s.quorum {
			return true, fmt.Sprintf("quorum: %d reachable, quorum size %d", r, s.quorum)
		}
		return false, fmt.Sprintf("no quorum: %d reachable, quorum size %d", r, s.quorum)
	case StrategyKeepOldest:
		oldest := oldestOf(s.expected, s.started)
		if s.reachable[oldest] {
			if s.downIfAlone && r == 1 && n-r > 1 {
				return false, fmt.Sprintf("the oldest node %s is alone (down-if-alone)", oldest)
			}
			return true, fmt.Sprintf("this side has the oldest node %s", oldest)
		}
		if s.downIfAlone && n-r == 1 && r > 1 {
			return true, fmt.Sprintf("the oldest node %s is alone on its side (down-if-alone)", oldest)
		}
		return false, fmt.Sprintf("the oldest node %s is on the other side", oldest)
	case StrategyKeepReferee:
		if s.reachable[s.referee] {
			return true, fmt.Sprintf("this side reaches the referee %s", s.referee)
		}
		return false, fmt.Sprintf("the referee %s is not reachable", s.referee)
	case StrategyDownAll:
		return false, fmt.Sprintf("down-all: %d of %d expected nodes unreachable", n-r, n)
	}
	return true, "unknown strategy"
}

// oldestOf returns the expected node that started first (ties and unknown
// starts by name: an unknown start counts as the newest).
func oldestOf(expected []string, started map[string]int64) string {
	return slices.MinFunc(expected, func(a, b string) int {
		sa, oka := started[a]
		sb, okb := started[b]
		switch {
		case oka && !okb:
			return -1
		case !oka && okb:
			return 1
		case oka && sa != sb:
			if sa < sb {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
}
