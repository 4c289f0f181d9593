package heal

import (
	"fmt"
	"slices"
	"time"

	"github.com/nodal-go/nodal"
)

// Strategy is what the nodes of one side of a split do, chosen per cluster:
// every node must run the same one (a node whose Strategy differs is
// refused, see Settings). The names follow Akka's split-brain resolver.
type Strategy uint8

// Strategies.
const (
	// StrategyNone keeps every side running (AP; the default): nothing is
	// paused or stopped, and the sides converge after the heal.
	StrategyNone Strategy = iota
	// StrategyKeepMajority keeps the side that reaches more than half of
	// the expected nodes; on an even split, the side with the expected node
	// whose name sorts first.
	StrategyKeepMajority
	// StrategyStaticQuorum keeps a side that reaches at least QuorumSize
	// nodes (itself included). With QuorumSize at most half of the
	// expected nodes both sides of an even split survive; above, neither.
	StrategyStaticQuorum
	// StrategyKeepOldest keeps the side with the oldest node (the earliest
	// started heal service, ties by name). With DownIfAlone, an oldest node
	// left alone loses and the other side survives.
	StrategyKeepOldest
	// StrategyKeepReferee keeps the side that reaches Referee.
	StrategyKeepReferee
	// StrategyDownAll makes every side lose whenever an expected node is
	// unreachable.
	StrategyDownAll
)

var strategyNames = []string{"none", "keep-majority", "static-quorum", "keep-oldest", "keep-referee", "down-all"}

// String returns the strategy's name, e.g. "keep-majority".
func (s Strategy) String() string {
	if int(s) < len(strategyNames) {
		return strategyNames[s]
	}
	return fmt.Sprintf("strategy(%d)", int(s))
}

// ParseStrategy maps a strategy's name ("none", "keep-majority",
// "static-quorum", "keep-oldest", "keep-referee", "down-all") onto it.
func ParseStrategy(s string) (Strategy, error) {
	if i := slices.Index(strategyNames, s); i >= 0 {
		return Strategy(i), nil
	}
	return 0, fmt.Errorf("%w: unknown strategy %q (want one of %v)", ErrInvalidConfig, s, strategyNames)
}

// Action is what a node does when its side of a split loses.
type Action uint8

// Actions.
const (
	// ActionPause (the default) sets Paused: other packages (registry,
	// groups) consult it to refuse registrations and joins while it holds.
	// It ends when the node's side wins again (the split heals).
	ActionPause Action = iota
	// ActionStop stops the node (Node.Stop), as Akka downs itself. The
	// stop runs on a goroutine of its own that ends with it: Node.Stop
	// stops the heal service first, so it cannot run on heal's goroutines.
	ActionStop
	// ActionHook calls Config.OnLose, and nothing else.
	ActionHook
)

