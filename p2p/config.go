package p2p

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/libp2p/go-libp2p"
)

// Profile selects memberlist's timing defaults.
type Profile int

// Profiles map one to one onto memberlist's default configurations.
const (
	// ProfileLAN is memberlist.DefaultLANConfig: 1 s probes, failure detected in ~5 s.
	ProfileLAN Profile = iota
	// ProfileWAN is memberlist.DefaultWANConfig, for links between data
	// centres: probes every 5 s (ProbeInterval) with a 3 s ack timeout
	// (ProbeTimeout), so a probe round trip (UDP ping, or the TCP fallback
	// ping) of up to 3 s counts as alive; a node that misses a probe is
	// suspected, and declared dead only when it does not refute that for
	// the suspicion timeout: SuspicionMult 6 × probe interval × max(1,
	// log10(members)), 30 s for up to 10 members (with 6 members or more it
	// starts at 6 times that and falls to it as members confirm the
	// suspicion), so a lost packet (at 1 % loss a probe fails about 2 % of
	// the time) is refuted long before.
	// Gossip every 500 ms to 4 nodes; full state sync (push/pull) every
	// 60 s; TCP operations (join, push/pull, fallback ping) time out after
	// 30 s. A crash is detected in about 35–40 s (a probe period, its
	// timeout, then the suspicion timeout). Measured by the integration
	// test TestWANProfileSlowLink (3 nodes, 100–200 ms of added round-trip
	// latency, 1 % loss): no false failure and no failed call in 2
	// minutes; a frozen node's connections closed after ~15 s (yamux
	// keepalive) and memberlist declared it failed after ~36 s.
	ProfileWAN
	// ProfileLocal is memberlist.DefaultLocalConfig: fast timers for one machine.
	ProfileLocal
)

// String returns the profile's name.
func (p Profile) String() string {
	switch p {
	case ProfileLAN:
		return "lan"
	case ProfileWAN:
		return "wan"
	case ProfileLocal:
		return "local"
	}
	return fmt.Sprintf("profile(%d)", int(p))
}

// Defaults.
const (
	// DefaultMaxFrameSize bounds one frame: 8 MiB, large enough for bulk
	// anti-entropy chunks, small enough that one frame cannot exhaust memory.
	DefaultMaxFrameSize = 8 << 20
	// DefaultSendQueueBytes bounds one peer's outbound queue: 8 MiB keeps a
	// fast link busy while a slow peer costs at most this much memory.
	DefaultSendQueueBytes = 8 << 20
	// DefaultListenAddr is the libp2p TCP listener when none is given.
	DefaultListenAddr = "127.0.0.1:0"
	// DefaultGossipAddr is the memberlist listener when none is given.
	DefaultGossipAddr = "127.0.0.1:0"
	// DefaultHandshakeTimeout bounds the time from accepting a connection
	// (or starting a dial) to a passed cookie handshake: 7 s, Erlang's
	// net_setuptime, shorter than libp2p's own 15 s accept timeout.
	DefaultHandshakeTimeout = 7 * time.Second
	// DefaultMaxPendingConns bounds the inbound connections that have not
	// passed the cookie handshake yet: 1024 lets a large cluster restart
	// at once while a flood costs at most this many sockets.
	DefaultMaxPendingConns = 1024
	// DefaultMaxPendingPerSource bounds the pending inbound connections
	// from one source IP address: 64 is far more than the nodes one
	// machine runs start handshakes at once, and keeps one flooding
	// address from taking the whole of DefaultMaxPendingConns.
	DefaultMaxPendingPerSource = 64
)

