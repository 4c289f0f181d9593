package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	logging "github.com/ipfs/go-log/v2"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/crdt"
	"github.com/nodal-go/nodal/internal/exitwatch"
	"github.com/nodal-go/nodal/internal/replica"
)

var log = logging.Logger("nodal/registry")

// DefaultScope is the scope of a Config without one.
const DefaultScope = "default"

// ServicePrefix starts the service name a scope's registry attaches under
// ("registry:" + scope).
const ServicePrefix = "registry:"

// Config configures a Registry.
type Config struct {
	// Scope names an independent registry (syn's and pg's scopes): nodes
	// share names only within one scope. DefaultScope if empty; at most
	// 54 bytes, without ',' or ' '.
	Scope string
	// Resolvers adds named conflict resolvers to the built-ins
	// (LowerNodeExit, LowerNodeNotify, NotifyAll, KeepOldest, KeepNewest).
	// Give every node the same table: a conflict whose claims name a
	// resolver unknown here is resolved by the default.
	Resolvers map[string]ResolveFunc
	// Default is the resolver of a registration made without WithResolver
	// (LowerNodeExit if empty).
	Default string
	// PermdownPeriod: names of a node down for longer are purged
	// (replica.DefaultPermdownPeriod if zero). The same on every node.
	PermdownPeriod time.Duration
	// SyncInterval is the period of the background digest exchange
	// (replica.DefaultSyncInterval if zero).
	SyncInterval time.Duration
}

// Registry is a node's view of a cluster-wide name registry (Erlang's
// global, syn's registry): available and eventually consistent. Its
// methods are safe for concurrent use.
type Registry struct {
	n       *nodal.Node
	scope   string
	rep     *replica.Replica[string, heldClaim]
	idx     *index
	self    *nodeInc // this node, the node of its claims
	table   map[string]ResolveFunc
	def     string
	defFunc ResolveFunc

	watcher *exitwatch.Watcher
	stopped atomic.Bool

	monMu sync.Mutex
	mons  map[*Watch]struct{}
	nmons atomic.Int32 // len(mons), for emit's fast path

	conflicts, resolverFailures atomic.Uint64

	regJobs sync.Pool // of *regJob

	// Engine goroutine only.
	// byPid: by the ID of a local pid, the counter of its claim's dot
	// (the dot's replica is this node's; the claim's name is the dot's
	// key in the map). A name's local claim is found among its siblings
	// (localOf): no map keyed by name besides the CRDT's and the index.
	byPid   map[uint64]uint64
	mine    []crdt.Sibling[heldClaim] // localOf's buffer
	why     map[crdt.Dot]Reason       // reasons of local removals not reported yet
	lastAt  int64
	claims  []Registration
	sibs    []crdt.Sibling[heldClaim]
	touched map[string]Reason
	order   []string          // names of a batch of changes, in order
	whys    []Reason          // order's reasons
	watchQ  *exitwatch.Orders // for the watcher, sent once per turn

	// Hidden origins (onVisibility): a name's siblings, hidden ones
	// included, and the names with more than one claim, by origin and by
	// name, settled again when an origin is hidden or shown.
	every       []crdt.Sibling[heldClaim]
	contested   map[crdt.ReplicaID]map[string]struct{}
	contestedBy map[string][]crdt.ReplicaID
}

// localClaim is a claim of a process of this node: the pid's ID and the
// claim's dot's counter (the pid's node and incarnation, and the dot's
// replica, are this node's).
type localClaim struct{ id, n uint64 }

// localOf returns the claim of a process of this node on name, if any
// (engine goroutine). A name has at most one: register refuses a second.
func (r *Registry) localOf(s *replica.State[string, heldClaim], name string) (localClaim, bool) {
	r.mine = s.Map().AppendSiblings(r.mine[:0], name)
	self := s.Self()
	for _, sib := range r.mine {
		if sib.Dot.Replica == self {
			return localClaim{id: sib.Value.id, n: sib.Dot.Counter}, true
		}
	}
	return localClaim{}, false
}

func (r *Registry) pidOf(c localClaim) nodal.Pid {
	return nodal.Pid{Node: r.self.name, ID: c.id, Incarnation: r.self.inc}
}

func (r *Registry) dotOf(c localClaim) crdt.Dot {
	return crdt.Dot{Replica: crdt.ReplicaID{Name: r.self.name, Epoch: r.self.inc}, Counter: c.n}
}

