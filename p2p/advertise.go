package p2p

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/memberlist"
	"github.com/libp2p/go-libp2p"
	ma "github.com/multiformats/go-multiaddr"
)

// advertiseAddr is a parsed Config.AdvertiseAddr or AdvertiseGossipAddr:
// an IP address and a port, 0 meaning the port the listener bound.
type advertiseAddr struct {
	IP   netip.Addr
	Port int
}

// parseAdvertise parses "HOST", "HOST:PORT", "[V6]" or "[V6]:PORT" where HOST
// is an IP address. A wildcard (0.0.0.0, ::), a host name, a zone, port 0
// and anything unparsable are refused: the address is what other nodes dial.
func parseAdvertise(s string) (advertiseAddr, error) {
	host, port := s, 0
	if h, p, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return advertiseAddr{}, fmt.Errorf("%q: port must be 1..65535", s)
		}
		host, port = h, int(n)
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	}
	ip, err := netip.ParseAddr(host)
	switch {
	case host == "":
		return advertiseAddr{}, fmt.Errorf("%q: missing host", s)
	case err != nil:
		return advertiseAddr{}, fmt.Errorf("%q: host must be an IP address (HOST or HOST:PORT)", s)
	case ip.Zone() != "":
		return advertiseAddr{}, fmt.Errorf("%q: an address with a zone cannot be advertised", s)
	case ip.IsUnspecified():
		return advertiseAddr{}, fmt.Errorf("%q: a wildcard address cannot be advertised: give the address other nodes reach this one at", s)
	}
	return advertiseAddr{IP: ip.Unmap(), Port: port}, nil
}

// hostPort returns "ip:port" with port filled from bound when 0.
func (a advertiseAddr) hostPort(bound int) string {
	p := a.Port
	if p == 0 {
		p = bound
	}
	return netip.AddrPortFrom(a.IP, uint16(p)).String()
}

// multiaddr returns /ip4|ip6/IP/tcp/PORT with port filled from bound when 0.
func (a advertiseAddr) multiaddr(bound int) (ma.Multiaddr, error) {
	return tcpMultiaddr(a.hostPort(bound))
}

// advertiser holds what a Host announces instead of its bound addresses.
// The libp2p address is known once the listener bound its port; the
// libp2p AddrsFactory reads it through addrs, which holds nil until then.
type advertiser struct {
	listen, gossip *advertiseAddr // nil: announce what is bound
	addrs          atomic.Pointer[[]ma.Multiaddr]
}

// newAdvertiser parses the config's advertise addresses (Validate checked them).
func newAdvertiser(cfg Config) (*advertiser, error) {
	a := &advertiser{}
	if cfg.AdvertiseAddr != "" {
		l, err := parseAdvertise(cfg.AdvertiseAddr)
		if err != nil {
			return nil, fmt.Errorf("%w: AdvertiseAddr: %w", ErrInvalidConfig, err)
		}
		a.listen = &l
		g := advertiseAddr{IP: l.IP} // the gossip port is the bound one
		a.gossip = &g
	}
	if cfg.AdvertiseGossipAddr != "" {
		g, err := parseAdvertise(cfg.AdvertiseGossipAddr)
		if err != nil {
			return nil, fmt.Errorf("%w: AdvertiseGossipAddr: %w", ErrInvalidConfig, err)
		}
		a.gossip = &g
	}
	return a, nil
}

// factory is the libp2p AddrsFactory: the advertised address once bound,
// what libp2p found before.
func (a *advertiser) factory(found []ma.Multiaddr) []ma.Multiaddr {
	if p := a.addrs.Load(); p != nil {
		return slices.Clone(*p)
	}
	return found
}

// bind fixes the advertised libp2p address from the bound listen
// addresses (their TCP port) and returns what the node announces: the
// advertised address, or found when nothing is advertised.
func (a *advertiser) bind(bound, found []ma.Multiaddr) ([]ma.Multiaddr, error) {
	if a.listen == nil {
		return found, nil
	}
	port := 0
	for _, b := range bound {
		if p, err := b.ValueForProtocol(ma.P_TCP); err == nil {
			port, _ = strconv.Atoi(p)
			break
		}
	}
	if port == 0 && a.listen.Port == 0 {
		return nil, errors.New("p2p: advertise: the libp2p listener has no TCP port")
	}
	m, err := a.listen.multiaddr(port)
	if err != nil {
		return nil, err
	}
	out := []ma.Multiaddr{m}
	a.addrs.Store(&out)
	return out, nil
}

// Resolver looks up the IP addresses of a seed's host name.
// *net.Resolver (and so net.DefaultResolver) implements it. It is called
// from Join's goroutine and must honour ctx.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// resolveSeeds turns seeds ("host:port", host an IP or a DNS name) into
// "ip:port" gossip addresses, looking every name up again (a seed that
// moved is found at its new address; one name may give many addresses).
// A name that does not resolve is skipped and reported in the error when no
// seed is left.
func resolveSeeds(ctx context.Context, r Resolver, seeds []string) ([]string, error) {
	if r == nil {
		r = net.DefaultResolver
	}
	var out []string
	var errs []error
	for _, s := range seeds {
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("seed %q: %w", s, err))
			continue
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			out = append(out, net.JoinHostPort(ip.String(), port))
			continue
		}
		ips, err := r.LookupNetIP(ctx, "ip", host)
		if err == nil && len(ips) == 0 {
			err = errors.New("no address")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("seed %q: lookup %s: %w", s, host, err))
			continue
		}
		for _, ip := range ips {
			out = append(out, net.JoinHostPort(ip.Unmap().String(), port))
		}
	}
	out = slices.Compact(out)
	if len(out) == 0 {
		msgs := make([]string, len(errs))
		for i, err := range errs {
			msgs[i] = err.Error()
		}
		return nil, errors.New(strings.Join(msgs, "; ")) // one line
	}
	for _, err := range errs {
		log.Warnw("seed not resolved", "err", err.Error())
	}
	return out, nil
}

// network returns n with the libp2p AddrsFactory set when n is the
// default TCP network and an address is advertised, so that libp2p's own
// announcements (identify) carry the advertised address too.
func (a *advertiser) network(n Network) Network {
	tn, ok := n.(tcpNetwork)
	if !ok || a.listen == nil {
		return n
	}
	tn.opts = append(slices.Clip(tn.opts), libp2p.AddrsFactory(a.factory))
	return tn
}

// gossipConfig sets memberlist's advertise address and port (when one is
// advertised) and returns the gossip "host:port" t bound, or "" when t
// does not tell its port.
func (a *advertiser) gossipConfig(mc *memberlist.Config, t memberlist.NodeAwareTransport, gossipAddr string) string {
	host, p, _ := net.SplitHostPort(gossipAddr)
	port, _ := strconv.Atoi(p)
	bound := ""
	if b, ok := t.(interface{ GetAutoBindPort() int }); ok {
		port = b.GetAutoBindPort()
		if host == "" {
			host = "0.0.0.0"
		}
		bound = net.JoinHostPort(host, strconv.Itoa(port))
	}
	if a.gossip != nil {
		mc.AdvertiseAddr = a.gossip.IP.String()
		mc.AdvertisePort = port
		if a.gossip.Port != 0 {
			mc.AdvertisePort = a.gossip.Port
		}
	}
	return bound
}
