package p2p

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/lni/goutils/syncutil"
	ma "github.com/multiformats/go-multiaddr"
)

const (
	// handshakeTimeout bounds one cookie handshake.
	handshakeTimeout = 10 * time.Second
	// defaultLeaveTimeout bounds memberlist's Leave, and the goodbye flush,
	// when Stop's ctx has no deadline.
	defaultLeaveTimeout = 5 * time.Second
	// maxKnown bounds the remembered addresses of nodes met outside the membership.
	maxKnown = 1024
	// addrTTL is how long dial addresses stay in the peerstore.
	addrTTL = time.Hour
)

// ListenResolver is an optional interface of a Network: it returns the
// peer ID listening on a "host:port", so ConnectAddr needs no probe dial.
type ListenResolver interface {
	HostAt(listen string) (peer.ID, bool)
}

// Host is a running node of the p2p layer: a libp2p host carrying framed
// streams and (unless hidden) a memberlist member.
type Host struct {
	cfg     Config
	name    Name
	self    Peer
	handler Handler
	lh      host.Host
	ml      *memberlist.Memberlist
	// mlShutdown is set (before Stop, by tests simulating a crash) when
	// memberlist was shut down without leaving.
	mlShutdown bool
	macKey     []byte
	meta       []byte

	ctx    context.Context // cancelled by Stop; bounds dials
	cancel context.CancelFunc

	stopper     *syncutil.Stopper // membership worker, joins
	connStopper *syncutil.Stopper // readers, writers, dialers
	stopOnce    sync.Once
	stopErr     error
	stopped     chan struct{}

	// table is a copy-on-write snapshot of conns for lock-free Send.
	table atomic.Pointer[map[string]*conn]

	mu       sync.Mutex
	stopping bool
	conns    map[string]*conn         // current connection per name
	last     map[string]*conn         // last connection per name (for NodeDown ordering)
	dialing  map[peer.ID]*dialCall    // outbound handshakes in progress
	members  map[string]*memberInfo   // memberlist view (others)
	known    map[string]peer.AddrInfo // nodes met outside the membership
	meshDial map[string]bool          // mesh dialers running
	stats    map[string]*peerCounters
	changed  chan struct{} // closed and replaced on every conns change
	mergeErr error         // last refusal by our merge delegate

	gossipAddr string

	evMu     sync.Mutex
	view     map[string]Member    // memberlist's view of the others, copied in its callbacks
	viewMeta map[string]*nodeMeta // their decoded meta, for dialing
	pending  map[string]memberEvent
	evWake   chan struct{}
}

type dialCall struct {
	done chan struct{}
	c    *conn
	err  error
}

type memberInfo struct {
	meta  *nodeMeta
	state memberlist.NodeStateType
}

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
	lh, err := cfg.Network.NewHost(ctx, cfg.Name, key, cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("p2p: libp2p listener on %s: %w", cfg.ListenAddr, err)
	}
	hctx, cancel := context.WithCancel(context.Background())
	n := &Host{
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
		members:     make(map[string]*memberInfo),
		known:       make(map[string]peer.AddrInfo),
		meshDial:    make(map[string]bool),
		stats:       make(map[string]*peerCounters),
		changed:     make(chan struct{}),
		pending:     make(map[string]memberEvent),
		view:        make(map[string]Member),
		viewMeta:    make(map[string]*nodeMeta),
		evWake:      make(chan struct{}, 1),
	}
	n.publish()
	if cfg.Incarnation == 0 {
		cfg.Incarnation = newIncarnation()
	}
	n.self = Peer{
		Name:        cfg.Name,
		Incarnation: cfg.Incarnation,
		Hidden:      cfg.Hidden,
		ID:          lh.ID(),
		Addrs:       addrStrings(lh.Addrs()),
	}
	n.meta = (&nodeMeta{Incarnation: n.self.Incarnation, Hidden: cfg.Hidden, ID: lh.ID(), Addrs: lh.Addrs()}).encode(memberlist.MetaMaxSize)
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