// New starts the registry of cfg.Scope on n. Node.Stop stops it; Stop
// stops it earlier. A node has at most one Registry per scope.
func New(n *nodal.Node, cfg Config) (*Registry, error) {
	if cfg.Scope == "" {
		cfg.Scope = DefaultScope
	}
	if len(cfg.Scope) > 64-len(ServicePrefix) || strings.ContainsAny(cfg.Scope, ", ") {
		return nil, fmt.Errorf("%w: registry scope %q: at most %d bytes, without ',' or ' '", nodal.ErrBadOption, cfg.Scope, 64-len(ServicePrefix))
	}
	r := &Registry{
		n:       n,
		scope:   cfg.Scope,
		idx:     newIndex(),
		self:    internNodeInc(n.Name(), n.Incarnation()),
		table:   builtins(),
		mons:    map[*Watch]struct{}{},
		byPid:   map[uint64]uint64{},
		why:     map[crdt.Dot]Reason{},
		touched: map[string]Reason{},

		contested:   map[crdt.ReplicaID]map[string]struct{}{},
		contestedBy: map[string][]crdt.ReplicaID{},
	}
	r.regJobs.New = func() any { return newRegJob(r) }
	for name, f := range cfg.Resolvers {
		if name == "" || len(name) > MaxResolverLen || f == nil {
			return nil, fmt.Errorf("%w: resolver %q: a name of 1..%d bytes and a function", nodal.ErrBadOption, name, MaxResolverLen)
		}
		r.table[name] = f
	}
	r.def = cfg.Default
	if r.def == "" {
		r.def = LowerNodeExit
	}
	if r.table[r.def] == nil {
		return nil, fmt.Errorf("%w: default resolver %q", ErrUnknownResolver, r.def)
	}
	r.defFunc = builtins()[LowerNodeExit]
	if f := r.table[r.def]; f != nil {
		r.defFunc = f
	}
	w, err := exitwatch.Start(n, "registry", r.processExited)
	if err != nil {
		return nil, err
	}
	r.watcher = w
	r.rep, err = replica.New(n, replica.Config[string, heldClaim]{
		Service:        ServicePrefix + cfg.Scope,
		Keys:           nameCodec{},
		Values:         regCodec{},
		PermdownPeriod: cfg.PermdownPeriod,
		SyncInterval:   cfg.SyncInterval,
		Check:          checkClaim,
		OnChange:       r.onChange,
		OnVisibility:   r.onVisibility,
		OnNotice:       r.onNotice,
		OnStop:         r.onStop,
	})
	if err != nil {
		_ = w.Stop(context.Background())
		return nil, err
	}
	return r, nil
}

// Scope returns the registry's scope.
func (r *Registry) Scope() string { return r.scope }

// Option sets a property of a registration.
type Option func(*Registration)

// WithMeta attaches metadata (at most MaxMetaLen bytes) to a registration.
func WithMeta(meta string) Option { return func(g *Registration) { g.Meta = meta } }

// WithResolver names the conflict resolver of a registration (a built-in
// or one of Config.Resolvers); the registry's default otherwise.
func WithResolver(name string) Option { return func(g *Registration) { g.Resolver = name } }

// Register gives name to pid, a process of this node, across the cluster.
// It fails with an *AlreadyRegisteredError naming the holder when the name
// is visibly held here by another process, with a *PidHasNameError when pid
// already has another name, and with ErrNameTooLong, ErrMetaTooLong,
// ErrNotLocal or ErrUnknownResolver for bad arguments. Otherwise it
// succeeds at once, without a cluster lock, and spreads to the other nodes;
// a claim of the same name made meanwhile elsewhere is a conflict that the
// resolver settles once the claims meet. Registering the name pid already
// holds updates its metadata.
func (r *Registry) Register(ctx context.Context, name string, pid nodal.Pid, opts ...Option) error {
	g := Registration{Pid: pid, Resolver: r.def}
	if len(opts) > 0 {
		g = withOptions(g, opts) // there, not here, g escapes to the heap
	}
	if err := r.check(name, g); err != nil {
		return err
	}
	j := r.regJobs.Get().(*regJob)
	j.name, j.g = name, g
	err := r.rep.Update(ctx, j.run)
	if err == nil { // else the engine may still hold j: not reused
		*j = regJob{r: r, run: j.run}
		r.regJobs.Put(j)
	}
	return r.mapErr(err)
}

// withOptions returns g with opts applied.
func withOptions(g Registration, opts []Option) Registration {
	for _, o := range opts {
		o(&g)
	}
	return g
}

// regJob is one Register's work on the engine, reused through
// Registry.regJobs: its run function is made once, with the job, so that
// a registration allocates no closure.
type regJob struct {
	r    *Registry
	name string
	g    Registration
	run  func(s *replica.State[string, heldClaim]) error
}

