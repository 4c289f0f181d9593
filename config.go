package nodal

import (
	"fmt"
	"io"

	"github.com/nodal-go/nodal/p2p"
)

// LocalNodeName is the name of a node started with a zero Config: a
// local-only node, as Erlang calls a non-distributed node.
const LocalNodeName = "nonode@nohost"

// Config configures a node. Start copies it; the zero Config is valid and
// gives a local-only node named "nonode@nohost".
type Config struct {
	// Name is the node name, name@host (see ValidateNodeName). Default
	// "nonode@nohost", a node that reaches no other node: links and monitors
	// to pids of other nodes fire at once with reason noconnection.
	Name string

	// Cookie is the shared secret of the cluster. A node with a Cookie is
	// distributed: it listens, joins Seeds and reaches other nodes; a node
	// without one is local-only. It is never logged or shown.
	Cookie string
	// ListenAddr is the libp2p TCP "host:port" processes' traffic uses;
	// default "127.0.0.1:0" (any free port on loopback).
	ListenAddr string
	// GossipAddr is memberlist's "host:port" (UDP and TCP); default
	// "127.0.0.1:0". Unused by hidden nodes.
	GossipAddr string
	// AdvertiseAddr is the address other nodes reach this node's
	// ListenAddr at, when it binds a wildcard or sits behind NAT or in a
	// container: "HOST" or "HOST:PORT" with HOST an IPv4 or IPv6 address;
	// without a port, the bound one. Its host is also advertised for
	// gossip unless AdvertiseGossipAddr is set. Default: what is bound. A
	// wildcard or unparsable address fails Start with ErrInvalidConfig.
	// See p2p.Config.AdvertiseAddr.
	AdvertiseAddr string
	// AdvertiseGossipAddr is the gossip address announced to other members
	// ("HOST" or "HOST:PORT"), when it must differ from AdvertiseAddr's
	// host or GossipAddr's port.
	AdvertiseGossipAddr string
	// Seeds are gossip addresses of cluster nodes to join at Start; one is
	// enough. None starts a new cluster. A host may be a DNS name, looked
	// up again on every join (P2P.Resolver), each of its addresses tried.
	Seeds []string
	// Profile selects failure-detection timers: p2p.ProfileLAN (default),
	// p2p.ProfileWAN or p2p.ProfileLocal (fast, for tests on one machine).
	Profile p2p.Profile
	// Hidden makes a hidden node (a tool or monitor): it connects with the
	// cookie to the nodes it is asked to, never joins the membership and
	// never appears in other nodes' Nodes().
	Hidden bool
	// Codec encodes messages to other nodes; default DefaultCodec.
	Codec *Codec
	// Stdout receives what processes print through their group leader
	// (Process.Printf); default os.Stdout.
	Stdout io.Writer
	// RemoteBacklog bounds, in messages, how long a mailbox may grow from
	// messages of other nodes. Above it the node stops reading the
	// connection that delivers to that process until the mailbox is back
	// under half of it. That pushes back on the senders: their bounded
	// outbound queue fills and their Send blocks, so memory stays bounded
	// when a receiver is slower than its senders. The pause holds up every
	// message from that node (like Erlang's busy distribution port).
	// Default DefaultRemoteBacklog; -1 means no bound (Erlang's behaviour).
	RemoteBacklog int
	// P2P holds the transport's advanced settings: Network (tests use
	// p2ptest), MaxFrameSize, SendQueueBytes, Libp2pOptions and
	// TuneMemberlist. The rest of the transport's config is set from the
	// fields above.
	P2P p2p.Advanced
}

// withDefaults returns c with zero fields filled in.
func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = LocalNodeName
	}
	return c
}

// Validate reports whether c (after defaults are applied) is usable. The
// error wraps ErrInvalidConfig and names the field.
func (c Config) Validate() error {
	c = c.withDefaults()
	if err := ValidateNodeName(c.Name); err != nil {
		return fmt.Errorf("%w: Name: %w", ErrInvalidConfig, err)
	}
	return c.validateDist()
}