func newIncarnation() uint64 {
	var b [2]byte
	_, _ = rand.Read(b[:])
	// Microseconds since the epoch, with 16 random low bits: grows with
	// start time and differs between two starts in the same microsecond.
	return uint64(time.Now().UnixMicro())<<16 | uint64(b[0])<<8 | uint64(b[1])
}

func addrStrings(as []ma.Multiaddr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	slices.Sort(out)
	return out
}

func (h *Host) startMemberlist() error {
	t, err := h.cfg.Network.NewTransport(h.cfg.Name, h.cfg.GossipAddr)
	if err != nil {
		return fmt.Errorf("p2p: gossip transport: %w", err)
	}
	mc := h.cfg.Profile.memberlistConfig()
	mc.Name = h.cfg.Name
	mc.Transport = t
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
	if h.cfg.TuneMemberlist != nil {
		h.cfg.TuneMemberlist(mc)
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		_ = t.Shutdown()
		return fmt.Errorf("p2p: memberlist: %w", err)
	}
	h.ml = ml
	h.gossipAddr = ml.LocalNode().Address() // before any goroutine can change it
	return nil
}

// Self returns this node as others see it.
func (h *Host) Self() Peer {
	p := h.self
	p.Addrs = slices.Clone(p.Addrs)
	return p
}

// GossipAddr returns the memberlist "host:port" others can use as a seed,
// or "" for a hidden node.
func (h *Host) GossipAddr() string {
	return h.gossipAddr
}

// MaxFrameSize returns the largest frame Send accepts (Config.MaxFrameSize).
func (h *Host) MaxFrameSize() int { return h.cfg.MaxFrameSize }

// Reach starts connecting to node in the background, if it is a live
// member of the cluster, and then calls done with the outcome, within
// timeout: nil once connected (the handler's NodeUp for the connection may
// come just before or just after), else why not. It reports false, and
// never calls done, when node is not a live member or the host is
// stopping. done runs on a host goroutine and must not block.
func (h *Host) Reach(node string, timeout time.Duration, done func(error)) bool {
	h.evMu.Lock()
	m := h.viewMeta[node]
	h.evMu.Unlock()
	if m == nil || node == h.cfg.Name {
		return false
	}
	ai := peer.AddrInfo{ID: m.ID, Addrs: m.Addrs}
	// Start the worker under h.mu: Stop sets stopping under it before it
	// stops connStopper, so the worker is never started into a stopping
	// stopper (whose Stop holds the stopper's lock while it waits).
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopping {
		return false
	}
	h.connStopper.RunWorker(func() {
		ctx, cancel := context.WithTimeout(h.ctx, timeout)
		defer cancel()
		_, err := h.dial(ctx, ai, node)
		done(err)
	})
	return true
}

// ListenAddrs returns the libp2p listen addresses as "host:port" (for ConnectAddr).
func (h *Host) ListenAddrs() []string {
	var out []string
	for _, a := range h.lh.Addrs() {
		ip, err := a.ValueForProtocol(ma.P_IP4)
		if err != nil {
			if ip, err = a.ValueForProtocol(ma.P_IP6); err == nil {
				ip = "[" + ip + "]"
			}
		}
		port, perr := a.ValueForProtocol(ma.P_TCP)
		if err == nil && perr == nil {
			out = append(out, ip+":"+port)
		}
	}
	slices.Sort(out)
	return out
}

