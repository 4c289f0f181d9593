package p2p

import (
	"context"
	"crypto/rand"
	"fmt"
	"maps"
	"net"
	"slices"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/lni/goutils/syncutil"
)

// Start starts a node: binds the libp2p listener and (unless hidden) the
// gossip listener, and joins cfg.Seeds. ctx bounds binding and the first
// join, not the node's life. Events for other nodes go to h.
func Start(ctx context.Context, cfg Config, h Handler) (*Host, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("%w: nil Handler", ErrInvalidConfig)
	}
	cfg = cfg.withDefaults()
	name, _ := ParseName(cfg.Name)
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("p2p: identity key: %w", err)
	}
	adv, err := newAdvertiser(cfg)
	if err != nil {
		return nil, err
	}
	gctr, rl := &guardCounters{}, &rateLog{}
	var guard *connGuard
	var lh host.Host
	network := adv.network(cfg.Advanced.Network)
	if gn, ok := network.(gatedNetwork); ok {
		guard = newConnGuard(cfg.Advanced, gctr, rl)
		lh, err = gn.newGatedHost(ctx, cfg.Name, key, cfg.ListenAddr, guard)
	} else {
		lh, err = network.NewHost(ctx, cfg.Name, key, cfg.ListenAddr)
	}
	if err != nil {
		return nil, fmt.Errorf("p2p: libp2p listener on %s: %w", cfg.ListenAddr, err)
	}
	if guard != nil {
		lh.Network().Notify(guard.notifiee())
	}
	announced, err := adv.bind(lh.Network().ListenAddresses(), lh.Addrs())
	if err != nil {
		_ = lh.Close()
		return nil, err
	}
	hctx, cancel := context.WithCancel(context.Background())
	n := &Host{
		guard:       guard,
		sguard:      &streamGuard{maxTotal: cfg.Advanced.MaxPendingConns, maxPerIP: cfg.Advanced.MaxPendingPerSource, ctr: gctr, rl: rl, perIP: map[string]int{}},
		gctr:        gctr,
		rl:          rl,
		cfg:         cfg,
		name:        name,
		handler:     h,
		lh:          lh,
		macKey:      cookieKey(cfg.Cookie),
		ctx:         hctx,
		cancel:      cancel,
		stopper:     syncutil.NewStopper(),
		connStopper: syncutil.NewStopper(),
		stopped:     make(chan struct{}),
		conns:       make(map[string]*conn),
		last:        make(map[string]*conn),
		dialing:     make(map[peer.ID]*dialCall),
		known:       make(map[string]peer.AddrInfo),
		meshDial:    make(map[string]bool),
		stats:       make(map[string]*peerCounters),
		accepts:     make(map[peer.ID]int),
		changed:     make(chan struct{}),
		tags:        cfg.Tags,
		adv:         adv,
	}
	n.memberH, _ = h.(MemberHandler)
	n.gossipH, _ = h.(GossipHandler)
	n.members.init()
	n.publish()
	if cfg.Incarnation == 0 {
		cfg.Incarnation = newIncarnation()
	}
	n.self = Peer{
		Name:        cfg.Name,
		Incarnation: cfg.Incarnation,
		Hidden:      cfg.Hidden,
		ID:          lh.ID(),
		Addrs:       addrStrings(announced),
	}
	if err := n.rebuildMeta(cfg.Tags, false); err != nil {
		_ = lh.Close()
		cancel()
		return nil, err // Validate checked the tags; kept for safety
	}
	if _, tcp := network.(gatedNetwork); tcp && adv.listen == nil && cfg.Advanced.DirectPort != DirectOff {
		if err := n.startDirect(key); err != nil {
			n.connStopper.Stop()
			_ = lh.Close()
			cancel()
			return nil, err
		}
	}
	lh.SetStreamHandler(DistProtocol, n.handleStream)
	n.stopper.RunWorker(n.membershipLoop)
	if !cfg.Hidden {
		if err := n.startMemberlist(); err != nil {
			_ = n.Stop(context.Background())
			return nil, err
		}
		if len(cfg.Seeds) > 0 {
			if err := n.Join(ctx, cfg.Seeds); err != nil {
				sctx, c := context.WithTimeout(context.Background(), time.Second)
				defer c()
				_ = n.Stop(sctx)
				return nil, err
			}
		}
	}
	log.Infow("node started", "node", cfg.Name, "incarnation", n.self.Incarnation, "peer", lh.ID().String(), "hidden", cfg.Hidden)
	return n, nil
}

