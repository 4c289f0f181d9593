package rpc

import (
	"fmt"
	"time"

	"github.com/nodal-go/nodal"
)

// ServiceName is the name the rpc service attaches under on every node.
const ServiceName = "rpc"

// Defaults of Config.
const (
	// DefaultTimeout bounds a call whose ctx has no deadline. erpc's
	// default is infinity; we want no call to hang, and 5 s is
	// gen_server:call's default.
	DefaultTimeout = 5 * time.Second
	// DefaultMaxConcurrent bounds the calls one caller node may have
	// running on this node at once, and the calls this node keeps out to
	// one node at once. Each running call is a process (a goroutine of a
	// few KiB), so 1024 calls per caller node cost a few MiB at most.
	DefaultMaxConcurrent = 1024
)

// Config configures an RPC. The zero Config uses the defaults.
type Config struct {
	// DefaultTimeout bounds a call, async response wait or Pmap whose ctx
	// has no deadline. Default DefaultTimeout (5 s).
	DefaultTimeout time.Duration
	// MaxConcurrent bounds, per caller node, the calls running here at
	// once: a call above it is refused with ErrSystemLimit (a cast is
	// dropped and counted). It also bounds the calls this node has out to
	// one node at once: a call above it waits, bounded by its ctx, for one
	// to finish, so a node that uses the same bound never hits the
	// callee's. Default DefaultMaxConcurrent (1024).
	MaxConcurrent int
	// NoBuiltins leaves out the built-in functions (node.info, ...); the
	// function list (rpc.functions) is always there. Default false.
	NoBuiltins bool
}

func (c Config) withDefaults() Config {
	if c.DefaultTimeout == 0 {
		c.DefaultTimeout = DefaultTimeout
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = DefaultMaxConcurrent
	}
	return c
}

// Validate reports a Config field that is out of range, with an error
// wrapping nodal.ErrInvalidConfig.
func (c Config) Validate() error {
	switch {
	case c.DefaultTimeout < 0:
		return fmt.Errorf("%w: rpc DefaultTimeout %v is negative", nodal.ErrInvalidConfig, c.DefaultTimeout)
	case c.MaxConcurrent < 0:
		return fmt.Errorf("%w: rpc MaxConcurrent %d is negative", nodal.ErrInvalidConfig, c.MaxConcurrent)
	}
	return nil
}