func newRegJob(r *Registry) *regJob {
	j := &regJob{r: r}
	j.run = func(s *replica.State[string, heldClaim]) error { return j.r.register(s, j.name, j.g) }
	return j
}

func (r *Registry) check(name string, g Registration) error {
	switch {
	case name == "" || len(name) > MaxNameLen:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrNameTooLong, len(name), MaxNameLen)
	case len(g.Meta) > MaxMetaLen:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrMetaTooLong, len(g.Meta), MaxMetaLen)
	case g.Pid.Node != r.n.Name() || g.Pid.Incarnation != r.n.Incarnation():
		return fmt.Errorf("%w: %v on %s", ErrNotLocal, g.Pid, r.n.Name())
	case r.table[g.Resolver] == nil:
		return fmt.Errorf("%w: %q", ErrUnknownResolver, g.Resolver)
	}
	return nil
}

func (r *Registry) mapErr(err error) error {
	if errors.Is(err, replica.ErrStopped) {
		return ErrStopped
	}
	return err
}

// register runs on the engine's goroutine.
func (r *Registry) register(s *replica.State[string, heldClaim], name string, g Registration) error {
	if w, ok := r.idx.get(name); ok && w != g.Pid {
		return &AlreadyRegisteredError{Name: name, Holder: w}
	}
	if n, ok := r.byPid[g.Pid.ID]; ok {
		if other, _, ok := s.Map().Lookup(r.dotOf(localClaim{g.Pid.ID, n})); ok && other != name {
			return &PidHasNameError{Pid: g.Pid, Name: other}
		}
	}
	c, mine := r.localOf(s, name)
	if mine && c.id != g.Pid.ID {
		// Registered here in this batch, not yet in the read index.
		return &AlreadyRegisteredError{Name: name, Holder: r.pidOf(c)}
	}
	if g.Resolver == LowerNodeExit {
		g.Resolver = "" // resolverName: the empty name is LowerNodeExit
	}
	g.At = r.clock()
	if mine {
		_, old, _ := s.Map().Lookup(r.dotOf(c))
		if old.meta() == g.Meta && old.resolver() == g.Resolver {
			return nil
		}
		g.At = old.at // an update keeps the registration's age
		r.why[r.dotOf(c)] = ReasonRegistered
		r.byPid[g.Pid.ID] = s.Replace(name, r.claimOf(g), r.dotOf(c)).Counter
		return nil
	}
	r.byPid[g.Pid.ID] = s.Add(name, r.claimOf(g)).Counter
	r.watchQ = r.watchQ.Watch(g.Pid)
	return nil
}

// claimOf is the claim of g, a registration of a local process.
func (r *Registry) claimOf(g Registration) heldClaim {
	c := heldClaim{node: r.self, id: g.Pid.ID, at: g.At}
	if g.Meta != "" || g.Resolver != "" {
		c.ext = &claimExt{meta: g.Meta, resolver: g.Resolver}
	}
	return c
}

// clock is this node's registration time: wall clock, strictly increasing.
func (r *Registry) clock() int64 {
	t := time.Now().UnixNano()
	if t <= r.lastAt {
		t = r.lastAt + 1
	}
	r.lastAt = t
	return t
}

// Unregister removes name, held by a process of this node. It fails with
// ErrNotRegistered when the name has no claim here, and with a
// *NotOwnerError when a process of another node holds it.
func (r *Registry) Unregister(ctx context.Context, name string) error {
	err := r.rep.Update(ctx, func(s *replica.State[string, heldClaim]) error {
		c, ok := r.localOf(s, name)
		if !ok {
			if w, ok := r.idx.get(name); ok {
				return &NotOwnerError{Name: name, Holder: w}
			}
			return fmt.Errorf("%w: %q", ErrNotRegistered, name)
		}
		r.drop(s, name, c, ReasonUnregistered)
		return nil
	})
	return r.mapErr(err)
}

// drop removes a local claim (engine goroutine).
func (r *Registry) drop(s *replica.State[string, heldClaim], name string, c localClaim, why Reason) {
	delete(r.byPid, c.id)
	r.why[r.dotOf(c)] = why
	s.RemoveDots(r.dotOf(c))
	r.watchQ = r.watchQ.Unwatch(r.pidOf(c))
}

