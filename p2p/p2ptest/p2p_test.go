package p2ptest_test

import (
	"github.com/nodal-go/nodal/p2p"
	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// The simulated network is a p2p.Network. The check lives in a test so
// that p2ptest itself does not import p2p, and p2p's own in-package tests
// can import p2ptest without an import cycle.
var _ p2p.Network = (*p2ptest.Network)(nil)