// Join joins the membership through any of seeds (gossip "host:port").
// ctx bounds the wait; a refusal (cookie, name in use, name mode) is an
// error that says so.
func (h *Host) Join(ctx context.Context, seeds []string) error {
	if h.ml == nil {
		return fmt.Errorf("%w: a hidden node does not join the membership", ErrInvalidConfig)
	}
	if h.isStopping() {
		return ErrStopped
	}
	seeds = slices.Clone(seeds)
	type result struct {
		n   int
		err error
	}
	res := make(chan result, 1)
	h.mu.Lock()
	h.mergeErr = nil
	h.mu.Unlock()
	h.stopper.RunWorker(func() {
		n, err := h.ml.Join(seeds)
		res <- result{n, err}
	})
	var r result
	select {
	case r = <-res:
	case <-ctx.Done():
		return fmt.Errorf("p2p: join %s: %w", strings.Join(seeds, ","), ctxErr(ctx))
	case <-h.stopper.ShouldStop():
		return ErrStopped
	}
	h.mu.Lock()
	merr := h.mergeErr
	h.mu.Unlock()
	if merr != nil {
		return fmt.Errorf("p2p: join %s refused: %w", strings.Join(seeds, ","), merr)
	}
	if r.n > 0 {
		return nil
	}
	if r.err != nil && strings.Contains(strings.ToLower(r.err.Error()), "no installed keys could decrypt") {
		log.Warnw("cookie mismatch from gossip seed "+strings.Join(seeds, ","), "seeds", seeds)
		return &PeerError{Node: strings.Join(seeds, ","), Err: fmt.Errorf("%w: gossip could not be authenticated", ErrCookieMismatch)}
	}
	return fmt.Errorf("%w: join %s: %v", ErrNoConnection, strings.Join(seeds, ","), r.err)
}

func (h *Host) isStopping() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stopping
}

// publish refreshes the lock-free snapshot and wakes waiters; h.mu held
// (or during construction).
func (h *Host) publish() {
	m := maps.Clone(h.conns)
	h.table.Store(&m)
	close(h.changed)
	h.changed = make(chan struct{})
}

func (h *Host) lookup(node string) *conn {
	return (*h.table.Load())[node]
}

func (h *Host) counters(name string) *peerCounters {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.stats[name]
	if c == nil {
		c = &peerCounters{}
		h.stats[name] = c
	}
	return c
}

func (h *Host) unregister(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conns[c.peer.Name] == c {
		delete(h.conns, c.peer.Name)
		h.publish()
	}
}

// Send queues frame for node, connecting first if needed (auto-connect).
// It blocks only while node's bounded queue is full, bounded by ctx. The
// frame is copied; the caller may reuse it. Frames to one node are
// delivered in order.
func (h *Host) Send(ctx context.Context, node string, frame []byte) error {
	if len(frame) > h.cfg.MaxFrameSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, len(frame), h.cfg.MaxFrameSize)
	}
	c := h.lookup(node)
	if c == nil {
		var err error
		if c, err = h.connect(ctx, node); err != nil {
			return err
		}
	}
	return c.enqueue(ctx, frameData, frame, true)
}

// TrySend queues frame for an already connected node without blocking:
// ErrQueueFull when its queue is full, ErrNoConnection when not connected.
func (h *Host) TrySend(node string, frame []byte) error {
	if len(frame) > h.cfg.MaxFrameSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, len(frame), h.cfg.MaxFrameSize)
	}
	c := h.lookup(node)
	if c == nil {
		return &PeerError{Node: node, Err: ErrNoConnection}
	}
	return c.enqueue(context.Background(), frameData, frame, false)
}

// Connect makes sure a connection to node exists (member or a node met before).
func (h *Host) Connect(ctx context.Context, node string) error {
	if h.lookup(node) != nil {
		return nil
	}
	_, err := h.connect(ctx, node)
	return err
}

// Disconnect closes the connection to node; both sides see ErrDisconnected.
// A member of the cluster may be reconnected later by the full mesh.
func (h *Host) Disconnect(node string) error {
	c := h.lookup(node)
	if c == nil {
		return &PeerError{Node: node, Err: ErrNoConnection}
	}
	c.shutdown(byeDisconnected, ErrDisconnected)
	return nil
}

