package nodal

import (
	"context"
	"fmt"
	"os"

	"github.com/nodal-go/nodal/p2p"
)

// DefaultRemoteBacklog is the default Config.RemoteBacklog: 100,000
// messages, a few megabytes of small messages, far more than a process that
// keeps up ever holds.
const DefaultRemoteBacklog = 100_000

// DefaultLANConfig returns a distributed node's config with memberlist's LAN
// timers (failure detected in a few seconds).
func DefaultLANConfig(name, cookie string) Config {
	return Config{Name: name, Cookie: cookie, Profile: p2p.ProfileLAN}
}

// DefaultWANConfig returns a distributed node's config with memberlist's WAN
// timers (tolerant of latency and loss, slower to detect failures).
func DefaultWANConfig(name, cookie string) Config {
	return Config{Name: name, Cookie: cookie, Profile: p2p.ProfileWAN}
}

// DefaultLocalConfig returns a distributed node's config with memberlist's
// local timers, for clusters on one machine and tests.
func DefaultLocalConfig(name, cookie string) Config {
	return Config{Name: name, Cookie: cookie, Profile: p2p.ProfileLocal}
}

func (c Config) distributed() bool { return c.Cookie != "" }

func (c Config) validateDist() error {
	if !c.distributed() {
		if len(c.Seeds) > 0 || c.Hidden || c.ListenAddr != "" || c.GossipAddr != "" || c.AdvertiseAddr != "" || c.AdvertiseGossipAddr != "" {
			return fmt.Errorf("%w: Cookie: required for a distributed node", ErrInvalidConfig)
		}
		return nil
	}
	if c.Name == "" || c.Name == LocalNodeName {
		return fmt.Errorf("%w: Name: a distributed node needs a name@host", ErrInvalidConfig)
	}
	if err := c.p2pConfig(0).Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

func (c Config) p2pConfig(incarnation uint64) p2p.Config {
	pc := p2p.Config{
		Name:        c.Name,
		Cookie:      c.Cookie,
		ListenAddr:  c.ListenAddr,
		GossipAddr:  c.GossipAddr,
		Seeds:       c.Seeds,
		Profile:     c.Profile,
		Hidden:      c.Hidden,
		Incarnation: incarnation,
		Advanced:    c.P2P,
	}
	pc.AdvertiseAddr, pc.AdvertiseGossipAddr = c.AdvertiseAddr, c.AdvertiseGossipAddr
	return pc
}

// startDist starts the distribution layer of n: the default group leader,
// then the p2p host (binding, first join), bounded by ctx.
func (n *Node) startDist(ctx context.Context) error {
	if !n.cfg.distributed() {
		return nil
	}
	codec := n.cfg.Codec
	if codec == nil {
		codec = DefaultCodec
	}
	out := n.cfg.Stdout
	if out == nil {
		out = os.Stdout
	}
	gl, err := n.SpawnActor(ioServer{w: out})
	if err != nil {
		return err
	}
	n.groupLeader = gl
	d := newDist(n, codec)
	d.backlog = n.cfg.RemoteBacklog
	if d.backlog == 0 {
		d.backlog = DefaultRemoteBacklog
	}
	n.remote = d
	n.dist = d
	d.start()
	host, err := p2p.Start(ctx, n.cfg.p2pConfig(n.incarnation), d)
	if err != nil {
		close(d.hostReady)
		d.stop()
		n.remote = nil
		n.dist = nil
		return err
	}
	d.host = host
	d.hostSet.Store(true)
	close(d.hostReady)
	return nil
}

// stopDist leaves the cluster and stops the transport; processes are gone.
func (n *Node) stopDist(ctx context.Context) error {
	d := n.dist
	if d == nil {
		return nil
	}
	err := d.host.Stop(ctx)
	d.stop()
	return err
}