// String returns the action's name: "pause", "stop" or "hook".
func (a Action) String() string {
	switch a {
	case ActionPause:
		return "pause"
	case ActionStop:
		return "stop"
	case ActionHook:
		return "hook"
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// Defaults.
const (
	// DefaultReconnectInterval bounds the pause between two attempts to
	// reach a lost node: serf waits 30 s, which is long for a LAN.
	DefaultReconnectInterval = 2 * time.Second
	// DefaultReconnectSlowAfter is how long a lost node is tried at
	// ReconnectInterval's pace before ReconnectMaxInterval's.
	DefaultReconnectSlowAfter = time.Hour
	// DefaultReconnectMaxInterval is the pause between attempts at a node
	// lost for longer than ReconnectSlowAfter: serf's reconnect interval.
	DefaultReconnectMaxInterval = 30 * time.Second
	// DefaultReconnectHorizon is how long a lost node is tried (serf's
	// ReconnectTimeout).
	DefaultReconnectHorizon = 24 * time.Hour
	// DefaultStableAfter is how long a split must stay unchanged before the
	// strategy decides (Akka's stable-after is 20 s on its slower failure
	// detector).
	DefaultStableAfter = 5 * time.Second
	// DefaultSyncTimeout bounds one round of the reconcilers after a heal.
	DefaultSyncTimeout = 30 * time.Second
	// DefaultVoteTimeout bounds a vote whose ctx has no deadline.
	DefaultVoteTimeout = 5 * time.Second
)

// Config configures a node's heal service. The zero Config is valid: every
// node ever seen is expected, lost nodes are tried at least every 2 s for
// an hour, then every 30 s up to 24 h, and no split-brain strategy runs.
type Config struct {
	// Expected are the names of the nodes the cluster should have, this
	// one included or not. Empty: every node this node ever saw, until it
	// leaves gracefully or stays lost for PurgePeriod.
	Expected []string
	// Seeds are gossip addresses ("host:port") tried, next to the lost
	// nodes' last known addresses, while a node is lost; usually the
	// node's own Config.Seeds.
	Seeds []string

	// ReconnectInterval bounds the pause between two attempts to reach a
	// lost node (and one attempt's duration) while it has been lost for
	// less than ReconnectSlowAfter: the first attempt comes within a
	// quarter of it, each failed one doubles the pause up to it, and
	// jitter only shortens a pause (by up to 25 %). A network that comes
	// back is therefore used within ReconnectInterval. Default
	// DefaultReconnectInterval: about 2,000 attempts an hour per lost
	// node (a pause of 1.75 s on average).
	ReconnectInterval time.Duration
	// ReconnectSlowAfter is how long a node stays lost before it is tried
	// only every ReconnectMaxInterval; default DefaultReconnectSlowAfter.
	ReconnectSlowAfter time.Duration
	// ReconnectMaxInterval is the pause between attempts at a node lost
	// for longer than ReconnectSlowAfter, serf's economy for a node gone
	// for hours (about 140 attempts an hour at the default); at least
	// ReconnectInterval, default DefaultReconnectMaxInterval. Any lost
	// node coming back resets every lost node to an attempt at once.
	ReconnectMaxInterval time.Duration
	// ReconnectHorizon is how long a lost node is tried; default
	// DefaultReconnectHorizon. It must be the same on every node.
	ReconnectHorizon time.Duration
	// PurgePeriod is how long a lost node that is not in Expected stays
	// expected; at least ReconnectHorizon, which is the default. It must be
	// the same on every node.
	PurgePeriod time.Duration

	// Strategy is the split-brain strategy; default StrategyNone. It must
	// be the same on every node, and so must QuorumSize, Referee and
	// DownIfAlone.
	Strategy Strategy
	// QuorumSize is StrategyStaticQuorum's quorum (required for it).
	QuorumSize int
	// Referee is StrategyKeepReferee's node (required for it).
	Referee string
	// DownIfAlone makes StrategyKeepOldest's oldest node lose when it is
	// alone on its side and the other side has more than one node.
	DownIfAlone bool
	// StableAfter is how long a split must stay unchanged before the
	// strategy decides; default DefaultStableAfter.
	StableAfter time.Duration
	// Action is what this node does when its side loses; default
	// ActionPause.
	Action Action
	// OnLose is called (on the heal service's goroutine: it must not block
	// for long or call Stop) when this node's side loses, whatever the
	// Action; required for ActionHook.
	OnLose func(Decision)

	// SyncTimeout bounds one round of the reconcilers after a heal;
	// default DefaultSyncTimeout.
	SyncTimeout time.Duration
	// VoteTimeout bounds a vote whose ctx has no deadline; default
	// DefaultVoteTimeout.
	VoteTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.ReconnectInterval == 0 {
		c.ReconnectInterval = DefaultReconnectInterval
	}
	if c.ReconnectSlowAfter == 0 {
		c.ReconnectSlowAfter = DefaultReconnectSlowAfter
	}
	if c.ReconnectMaxInterval == 0 {
		c.ReconnectMaxInterval = max(DefaultReconnectMaxInterval, c.ReconnectInterval)
	}
	if c.ReconnectHorizon == 0 {
		c.ReconnectHorizon = DefaultReconnectHorizon
	}
	if c.PurgePeriod == 0 {
		c.PurgePeriod = c.ReconnectHorizon
	}
	if c.StableAfter == 0 {
		c.StableAfter = DefaultStableAfter
	}
	if c.SyncTimeout == 0 {
		c.SyncTimeout = DefaultSyncTimeout
	}
	if c.VoteTimeout == 0 {
		c.VoteTimeout = DefaultVoteTimeout
	}
	c.Expected = slices.Clone(c.Expected)
	c.Seeds = slices.Clone(c.Seeds)
	return c
}

// Validate reports whether c (after defaults) is usable; the error wraps
// ErrInvalidConfig and names the field.
func (c Config) Validate() error {
	c = c.withDefaults()
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...))
	}
	for _, e := range c.Expected {
		if err := nodal.ValidateNodeName(e); err != nil {
			return bad("Expected", "%v", err)
		}
	}
	if len(c.Expected) > maxNodes {
		return bad("Expected", "%d nodes, at most %d", len(c.Expected), maxNodes)
	}
	switch {
	case c.ReconnectInterval < 0:
		return bad("ReconnectInterval", "negative")
	case c.ReconnectSlowAfter < 0:
		return bad("ReconnectSlowAfter", "negative")
	case c.ReconnectMaxInterval < c.ReconnectInterval:
		return bad("ReconnectMaxInterval", "%v is below ReconnectInterval %v", c.ReconnectMaxInterval, c.ReconnectInterval)
	case c.ReconnectHorizon < 0:
		return bad("ReconnectHorizon", "negative")
	case c.PurgePeriod < c.ReconnectHorizon:
		return bad("PurgePeriod", "%v is below ReconnectHorizon %v: a node would be forgotten while it is still tried", c.PurgePeriod, c.ReconnectHorizon)
	case c.StableAfter < 0, c.SyncTimeout < 0, c.VoteTimeout < 0:
		return bad("StableAfter/SyncTimeout/VoteTimeout", "negative")
	case int(c.Strategy) >= len(strategyNames):
		return bad("Strategy", "unknown %d", int(c.Strategy))
	case c.Strategy == StrategyStaticQuorum && c.QuorumSize < 1:
		return bad("QuorumSize", "static-quorum needs a QuorumSize of at least 1")
	case c.Strategy != StrategyStaticQuorum && c.QuorumSize != 0:
		return bad("QuorumSize", "only static-quorum takes a QuorumSize")
	case c.Strategy == StrategyKeepReferee && c.Referee == "":
		return bad("Referee", "keep-referee needs a Referee")
	case c.Strategy != StrategyKeepReferee && c.Referee != "":
		return bad("Referee", "only keep-referee takes a Referee")
	case c.DownIfAlone && c.Strategy != StrategyKeepOldest:
		return bad("DownIfAlone", "only keep-oldest takes DownIfAlone")
	case c.Action > ActionHook:
		return bad("Action", "unknown %d", int(c.Action))
	case c.Action == ActionHook && c.OnLose == nil:
		return bad("OnLose", "ActionHook needs OnLose")
	}
	if c.Referee != "" {
		if err := nodal.ValidateNodeName(c.Referee); err != nil {
			return bad("Referee", "%v", err)
		}
	}
	return nil
}