// Config configures a Host. Start copies it (slices included), so later edits
// by the caller do not reach the host.
type Config struct {
	// Name is the node name "a@host" (long: FQDN or IP; short: one label).
	Name string
	// Cookie is the shared secret; required. It authenticates connections
	// and encrypts gossip, and is never logged.
	Cookie string
	// ListenAddr is the libp2p TCP "host:port"; default DefaultListenAddr.
	ListenAddr string
	// GossipAddr is the memberlist "host:port" (UDP and TCP); default DefaultGossipAddr.
	// Ignored for hidden nodes.
	GossipAddr string
	// AdvertiseAddr is the address other nodes reach this node's libp2p
	// listener at, when it differs from ListenAddr (a wildcard bind, a
	// container, NAT with a forwarded port): "HOST" or "HOST:PORT", HOST an
	// IPv4 or IPv6 address ("[::1]:4370"); without a port, the port
	// ListenAddr bound. It is announced in the node's metadata instead of
	// the bound addresses, and its host is also the gossip address's
	// unless AdvertiseGossipAddr is set. Default: announce what is bound.
	// A wildcard or unparsable address is refused by Validate.
	AdvertiseAddr string
	// AdvertiseGossipAddr is the memberlist address announced to other
	// members ("HOST" or "HOST:PORT", like AdvertiseAddr; without a port,
	// the port GossipAddr bound). Default: AdvertiseAddr's host with the
	// bound gossip port, or what is bound when neither is set.
	AdvertiseGossipAddr string
	// Seeds are gossip addresses ("host:port") joined at Start; one is
	// enough. A host may be a DNS name: it is looked up on every Join
	// (Advanced.Resolver), and each address it resolves to is tried, so a
	// name that resolves to many nodes (a Kubernetes headless service)
	// works, and a seed that moved is found again.
	Seeds []string
	// Profile selects memberlist timers; default ProfileLAN.
	Profile Profile
	// Incarnation identifies this start of the node (Erlang's creation);
	// 0 means a fresh one is chosen. The layer above passes its own so that
	// pids and the transport agree.
	Incarnation uint64
	// Hidden makes a node that does not join the membership and connects
	// only to nodes it is asked to (tools, monitors).
	Hidden bool
	// Tags are small key/value pairs this node advertises in its
	// memberlist meta (serf-style), e.g. the services it runs; other
	// members see them in Member.Tags. Their encoded size (each tag costs
	// 2 + len(key) + len(value) bytes; keys non-empty) is at most
	// MaxTagsSize, because memberlist's meta limit (512 bytes) is shared
	// with the libp2p addresses. Change them with Host.SetTags. Hidden
	// nodes have no meta: Tags must be empty.
	Tags map[string]string
	// Advanced holds knobs most callers leave zero.
	Advanced Advanced
}

// Advanced holds a Config's advanced settings: test seams, limits and
// escape hatches into libp2p and memberlist. The zero value is the default.
type Advanced struct {
	// MaxFrameSize bounds a frame in bytes; default DefaultMaxFrameSize.
	// Sending more fails with ErrFrameTooLarge; receiving more closes the
	// connection with that reason.
	MaxFrameSize int
	// SendQueueBytes bounds one peer's outbound queue in bytes; default
	// DefaultSendQueueBytes. Send blocks and TrySend fails while it is full.
	SendQueueBytes int
	// Network makes the libp2p host and memberlist transport; nil means
	// real libp2p over TCP plus memberlist's NetTransport (see TCPNetwork).
	Network Network
	// Resolver looks up the host names of seeds on every Join; nil means
	// net.DefaultResolver.
	Resolver Resolver
	// Libp2pOptions are appended to the default libp2p options (only used
	// when Network is nil).
	Libp2pOptions []libp2p.Option
	// TuneMemberlist, when set, may adjust memberlist's config last, after
	// the profile and nodal's own settings.
	TuneMemberlist func(*memberlist.Config)
	// HandshakeTimeout bounds a connection that has not passed the cookie
	// handshake: an outbound dial fails, and (on the TCP network) an
	// inbound connection is closed, whatever stage it is stuck in, once it
	// passes. It also caps memberlist's TCPTimeout (how long one gossip
	// stream connection may last). Default DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// MaxPendingConns bounds the inbound libp2p connections not yet past
	// the cookie handshake (TCP network only), and separately the open
	// gossip stream connections; more are refused, counted in
	// Stats.Guard and logged at most once a second. Default
	// DefaultMaxPendingConns.
	MaxPendingConns int
	// MaxPendingPerSource is the same bound per source IP address.
	// Default DefaultMaxPendingPerSource.
	MaxPendingPerSource int
	// DirectPort is the TCP port of the direct connections (the frames'
	// own connection per node pair, beside the libp2p one; see direct.go):
	// 0 picks a free port, a positive value binds that one (to open it in
	// a firewall), DirectOff keeps every frame on the libp2p stream.
	DirectPort int
}

// DirectOff as Advanced.DirectPort turns direct connections off.
const DirectOff = -1

// withDefaults returns a deep-enough copy with defaults filled in.
func (c Config) withDefaults() Config {
	c.Seeds = slices.Clone(c.Seeds)
	c.Tags = maps.Clone(c.Tags)
	c.Advanced = c.Advanced.withDefaults()
	if c.ListenAddr == "" {
		c.ListenAddr = DefaultListenAddr
	}
	if c.GossipAddr == "" {
		c.GossipAddr = DefaultGossipAddr
	}
	return c
}