func (h *Host) startMemberlist() error {
	t, err := h.cfg.Advanced.Network.NewTransport(h.cfg.Name, h.cfg.GossipAddr)
	if err != nil {
		return fmt.Errorf("p2p: gossip transport: %w", err)
	}
	mc := h.cfg.Profile.memberlistConfig()
	mc.Name = h.cfg.Name
	h.gossipBound = h.adv.gossipConfig(mc, t, h.cfg.GossipAddr) // t itself: the wrapper hides its bound port
	gt := &guardTransport{NodeAwareTransport: t, g: h.sguard, out: make(chan net.Conn), stop: h.stopper.ShouldStop()}
	h.stopper.RunWorker(gt.forward)
	mc.Transport = gt
	mc.TCPTimeout = min(mc.TCPTimeout, h.cfg.Advanced.HandshakeTimeout)
	mc.Logger = memberlistLogger()
	mc.SecretKey = gossipKey(h.cfg.Cookie)
	mc.GossipVerifyIncoming = true
	mc.GossipVerifyOutgoing = true
	// A node that restarts on another gossip port may take its name back
	// as soon as its earlier self is dead (memberlist's default, never,
	// would lock the name out until the dead entry is reaped).
	mc.DeadNodeReclaimTime = time.Millisecond
	d := &delegate{h: h}
	mc.Delegate = d
	mc.Events = d
	mc.Conflict = d
	mc.Merge = d
	mc.Alive = d
	if h.cfg.Advanced.TuneMemberlist != nil {
		h.cfg.Advanced.TuneMemberlist(mc)
	}
	h.initBroadcasts(mc)
	ml, err := memberlist.Create(mc)
	if err != nil {
		_ = t.Shutdown()
		return fmt.Errorf("p2p: memberlist: %w", err)
	}
	h.ml = ml
	h.gossipAddr = ml.LocalNode().Address() // before any goroutine can change it
	if h.gossipBound == "" {
		h.gossipBound = h.gossipAddr
	}
	return nil
}

// Stop leaves the membership gracefully (ctx bounds it: Leave, and flushing
// each connection's queue followed by a goodbye), then closes everything
// and waits for every goroutine. It is idempotent; after ctx expires it
// still force-stops and returns the ctx error.
func (h *Host) Stop(ctx context.Context) error {
	h.stopOnce.Do(func() {
		h.stopErr = h.stop(ctx)
		close(h.stopped)
	})
	<-h.stopped
	return h.stopErr
}

func (h *Host) stop(ctx context.Context) error {
	var ctxFailed error
	h.mu.Lock()
	h.stopping = true
	h.mu.Unlock()
	h.lh.RemoveStreamHandler(DistProtocol)
	// Say goodbye on every connection and let the writers flush, before
	// leaving the membership: peers then see ErrLeft from the goodbye
	// (memberlist's leave event does not say left from dead).
	h.mu.Lock()
	conns := slices.Collect(maps.Values(h.conns))
	h.mu.Unlock()
	for _, c := range conns {
		c.shutdown(byeLeft, ErrShutdown)
	}
	// A peer that does not read (frozen) must not hold Stop forever: without
	// a deadline the flush gets defaultLeaveTimeout.
	fctx := ctx
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		fctx, cancel = context.WithTimeout(ctx, defaultLeaveTimeout)
		defer cancel()
	}
flush:
	for _, c := range conns {
		select {
		case <-c.writerDone:
		case <-fctx.Done():
			if ctx.Err() != nil {
				ctxFailed = ctxErr(ctx)
			}
			break flush
		}
	}
	if h.ml != nil && !h.mlShutdown && ctxFailed == nil {
		timeout := defaultLeaveTimeout
		if dl, ok := ctx.Deadline(); ok {
			timeout = time.Until(dl)
		}
		if timeout > 0 {
			h.announceLeave(timeout / 2)
		}
		if dl, ok := ctx.Deadline(); ok {
			timeout = time.Until(dl)
		}
		if timeout > 0 {
			if err := h.ml.Leave(timeout); err != nil {
				log.Debugw("memberlist leave", "err", err.Error())
			}
		}
	}
	if h.ml != nil && !h.mlShutdown {
		if err := h.ml.Shutdown(); err != nil {
			log.Debugw("memberlist shutdown", "err", err.Error())
		}
	}
	h.cancel()
	if h.direct != nil {
		h.direct.close()
	}
	h.mu.Lock()
	conns = slices.Collect(maps.Values(h.conns))
	h.mu.Unlock()
	for _, c := range conns {
		c.close(ErrShutdown)
	}
	h.connStopper.Stop()
	h.stopper.Stop()
	if err := h.lh.Close(); err != nil {
		log.Debugw("libp2p host close", "err", err.Error())
	}
	if h.guard != nil {
		h.guard.close()
	}
	log.Infow("node stopped", "node", h.cfg.Name)
	return ctxFailed
}