// processExited removes the names of a local process that ended.
func (r *Registry) processExited(pid nodal.Pid) {
	_ = r.rep.Update(context.Background(), func(s *replica.State[string, heldClaim]) error {
		n, ok := r.byPid[pid.ID]
		if !ok || pid != r.pidOf(localClaim{id: pid.ID}) {
			return nil
		}
		c := localClaim{id: pid.ID, n: n}
		if name, _, ok := s.Map().Lookup(r.dotOf(c)); ok {
			r.drop(s, name, c, ReasonProcessExit)
		}
		return nil
	})
}

// Whereis returns the process that holds name in this node's view: the
// resolved winner among the visible claims. It is a local read: no
// network, no allocation.
func (r *Registry) Whereis(name string) (nodal.Pid, bool) {
	return r.idx.get(name)
}

// Lookup is Whereis with the holder's whole registration (metadata
// included), read on the registry's goroutine.
func (r *Registry) Lookup(ctx context.Context, name string) (Registration, bool, error) {
	var g Registration
	found := false
	err := r.rep.Update(ctx, func(s *replica.State[string, heldClaim]) error {
		holder, ok := r.idx.get(name)
		if !ok {
			return nil
		}
		for _, sib := range s.Siblings(nil, name) {
			if sib.Value.pid() == holder {
				g, found = sib.Value.reg(), true
			}
		}
		return nil
	})
	return g, found, r.mapErr(err)
}

// Registered returns every visible name with its holder, as this node sees
// them.
func (r *Registry) Registered() map[string]nodal.Pid { return r.idx.all() }

// Nodes returns the nodes this registry exchanges with: connected and
// running the same scope, sorted.
func (r *Registry) Nodes() []string { return r.rep.Peers() }

// Len returns the number of visible names.
func (r *Registry) Len() int { return r.idx.len() }

// Send sends msg to the holder of name (global:send/2); an unregistered
// name gives an error wrapping ErrNotRegistered.
func (r *Registry) Send(name string, msg any) error {
	pid, ok := r.Whereis(name)
	if !ok {
		return fmt.Errorf("%w: %q", ErrNotRegistered, name)
	}
	return r.n.Send(pid, msg)
}

// Ensure makes sure pid holds name, for a process that must keep its name
// across partitions and reconnects (call it again on nodal.NodeUp, or after
// a NameConflict): nil if pid holds it already, a registration if the name
// is free here, an *AlreadyRegisteredError if another process holds it.
func (r *Registry) Ensure(ctx context.Context, name string, pid nodal.Pid, opts ...Option) error {
	if w, ok := r.idx.get(name); ok && w == pid {
		return nil
	}
	err := r.Register(ctx, name, pid, opts...)
	return err
}

// Sync exchanges state with every reachable node of the scope and returns
// once each has answered (Erlang's global:sync/0), or ctx's error.
func (r *Registry) Sync(ctx context.Context) error { return r.mapErr(r.rep.Sync(ctx)) }

// Stats counts what a Registry did.
type Stats struct {
	replica.Stats        // what the replication exchanged
	Names         int    // visible names
	Conflicts     uint64 // conflicts this node settled for a local loser
	// ResolverFailures counts conflicts resolved by the default because the
	// claims' resolver panicked, was unknown, differed or returned a bad
	// verdict.
	ResolverFailures uint64
}

// Traffic is what a registry exchanged with some nodes (ExchangedSinceUp).
type Traffic = replica.Traffic

// ExchangedSinceUp returns what this node's registry exchanged with nodes,
// summed, since each of them last came up, with the conflicts it settled
// for a local loser against their claims: after a heal, what the heal
// moved (heal.CountedSync reports it).
func (r *Registry) ExchangedSinceUp(nodes ...string) Traffic { return r.rep.TrafficSinceUp(nodes...) }

// Stats returns the counters.
func (r *Registry) Stats() Stats {
	return Stats{Stats: r.rep.Stats(), Names: r.idx.len(), Conflicts: r.conflicts.Load(), ResolverFailures: r.resolverFailures.Load()}
}

// Stop stops the registry on this node: its names stay on the other nodes
// until this node leaves or its down period ends. It is idempotent;
// Node.Stop calls it.
func (r *Registry) Stop(ctx context.Context) error {
	return r.rep.Stop(ctx)
}

// onStop runs once the replica stopped: the watcher goes, watches end.
func (r *Registry) onStop(ctx context.Context) {
	r.stopped.Store(true)
	_ = r.watcher.Stop(ctx) // bounded by ctx; nothing to report it to
	r.monMu.Lock()
	for w := range r.mons {
		w.close(ErrStopped)
	}
	clear(r.mons)
	r.nmons.Store(0)
	r.monMu.Unlock()
}