func (c Advanced) withDefaults() Advanced {
	c.Libp2pOptions = slices.Clone(c.Libp2pOptions)
	if c.MaxFrameSize == 0 {
		c.MaxFrameSize = DefaultMaxFrameSize
	}
	if c.SendQueueBytes == 0 {
		c.SendQueueBytes = DefaultSendQueueBytes
	}
	if c.Network == nil {
		c.Network = TCPNetwork(c.Libp2pOptions...)
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.MaxPendingConns == 0 {
		c.MaxPendingConns = DefaultMaxPendingConns
	}
	if c.MaxPendingPerSource == 0 {
		c.MaxPendingPerSource = DefaultMaxPendingPerSource
	}
	return c
}

// Validate checks the config; errors wrap ErrInvalidConfig and name the field.
func (c Config) Validate() error {
	if _, err := ParseName(c.Name); err != nil {
		return fmt.Errorf("%w: Name: %w", ErrInvalidConfig, err)
	}
	if c.Cookie == "" {
		return fmt.Errorf("%w: Cookie: required", ErrInvalidConfig)
	}
	if c.ListenAddr != "" {
		if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
			return fmt.Errorf("%w: ListenAddr: %w", ErrInvalidConfig, err)
		}
	}
	if c.GossipAddr != "" && !c.Hidden {
		if _, _, err := net.SplitHostPort(c.GossipAddr); err != nil {
			return fmt.Errorf("%w: GossipAddr: %w", ErrInvalidConfig, err)
		}
	}
	if c.AdvertiseAddr != "" {
		if _, err := parseAdvertise(c.AdvertiseAddr); err != nil {
			return fmt.Errorf("%w: AdvertiseAddr: %w", ErrInvalidConfig, err)
		}
	}
	if c.AdvertiseGossipAddr != "" && !c.Hidden {
		if _, err := parseAdvertise(c.AdvertiseGossipAddr); err != nil {
			return fmt.Errorf("%w: AdvertiseGossipAddr: %w", ErrInvalidConfig, err)
		}
	}
	for _, s := range c.Seeds {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return fmt.Errorf("%w: Seeds: %q: %w", ErrInvalidConfig, s, err)
		}
	}
	if c.Hidden && len(c.Seeds) > 0 {
		return fmt.Errorf("%w: Seeds: a hidden node does not join the membership", ErrInvalidConfig)
	}
	switch c.Profile {
	case ProfileLAN, ProfileWAN, ProfileLocal:
	default:
		return fmt.Errorf("%w: Profile: unknown %d", ErrInvalidConfig, int(c.Profile))
	}
	if err := checkTags(c.Tags); err != nil {
		return fmt.Errorf("%w: Tags: %w", ErrInvalidConfig, err)
	}
	if c.Hidden && len(c.Tags) > 0 {
		return fmt.Errorf("%w: Tags: a hidden node has no membership meta", ErrInvalidConfig)
	}
	if c.Advanced.MaxFrameSize < 0 || c.Advanced.MaxFrameSize > maxFrameLimit {
		return fmt.Errorf("%w: Advanced.MaxFrameSize: must be 0..%d", ErrInvalidConfig, maxFrameLimit)
	}
	if c.Advanced.HandshakeTimeout < 0 {
		return fmt.Errorf("%w: Advanced.HandshakeTimeout: must not be negative", ErrInvalidConfig)
	}
	if c.Advanced.MaxPendingConns < 0 {
		return fmt.Errorf("%w: Advanced.MaxPendingConns: must not be negative", ErrInvalidConfig)
	}
	if c.Advanced.MaxPendingPerSource < 0 {
		return fmt.Errorf("%w: Advanced.MaxPendingPerSource: must not be negative", ErrInvalidConfig)
	}
	if d := c.Advanced.DirectPort; d != DirectOff && (d < 0 || d > 65535) {
		return fmt.Errorf("%w: Advanced.DirectPort: must be 0..65535 or DirectOff", ErrInvalidConfig)
	}
	if c.Advanced.SendQueueBytes < 0 {
		return fmt.Errorf("%w: Advanced.SendQueueBytes: must not be negative", ErrInvalidConfig)
	}
	return nil
}

func (p Profile) memberlistConfig() *memberlist.Config {
	switch p {
	case ProfileWAN:
		return memberlist.DefaultWANConfig()
	case ProfileLocal:
		return memberlist.DefaultLocalConfig()
	}
	return memberlist.DefaultLANConfig()
}