// Ping measures a round trip over node's frame stream.
func (h *Host) Ping(ctx context.Context, node string) (time.Duration, error) {
	c := h.lookup(node)
	if c == nil {
		var err error
		if c, err = h.connect(ctx, node); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	if err := c.ping(ctx); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// Peers returns the connected nodes (visible and hidden), sorted by name.
func (h *Host) Peers() []Peer {
	t := *h.table.Load()
	out := make([]Peer, 0, len(t))
	for _, name := range slices.Sorted(maps.Keys(t)) {
		p := t[name].peer
		p.Addrs = slices.Clone(p.Addrs)
		out = append(out, p)
	}
	return out
}

// Members returns the membership as memberlist reports it (alive and
// suspect nodes, self included), sorted by name. Hidden nodes are never
// members; a hidden node has none.
func (h *Host) Members() []Member {
	if h.ml == nil {
		return nil
	}
	h.evMu.Lock()
	out := make([]Member, 0, len(h.view)+1)
	for _, m := range h.view {
		m.Addrs = slices.Clone(m.Addrs)
		out = append(out, m)
	}
	h.evMu.Unlock()
	out = append(out, Member{
		Name:        h.self.Name,
		Incarnation: h.self.Incarnation,
		ID:          h.self.ID,
		Addrs:       slices.Clone(h.self.Addrs),
		GossipAddr:  h.gossipAddr,
		State:       MemberAlive,
	})
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Stats returns counters per peer name (sorted) and their total.
func (h *Host) Stats() Stats {
	h.mu.Lock()
	names := slices.Sorted(maps.Keys(h.stats))
	ctrs := make([]*peerCounters, len(names))
	for i, n := range names {
		ctrs[i] = h.stats[n]
	}
	h.mu.Unlock()
	var s Stats
	for i, c := range ctrs {
		p := PeerStats{
			Name:         names[i],
			FramesIn:     c.framesIn.Load(),
			BytesIn:      c.bytesIn.Load(),
			FramesOut:    c.framesOut.Load(),
			BytesOut:     c.bytesOut.Load(),
			Dropped:      c.dropped.Load(),
			DecodeErrors: c.decodeErrors.Load(),
		}
		s.Peers = append(s.Peers, p)
		s.Total.FramesIn += p.FramesIn
		s.Total.BytesIn += p.BytesIn
		s.Total.FramesOut += p.FramesOut
		s.Total.BytesOut += p.BytesOut
		s.Total.Dropped += p.Dropped
		s.Total.DecodeErrors += p.DecodeErrors
	}
	return s
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
	log.Infow("node stopped", "node", h.cfg.Name)
	return ctxFailed
}

// --- connection setup ---

func (h *Host) myHello() *hello {
	return &hello{
		Name:        h.cfg.Name,
		Incarnation: h.self.Incarnation,
		Hidden:      h.cfg.Hidden,
		Long:        h.name.Long,
		Nonce:       newNonce(),
		Addrs:       h.self.Addrs,
	}
}

// addrInfo finds how to reach node: membership meta, then nodes met before.
func (h *Host) addrInfo(node string) (peer.AddrInfo, bool) {
	h.evMu.Lock()
	m := h.viewMeta[node]
	h.evMu.Unlock()
	if m != nil {
		return peer.AddrInfo{ID: m.ID, Addrs: m.Addrs}, true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	ai, ok := h.known[node]
	return ai, ok
}

// connect dials node by name and waits for its connection.
func (h *Host) connect(ctx context.Context, node string) (*conn, error) {
	if node == h.cfg.Name {
		return nil, &PeerError{Node: node, Err: fmt.Errorf("%w: cannot connect to self", ErrNoConnection)}
	}
	ai, ok := h.addrInfo(node)
	if !ok {
		return nil, &PeerError{Node: node, Err: fmt.Errorf("%w: unknown node", ErrNoConnection)}
	}
	return h.dial(ctx, ai, node)
}

// dial opens (or joins an in-flight opening of) the connection to ai.ID.
func (h *Host) dial(ctx context.Context, ai peer.AddrInfo, expect string) (*conn, error) {
	h.mu.Lock()
	if h.stopping {
		h.mu.Unlock()
		return nil, ErrStopped
	}
	if expect != "" {
		if c := h.conns[expect]; c != nil {
			h.mu.Unlock()
			return c, nil
		}
	}
	d := h.dialing[ai.ID]
	if d == nil {
		d = &dialCall{done: make(chan struct{})}
		h.dialing[ai.ID] = d
		h.mu.Unlock()
		h.connStopper.RunWorker(func() {
			dctx, cancel := context.WithTimeout(h.ctx, handshakeTimeout)
			defer cancel()
			c, err := h.dialOnce(dctx, ai, expect)
			h.mu.Lock()
			d.c, d.err = c, err
			delete(h.dialing, ai.ID)
			h.mu.Unlock()
			close(d.done)
			if c != nil {
				h.startConn(c)
			}
		})
	} else {
		h.mu.Unlock()
	}
	select {
	case <-d.done:
	case <-ctx.Done():
		return nil, ctxErr(ctx)
	case <-h.connStopper.ShouldStop():
		return nil, ErrStopped
	}
	if d.err == nil {
		return d.c, nil
	}
	if !errors.Is(d.err, errTieBreak) {
		return nil, d.err
	}
	// The peer keeps its own connection to us; wait for it to register.
	tctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	ctx = tctx
	for {
		h.mu.Lock()
		ch := h.changed
		for _, c := range h.conns {
			if c.peer.ID == ai.ID {
				h.mu.Unlock()
				return c, nil
			}
		}
		h.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctxErr(ctx)
		case <-h.connStopper.ShouldStop():
			return nil, ErrStopped
		}
	}
}

// dialOnce runs the dialer's side of the handshake.
func (h *Host) dialOnce(ctx context.Context, ai peer.AddrInfo, expect string) (*conn, error) {
	who := expect
	if who == "" {
		who = ai.ID.String()
	}
	if len(ai.Addrs) > 0 {
		h.lh.Peerstore().AddAddrs(ai.ID, ai.Addrs, addrTTL)
	}
	s, err := h.lh.NewStream(network.WithAllowLimitedConn(ctx, "nodal"), ai.ID, DistProtocol)
	if err != nil {
		return nil, &PeerError{Node: who, Err: fmt.Errorf("%w: %v", ErrNoConnection, err)}
	}
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()
	c, err := h.dialHandshake(s, ai.ID, expect)
	if err != nil {
		_ = s.Reset()
		if ctx.Err() != nil && !errors.Is(err, ErrCookieMismatch) {
			err = &PeerError{Node: who, Err: fmt.Errorf("%w: handshake: %w", ErrNoConnection, ctxErr(ctx))}
		}
		return nil, err
	}
	return c, nil
}

func (h *Host) dialHandshake(s network.Stream, id peer.ID, expect string) (*conn, error) {
	br := bufio.NewReaderSize(s, readBufSize)
	mine := h.myHello()
	if _, err := s.Write(mine.append(nil)); err != nil {
		return nil, &PeerError{Node: id.String(), Err: fmt.Errorf("%w: %v", ErrNoConnection, err)}
	}
	theirs, err := readHello(br)
	if err != nil {
		return nil, &PeerError{Node: id.String(), Err: fmt.Errorf("%w: handshake: %w", ErrNoConnection, err)}
	}
	mac, err := readMAC(br)
	if err != nil {
		return nil, &PeerError{Node: theirs.Name, Err: fmt.Errorf("%w: handshake: %w", ErrNoConnection, err)}
	}
	cookieOK := hmac.Equal(mac, handshakeMAC(h.macKey, "listener", mine, theirs, h.lh.ID(), id))
	status := hsOK
	var refuse error
	switch {
	case !cookieOK:
		status = hsCookieMismatch
	case theirs.Hidden && h.cfg.Hidden:
		status, refuse = hsBadHello, fmt.Errorf("%w: two hidden nodes do not connect", ErrNoConnection)
	case expect != "" && theirs.Name != expect:
		status, refuse = hsBadHello, fmt.Errorf("%w: expected %s, peer is %s", ErrNoConnection, expect, theirs.Name)
	default:
		if err := checkMode(h.name, theirs.Name); err != nil {
			status, refuse = hsNameMode, err
		}
	}
	reply := append([]byte{status}, handshakeMAC(h.macKey, "dialer", mine, theirs, h.lh.ID(), id)...)
	if _, err := s.Write(reply); err != nil {
		return nil, &PeerError{Node: theirs.Name, Err: fmt.Errorf("%w: %v", ErrNoConnection, err)}
	}
	// Always wait for the listener's verdict, so that it has read our
	// status (and logged a mismatch) before we hang up.
	verdict, verr := br.ReadByte()
	if !cookieOK {
		log.Warnw("cookie mismatch from "+theirs.Name, "node", theirs.Name, "peer", id.String())
		return nil, &PeerError{Node: theirs.Name, Err: ErrCookieMismatch}
	}
	if refuse != nil {
		log.Warnw("refused connection to "+theirs.Name, "node", theirs.Name, "err", refuse.Error())
		return nil, &PeerError{Node: theirs.Name, Err: refuse}
	}
	if verr != nil {
		return nil, &PeerError{Node: theirs.Name, Err: fmt.Errorf("%w: handshake: %v", ErrNoConnection, verr)}
	}
	if verdict != hsOK {
		err := statusErr(verdict, theirs.Name)
		if verdict == hsCookieMismatch {
			log.Warnw("cookie mismatch from "+theirs.Name, "node", theirs.Name, "peer", id.String())
		} else if verdict != hsTieBreak {
			log.Warnw("connection refused by "+theirs.Name, "node", theirs.Name, "err", err.Error())
		}
		return nil, err
	}
	p := h.peerOf(theirs, id)
	c := newConn(h, p, s, br, true)
	if code, err := h.admit(c, false); code != hsOK {
		log.Warnw("dropping new connection to "+p.Name, "node", p.Name, "err", err.Error())
		return nil, err
	}
	return c, nil
}

func (h *Host) peerOf(hl *hello, id peer.ID) Peer {
	addrs := slices.Clone(hl.Addrs)
	slices.Sort(addrs)
	return Peer{Name: hl.Name, Incarnation: hl.Incarnation, Hidden: hl.Hidden, ID: id, Addrs: addrs}
}

// handleStream runs the listener's side of the handshake on libp2p's goroutine.
func (h *Host) handleStream(s network.Stream) {
	if h.isStopping() {
		_ = s.Reset()
		return
	}
	ctx, cancel := context.WithTimeout(h.ctx, handshakeTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	c, err := h.acceptHandshake(s)
	stop()
	if err != nil {
		log.Debugw("inbound handshake failed", "peer", s.Conn().RemotePeer().String(), "err", err.Error())
		// Close, not Reset: a verdict we wrote must reach the dialer.
		_ = s.Close()
		return
	}
	h.startConn(c)
}

func (h *Host) acceptHandshake(s network.Stream) (*conn, error) {
	id := s.Conn().RemotePeer()
	br := bufio.NewReaderSize(s, readBufSize)
	theirs, err := readHello(br)
	if err != nil {
		return nil, err
	}
	mine := h.myHello()
	msg := mine.append(nil)
	msg = append(msg, handshakeMAC(h.macKey, "listener", theirs, mine, id, h.lh.ID())...)
	if _, err := s.Write(msg); err != nil {
		return nil, err
	}
	var reply [1 + macLen]byte
	if _, err := io.ReadFull(br, reply[:]); err != nil {
		return nil, err
	}
	if reply[0] == hsCookieMismatch || !hmac.Equal(reply[1:], handshakeMAC(h.macKey, "dialer", theirs, mine, id, h.lh.ID())) {
		log.Warnw("cookie mismatch from "+theirs.Name, "node", theirs.Name, "peer", id.String())
		_, _ = s.Write([]byte{hsCookieMismatch})
		return nil, &PeerError{Node: theirs.Name, Err: ErrCookieMismatch}
	}
	if reply[0] != hsOK {
		_, _ = s.Write([]byte{reply[0]})
		return nil, statusErr(reply[0], theirs.Name)
	}
	verdict := hsOK
	var refuse error
	if _, err := ParseName(theirs.Name); err != nil {
		verdict, refuse = hsBadHello, err
	} else if err := checkMode(h.name, theirs.Name); err != nil {
		verdict, refuse = hsNameMode, err
	} else if theirs.Hidden && h.cfg.Hidden {
		verdict, refuse = hsBadHello, fmt.Errorf("%w: two hidden nodes do not connect", ErrNoConnection)
	}
	var c *conn
	if verdict == hsOK {
		c = newConn(h, h.peerOf(theirs, id), s, br, false)
		verdict, refuse = h.admit(c, true)
	}
	if verdict != hsOK && verdict != hsTieBreak {
		log.Warnw("refused connection from "+theirs.Name, "node", theirs.Name, "err", refuse.Error())
	}
	if _, err := s.Write([]byte{verdict}); err != nil {
		if c != nil && verdict == hsOK {
			c.close(fmt.Errorf("%w: %v", ErrConnClosed, err))
			close(c.done)
			close(c.writerDone)
		}
		return nil, err
	}
	if verdict != hsOK {
		return nil, refuse
	}
	return c, nil
}

// admit decides whether c may become the connection for its name and
// registers it. Both sides apply the same rules, so a simultaneous dial
// leaves one connection: the one dialed by the lower peer ID.
func (h *Host) admit(c *conn, inbound bool) (byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	name := c.peer.Name
	if h.stopping {
		return hsStopping, ErrStopped
	}
	if name == h.cfg.Name {
		return hsNameInUse, &PeerError{Node: name, Err: fmt.Errorf("%w: %s is this node's own name", ErrNameInUse, name)}
	}
	if old := h.conns[name]; old != nil {
		if old.peer.ID != c.peer.ID {
			return hsNameInUse, &PeerError{Node: name, Err: fmt.Errorf("%w: %s is already connected as peer %s", ErrNameInUse, name, old.peer.ID)}
		}
		return hsTieBreak, &PeerError{Node: name, Err: errTieBreak}
	}
	if m := h.members[name]; m != nil && m.meta.ID != c.peer.ID && (m.state == memberlist.StateAlive || m.state == memberlist.StateSuspect) {
		return hsNameInUse, &PeerError{Node: name, Err: fmt.Errorf("%w: %s is a live member with peer %s", ErrNameInUse, name, m.meta.ID)}
	}
	if inbound {
		if d := h.dialing[c.peer.ID]; d != nil && h.lh.ID() < c.peer.ID {
			return hsTieBreak, &PeerError{Node: name, Err: errTieBreak}
		}
	}
	c.prev = h.last[name]
	h.last[name] = c
	h.conns[name] = c
	if c.peer.Hidden || h.members[name] == nil {
		if _, ok := h.known[name]; !ok && len(h.known) >= maxKnown {
			for k := range h.known { // evict one
				delete(h.known, k)
				break
			}
		}
		h.known[name] = h.addrInfoOf(c.peer)
	}
	h.publish()
	return hsOK, nil
}

func (h *Host) addrInfoOf(p Peer) peer.AddrInfo {
	ai := peer.AddrInfo{ID: p.ID}
	for _, s := range p.Addrs {
		if a, err := ma.NewMultiaddr(s); err == nil {
			ai.Addrs = append(ai.Addrs, a)
		}
	}
	return ai
}

// startConn starts the reader and writer of an admitted connection.
func (h *Host) startConn(c *conn) {
	// When Stop has begun the stopper refuses new workers; Stop closes
	// every registered connection itself, so nothing is left open.
	h.connStopper.RunWorker(c.writeLoop)
	h.connStopper.RunWorker(c.readLoop)
}
