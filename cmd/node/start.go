package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/heal"
	"github.com/nodal-go/nodal/registry"
	"github.com/nodal-go/nodal/rpc"
)

const (
	// startTimeout bounds binding and the first join.
	startTimeout = 30 * time.Second
	// stopTimeout bounds the graceful part of a stop (leaving the cluster).
	stopTimeout = 10 * time.Second
)

// runningNode is a node started by this binary, with the addresses it
// really listens on.
type runningNode struct {
	*nodal.Node
	Listen string   // libp2p host:port (what ctl --to takes)
	Gossip string   // memberlist host:port (what --join takes)
	RPC    *rpc.RPC // the node's rpc service (ctl rpc, bench rpc)
	// Registry is the node's global registry (ctl register, whereis, ...).
	Registry *registry.Registry

	Heal *heal.Heal // the node's heal service (ctl partitions, ctl quorum)
}

// upLine is the line nodal start prints once the node is up.
func (r *runningNode) upLine() string {
	return fmt.Sprintf("node %s up listen=%s gossip=%s incarnation=%d", r.Name(), r.Listen, r.Gossip, r.Incarnation())
}

// startNode starts a node with the binary's behaviours and ctl service.
// stdout receives what its processes print.
func startNode(ctx context.Context, o startOptions, stdout io.Writer) (*runningNode, error) {
	listen, err := resolveHost(ctx, o.Listen)
	if err != nil {
		return nil, fmt.Errorf("--listen %s: %w", o.Listen, err)
	}
	gossip, err := resolveHost(ctx, o.Gossip)
	if err == nil {
		gossip, err = resolvePort(gossip)
	}
	if err != nil {
		return nil, fmt.Errorf("--gossip %s: %w", o.Gossip, err)
	}
	o.Listen = listen
	cfg := nodal.DefaultLANConfig(o.Name, o.Cookie)
	cfg.Profile = o.Profile
	cfg.ListenAddr = o.Listen
	cfg.GossipAddr = gossip
	cfg.AdvertiseAddr, cfg.AdvertiseGossipAddr = o.Advertise, o.AdvertiseGossip
	cfg.P2P.DirectPort = o.DirectPort
	cfg.Seeds = o.Join
	cfg.Stdout = stdout
	cfg.P2P.Network = o.Network
	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	n, err := nodal.Start(sctx, cfg)
	if err != nil {
		return nil, err
	}
	gossip = n.GossipAddr() // the advertised one, what --join takes
	r := &runningNode{Node: n, Gossip: gossip}
	err = registerBehaviours(n)
	var rs *rpc.RPC
	if err == nil {
		rs, err = rpc.New(n, rpc.Config{})
	}
	if err == nil {
		r.Registry, err = attachRegistry(n)
	}
	if err == nil {
		err = n.RegisterBehaviour("bench_regwatch", regWatchBehaviour(r.Registry))
	}
	if err == nil {
		err = attachGroups(n)
	}
	if err == nil {
		r.Heal, err = heal.New(n, heal.Config{Expected: o.Expect, Seeds: o.Join})
	}
	if err == nil {
		err = addReconcilers(n, r.Heal, r.Registry)
	}
	if err == nil {
		err = startCtlService(n, gossip, rs, r.Heal)
	}
	if err != nil {
		stopNode(n)
		return nil, err
	}
	r.RPC = rs
	r.Listen = pickListen(listenHostPorts(n.Info().Addrs), o.Listen)
	return r, nil
}

// addReconcilers has heal run the registry's and the groups' anti-entropy
// after a heal, and report what they exchanged with the returned nodes.
func addReconcilers(n *nodal.Node, h *heal.Heal, reg *registry.Registry) error {
	sc, err := scopeOf(n)
	if err != nil {
		return err
	}
	if err := h.AddReconciler("registry", heal.CountedSync(reg.Sync, func(peers []string) heal.Exchange {
		return heal.Exchange(reg.ExchangedSinceUp(peers...))
	})); err != nil {
		return err
	}
	return h.AddReconciler("groups", heal.CountedSync(sc.Sync, func(peers []string) heal.Exchange {
		return heal.Exchange(sc.ExchangedSinceUp(peers...))
	}))
}

// stopNode stops n gracefully, bounded by stopTimeout.
func stopNode(n *nodal.Node) error {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	return n.Stop(ctx)
}

// pickListen chooses, among the node's listen addresses, the one matching
// the requested host (the first otherwise).
func pickListen(have []string, requested string) string {
	host, _, _ := net.SplitHostPort(requested)
	for _, a := range have {
		if h, _, _ := net.SplitHostPort(a); h == host {
			return a
		}
	}
	if len(have) > 0 {
		return have[0]
	}
	return requested
}

// resolveHost replaces a host name by its first IP address (IPv4 first):
// both transports bind IP addresses only.
func resolveHost(ctx context.Context, hostport string) (string, error) {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", err
	}
	if net.ParseIP(host) != nil {
		return hostport, nil
	}
	ips, err := net.DefaultResolver.LookupIP(ctx, "ip", host)
	if err != nil {
		return "", err
	}
	slices.SortStableFunc(ips, func(a, b net.IP) int {
		return cmp.Compare(boolInt(a.To4() == nil), boolInt(b.To4() == nil))
	})
	if len(ips) == 0 {
		return "", fmt.Errorf("%s has no address", host)
	}
	return net.JoinHostPort(ips[0].String(), p), nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// resolvePort turns port 0 into a free port on host, so that the gossip
// address can be printed and given to others as a seed: the node API does
// not report the gossip port it bound. A port that is busy for either TCP
// or UDP (memberlist needs both) is skipped.
func resolvePort(hostport string) (string, error) {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", err
	}
	if p != "0" {
		return hostport, nil
	}
	var last error
	for range 20 {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return "", err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port)))
		l.Close()
		if err != nil {
			last = err
			continue
		}
		u.Close()
		return net.JoinHostPort(host, strconv.Itoa(port)), nil
	}
	return "", fmt.Errorf("no free port: %w", last)
}

// cmdStart runs nodal start: a node until ctx is done (SIGINT or SIGTERM),
// then a graceful leave.
func cmdStart(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	o, err := parseStartFlags(args, getenv)
	if err != nil {
		return err
	}
	r, err := startNode(ctx, o, stdout)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, r.upLine())
	<-ctx.Done()
	if err := stopNode(r.Node); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	fmt.Fprintf(stdout, "node %s down\n", r.Name())
	return nil
}
