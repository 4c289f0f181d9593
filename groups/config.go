package groups

import (
	"fmt"
	"strings"
	"time"

	"github.com/nodal-go/nodal"
)

// Defaults of Config.
const (
	// DefaultScope is the scope of a zero Config, like pg's default scope.
	DefaultScope = "default"
	// DefaultMonitorBuffer is how many events a monitor holds for a slow
	// reader before it ends with ErrMonitorOverflow: a burst of joins is
	// one event per group per delta, so a few thousand cover bursts
	// without holding much memory.
	DefaultMonitorBuffer = 4096
	// DefaultCallTimeout bounds Scope.Call when its ctx has no deadline
	// (gen_server:call's 5 s).
	DefaultCallTimeout = 5 * time.Second
	// DefaultCallConcurrency is how many calls Scope.Call has out at
	// once: a group of 100,000 members does not start 100,000 calls.
	DefaultCallConcurrency = 256
)

// Config configures a Scope. The zero Config is the default scope with the
// defaults below.
type Config struct {
	// Scope names the scope: scopes are independent (pg's scopes, syn's
	// subclusters); only nodes running the same scope share its groups.
	// 1 to MaxScopeName bytes without ',' or ' '. Default DefaultScope.
	Scope string
	// MonitorBuffer is each monitor's channel buffer, in events. Default
	// DefaultMonitorBuffer.
	MonitorBuffer int
	// CallTimeout bounds Call when its ctx has no deadline. Default
	// DefaultCallTimeout.
	CallTimeout time.Duration
	// CallConcurrency bounds the calls one Call has out at once. Default
	// DefaultCallConcurrency.
	CallConcurrency int
	// PermdownPeriod is how long a node may stay unreachable before its
	// members are purged instead of hidden; it must be the same on every
	// node. Zero uses the replication engine's default.
	PermdownPeriod time.Duration
	// SyncInterval is the period of the digest exchange that repairs lost
	// deltas, besides memberlist's push/pull and the exchange on node up.
	// Zero uses the replication engine's default.
	SyncInterval time.Duration
}

func (c Config) withDefaults() Config {
	if c.Scope == "" {
		c.Scope = DefaultScope
	}
	if c.MonitorBuffer == 0 {
		c.MonitorBuffer = DefaultMonitorBuffer
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.CallConcurrency == 0 {
		c.CallConcurrency = DefaultCallConcurrency
	}
	return c
}

// Validate reports a Config field that is out of range, with an error
// wrapping nodal.ErrInvalidConfig (and ErrBadScope for the scope name).
func (c Config) Validate() error {
	if c.Scope != "" && (len(c.Scope) > MaxScopeName || strings.ContainsAny(c.Scope, ", ")) {
		return fmt.Errorf("%w: %w: %q: want 1..%d bytes without ',' or ' '", nodal.ErrInvalidConfig, ErrBadScope, clip(c.Scope), MaxScopeName)
	}
	switch {
	case c.MonitorBuffer < 0:
		return fmt.Errorf("%w: groups MonitorBuffer %d is negative", nodal.ErrInvalidConfig, c.MonitorBuffer)
	case c.CallTimeout < 0:
		return fmt.Errorf("%w: groups CallTimeout %v is negative", nodal.ErrInvalidConfig, c.CallTimeout)
	case c.CallConcurrency < 0:
		return fmt.Errorf("%w: groups CallConcurrency %d is negative", nodal.ErrInvalidConfig, c.CallConcurrency)
	case c.PermdownPeriod < 0:
		return fmt.Errorf("%w: groups PermdownPeriod %v is negative", nodal.ErrInvalidConfig, c.PermdownPeriod)
	case c.SyncInterval < 0:
		return fmt.Errorf("%w: groups SyncInterval %v is negative", nodal.ErrInvalidConfig, c.SyncInterval)
	}
	return nil
}
