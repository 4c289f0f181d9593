package nodal

import (
	"errors"

	"github.com/nodal-go/nodal/p2p"
)

// Errors of the distribution layer.
var (
	// ErrNotDistributed means the node was started without a name and
	// cookie, so it reaches no other node.
	ErrNotDistributed = errors.New("nodal: node is not distributed (start it with a Name and a Cookie)")
	// ErrNoConnection means the target node is not connected (down,
	// partitioned or unknown).
	ErrNoConnection = errors.New("nodal: no connection to node")
	// ErrUnknownNode means the node is neither connected nor a member.
	ErrUnknownNode = errors.New("nodal: unknown node")
	// ErrUnknownBehaviour means a remote spawn named a behaviour that the
	// target node has not registered.
	ErrUnknownBehaviour = errors.New("nodal: unknown behaviour")
)

// ErrQueueFull means a non-blocking send (TrySendService) found the outbound
// queue full. It is p2p's sentinel, so errors.Is works for both.
var ErrQueueFull = p2p.ErrQueueFull