// Settings are the values every node of a cluster must share. Each heal
// service sends its own to every node it connects to; a node whose
// Settings differ from this node's is refused: see View.Refused.
type Settings struct {
	ReconnectHorizon time.Duration
	PurgePeriod      time.Duration
	Strategy         Strategy
	QuorumSize       int
	Referee          string
	DownIfAlone      bool
}

// String describes the settings in one line.
func (s Settings) String() string {
	str := fmt.Sprintf("horizon=%v purge=%v strategy=%v", s.ReconnectHorizon, s.PurgePeriod, s.Strategy)
	switch s.Strategy {
	case StrategyStaticQuorum:
		str += fmt.Sprintf(" quorum=%d", s.QuorumSize)
	case StrategyKeepReferee:
		str += " referee=" + s.Referee
	case StrategyKeepOldest:
		str += fmt.Sprintf(" down-if-alone=%v", s.DownIfAlone)
	}
	return str
}

// settings returns c's Settings as the wire carries them (durations in
// whole milliseconds), so a node compares like with like.
func (c Config) settings() Settings {
	return Settings{ReconnectHorizon: c.ReconnectHorizon.Truncate(time.Millisecond), PurgePeriod: c.PurgePeriod.Truncate(time.Millisecond), Strategy: c.Strategy,
		QuorumSize: c.QuorumSize, Referee: c.Referee, DownIfAlone: c.DownIfAlone}
}
