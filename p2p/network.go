package p2p

import (
	"context"

	"github.com/hashicorp/memberlist"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
)

// Network is the seam between a Host and the wire: it makes the libp2p host
// that carries frames and the memberlist transport that carries gossip.
//
// The default (Config.Advanced.Network == nil) is real libp2p over TCP and
// memberlist's UDP/TCP NetTransport; p2ptest provides an in-process one with
// partitions. Names are node names ("a@host"); listen and gossipAddr are the
// "host:port" strings of Config.ListenAddr and Config.GossipAddr.
//
// Concurrency: both methods may be called concurrently from different
// Start calls. Each returned host and transport is owned by the Host that
// asked for it, which closes it on Stop.
type Network interface {
	// NewHost returns a libp2p host with identity key listening on listen.
	NewHost(ctx context.Context, name string, key crypto.PrivKey, listen string) (host.Host, error)
	// NewTransport returns the memberlist transport bound to gossipAddr.
	NewTransport(name string, gossipAddr string) (memberlist.NodeAwareTransport, error)
}
