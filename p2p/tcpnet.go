package p2p

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// TCPNetwork returns the default Network: libp2p over TCP with Noise and
// yamux, and memberlist's NetTransport (UDP + TCP). Relay, NAT port mapping,
// mDNS, metrics and the connection manager's trimming are off; the resource
// manager is unlimited (our own queues bound memory), and Start installs a
// connection gater that bounds connections not yet past the cookie
// handshake (doc.go, "Hostile peers"). opts are appended to these defaults
// and may override them; they must not set a ConnectionGater.
func TCPNetwork(opts ...libp2p.Option) Network {
	return tcpNetwork{opts: opts}
}

type tcpNetwork struct {
	opts []libp2p.Option
}

var _ Network = tcpNetwork{}

// NewHost implements Network.
func (n tcpNetwork) NewHost(ctx context.Context, name string, key crypto.PrivKey, listen string) (host.Host, error) {
	return n.newGatedHost(ctx, name, key, listen, nil)
}

// gatedNetwork is implemented by the TCP network: Start gives it the
// host's connection gater (guard.go), which bounds pending connections.
type gatedNetwork interface {
	newGatedHost(ctx context.Context, name string, key crypto.PrivKey, listen string, g *connGuard) (host.Host, error)
}

var _ gatedNetwork = tcpNetwork{}

func (n tcpNetwork) newGatedHost(_ context.Context, _ string, key crypto.PrivKey, listen string, g *connGuard) (host.Host, error) {
	addr, err := tcpMultiaddr(listen)
	if err != nil {
		return nil, err
	}
	var security any = noise.New
	if g != nil {
		security = g.security // frees the slot of a failed handshake
	}
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.ListenAddrs(addr),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, security),
		libp2p.Muxer(yamux.ID, yamuxTransport()),
		libp2p.DisableRelay(),
		libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.ConnectionManager(&connmgr.NullConnMgr{}),
		libp2p.DisableMetrics(),
		libp2p.DisableIdentifyAddressDiscovery(),
		libp2p.Ping(false),
	}
	if g != nil {
		opts = append(opts, libp2p.ConnectionGater(g))
	}
	opts = append(opts, n.opts...)
	return libp2p.New(opts...)
}

// yamuxTransport is libp2p's default yamux configuration with messages
// sized to one Noise transport message: yamux's default (64 KiB of body
// plus a 12-byte header) does not fit one, so every full message cost
// Noise a second, 29-byte record and a second write syscall.
//
// Keep-alive pings every 5 s (yamux's default is 30 s): a connection cut
// silently while memberlist still sees the peer through a third node (a
// partial partition) is then closed within KeepAliveInterval plus the 10 s
// ping timeout, about 15 s instead of 40 s (measured by the netns test).
func yamuxTransport() *yamux.Transport {
	cfg := *yamux.DefaultTransport.Config()
	cfg.MaxMessageSize = noise.MaxPlaintextLength
	cfg.KeepAliveInterval = 5 * time.Second
	return (*yamux.Transport)(&cfg)
}

// NewTransport implements Network.
func (n tcpNetwork) NewTransport(name string, gossipAddr string) (memberlist.NodeAwareTransport, error) {
	h, p, err := net.SplitHostPort(gossipAddr)
	if err != nil {
		return nil, fmt.Errorf("%w: GossipAddr: %w", ErrInvalidConfig, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return nil, fmt.Errorf("%w: GossipAddr: %w", ErrInvalidConfig, err)
	}
	if h == "" {
		h = "0.0.0.0"
	}
	// With port 0 the TCP listener picks a port and UDP must get the same
	// one; retry a few times like memberlist.Create does.
	var lastErr error
	for range 10 {
		t, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{h},
			BindPort:  port,
			Logger:    memberlistLogger(),
		})
		if err == nil {
			return t, nil
		}
		lastErr = err
		if port != 0 {
			break
		}
	}
	return nil, fmt.Errorf("p2p: gossip listener on %s: %w", gossipAddr, lastErr)
}

// tcpMultiaddr turns "host:port" into /ip4|ip6|dns/host/tcp/port.
func tcpMultiaddr(hostport string) (ma.Multiaddr, error) {
	h, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, fmt.Errorf("%w: address %q: %w", ErrInvalidConfig, hostport, err)
	}
	if _, err := strconv.ParseUint(p, 10, 16); err != nil {
		return nil, fmt.Errorf("%w: address %q: bad port", ErrInvalidConfig, hostport)
	}
	var proto string
	switch ip := net.ParseIP(h); {
	case h == "":
		h, proto = "0.0.0.0", "ip4"
	case ip == nil:
		proto = "dns"
	case ip.To4() != nil:
		proto = "ip4"
	default:
		proto = "ip6"
	}
	return ma.NewMultiaddr("/" + proto + "/" + h + "/tcp/" + p)
}
