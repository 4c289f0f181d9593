package nodal

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nodal-go/nodal/p2p"
)

// NodeRef names one start of a node: its name, its incarnation (a new one
// per start; a newer incarnation means the older one is gone for good) and
// whether it is hidden. Services receive it with every frame and event.
type NodeRef struct {
	Name        string
	Incarnation uint64
	Hidden      bool
}

// String returns "name@host#incarnation".
func (r NodeRef) String() string {
	return r.Name + "#" + strconv.FormatUint(r.Incarnation, 10)
}

// Service is the hook through which a cluster service (registry, groups,
// rpc, heal) runs on a node and exchanges frames with the same service on
// other nodes. It attaches under a name with Node.AttachService and sends
// with Node.SendService and Node.TrySendService.
//
// Order (net_kernel's): for one connection, NodeUp comes before its first
// frame and NodeDown after its last; the NodeDown of an old connection to a
// node comes before the NodeUp of a new one. A service attached while nodes
// are connected gets a NodeUp for each of them first, before any of their
// frames. Frames sent to this node itself arrive with the node's own
// NodeRef, after no NodeUp.
//
// Concurrency: HandleFrame is called on the goroutine that reads the sending
// node's connection (this node's service goroutine for frames to itself), in
// the order the sender sent them; frames from different nodes may arrive
// concurrently. NodeUp and NodeDown are called one at a time, never
// concurrently with each other. No method may block: hand work to the
// service's own goroutine (a blocking HandleFrame stalls every frame from
// that node; TrySendService is the send to use inside it). No method may call
// AttachService, DetachService or Node.Stop. data belongs to the service
// after the call.
type Service interface {
	HandleFrame(from NodeRef, data []byte)
	NodeUp(node NodeRef)
	NodeDown(node NodeRef, reason error)
}

// ServiceStopper is a Service with a stop hook. Node.Stop calls Stop on
// every attached service that implements it, in the reverse order of
// attachment, before it stops any process and while the network still runs;
// Stop must return only once the service's goroutines have ended, and should
// give up when ctx is done.
type ServiceStopper interface {
	Service
	Stop(ctx context.Context) error
}

// maxServiceName bounds a service's name.
const maxServiceName = 64

// tagServices is the node-metadata tag that lists a node's services,
// comma-separated in attachment order.
const tagServices = "services"

func validateServiceName(name string) error {
	if name == "" || len(name) > maxServiceName || strings.ContainsAny(name, ", ") {
		return ErrBadOption
	}
	return nil
}

func joinServiceNames(names []string) string { return strings.Join(names, ",") }

func splitServiceNames(tag string) []string {
	if tag == "" {
		return nil
	}
	return strings.Split(tag, ",")
}

// Bounds on what frames for unknown services can make this node remember.
const (
	maxUnknownServices = 256
	maxUnknownLogged   = 4096
)

// UnknownServiceOther is the DistStats.UnknownService key that counts frames
// for unknown services once 256 different names have been counted.
const UnknownServiceOther = "(other)"

// selfQueueLen bounds the frames a node's services have sent to the node
// itself and that are not handled yet.
const selfQueueLen = 1024

// services is the node's table of attached services.
type services struct {
	mu sync.Mutex // serialises attach/detach and the NodeUp/NodeDown dispatch
	// table is read without a lock on the frame path; replaced under mu.
	table atomic.Pointer[serviceTable]
	selfq chan selfFrame
	// advertising is set while a metadata update is queued.
	advertising atomic.Bool

	unknownMu     sync.Mutex
	unknown       map[string]uint64      // frames for services not attached here, by service
	unknownLogged map[[2]string]struct{} // (node, service) pairs logged once
}

type serviceTable struct {
	byName map[string]Service
	order  []string // attachment order
}

type selfFrame struct {
	name string
	data []byte
}

func (ss *services) init() {
	ss.table.Store(&serviceTable{byName: map[string]Service{}})
	ss.selfq = make(chan selfFrame, selfQueueLen)
	ss.unknown = map[string]uint64{}
	ss.unknownLogged = map[[2]string]struct{}{}
}

func (ss *services) get(name string) Service { return ss.table.Load().byName[name] }

// AttachService attaches s under name, a name of 1 to 64 bytes that the
// same service uses on every node; a name can be attached once. The service
// gets a NodeUp for every node connected now before it sees any frame.
// Other nodes learn from this node's metadata which services it runs.
func (n *Node) AttachService(name string, s Service) error {
	if err := validateServiceName(name); err != nil || s == nil {
		return fmt.Errorf("%w: service needs a name of 1..%d bytes without ',' or ' ', and a handler", ErrBadOption, maxServiceName)
	}
	if n.stopping.Load() {
		return ErrStopped
	}
	ss := &n.svc
	ss.mu.Lock()
	defer ss.mu.Unlock()
	old := ss.table.Load()
	if _, ok := old.byName[name]; ok {
		return fmt.Errorf("%w: service %q already attached", ErrBadOption, name)
	}
	// Catch up before the service is visible to the frame path: a frame
	// of a connection is never handled before that connection's NodeUp.
	if d := n.dist; d != nil && d.waitHost() {
		peers := d.peerMap()
		for _, node := range slices.Sorted(maps.Keys(peers)) {
			s.NodeUp(d.nodeRef(peers[node]))
		}
		if w, ok := s.(MemberWatcher); ok {
			for _, m := range n.Members() {
				w.MemberEvent(MemberEvent{Kind: MemberJoined, Member: m})
			}
		}
	}
	t := &serviceTable{byName: maps.Clone(old.byName), order: append(slices.Clone(old.order), name)}
	t.byName[name] = s
	ss.table.Store(t)
	n.advertiseServices()
	return nil
}

// DetachService removes the service attached as name; it does not stop it.
// Frames for it that arrive afterwards are counted as frames for an unknown
// service.
func (n *Node) DetachService(name string) {
	ss := &n.svc
	ss.mu.Lock()
	defer ss.mu.Unlock()
	old := ss.table.Load()
	if _, ok := old.byName[name]; !ok {
		return
	}
	t := &serviceTable{byName: maps.Clone(old.byName), order: slices.DeleteFunc(slices.Clone(old.order), func(s string) bool { return s == name })}
	delete(t.byName, name)
	ss.table.Store(t)
	n.advertiseServices()
}

// Services returns the names of the services attached to this node, sorted.
func (n *Node) Services() []string {
	return slices.Sorted(maps.Keys(n.svc.table.Load().byName))
}

// advertiseServices puts the attached services' names in this node's
// metadata (memberlist node meta), so other nodes can tell which services a
// node runs (Member.Services).
// The update goes out from the async sender (it waits for memberlist);
// changes made while one is pending ride on it, since it reads the table
// when it runs.
func (n *Node) advertiseServices() {
	d := n.dist
	if d == nil || n.cfg.Hidden || !n.svc.advertising.CompareAndSwap(false, true) {
		return
	}
	d.enqueueAsync(asyncItem{run: func() {
		n.svc.advertising.Store(false)
		names := joinServiceNames(n.svc.table.Load().order)
		ctx, cancel := context.WithTimeout(d.ctx, AutoConnectTimeout)
		defer cancel()
		if err := d.host.SetTags(ctx, map[string]string{tagServices: names}); err != nil && d.ctx.Err() == nil {
			log.Warnw("cannot advertise services in node metadata", "node", n.name, "err", err)
		}
	}})
}

// SendService sends data to the service attached as name on node. It takes
// the path actor signals take to node, auto-connect queue included, so it
// never overtakes a signal or service frame sent to node before it; it blocks
// only while node's outbound queue is full, bounded by ctx. node may be this
// node. An unreachable node gives an error wrapping ErrNoConnection; a
// malformed name one wrapping ErrBadNodeName. data may be reused once
// SendService returns.
func (n *Node) SendService(ctx context.Context, node, name string, data []byte) error {
	return n.sendService(ctx, node, name, data, true)
}

// TrySendService is SendService that never blocks: a full outbound queue (or
// a full queue of frames to this node itself) gives an error wrapping
// ErrQueueFull. It is the send to use inside Service callbacks.
func (n *Node) TrySendService(node, name string, data []byte) error {
	return n.sendService(context.Background(), node, name, data, false)
}

func (n *Node) sendService(ctx context.Context, node, name string, data []byte, block bool) error {
	if err := ValidateNodeName(node); err != nil {
		return err
	}
	if node == n.name {
		return n.svc.sendSelf(ctx, name, data, block)
	}
	d, err := n.distributed()
	if err != nil {
		return fmt.Errorf("%w: %s", ErrNoConnection, node)
	}
	bp := framePool.Get().(*[]byte)
	b := append((*bp)[:0], dService)
	b = appendString(b, name)
	b = append(b, data...)
	err = d.sendFrame(ctx, node, b, block) // copies b
	if cap(b) <= maxPooledFrame {
		*bp = b[:0]
		framePool.Put(bp)
	}
	if err != nil {
		return fmt.Errorf("nodal: service %q to %s: %w", name, node, err)
	}
	return nil
}

func (ss *services) sendSelf(ctx context.Context, name string, data []byte, block bool) error {
	f := selfFrame{name: name, data: slices.Clone(data)}
	if !block {
		select {
		case ss.selfq <- f:
			return nil
		default:
			return fmt.Errorf("nodal: service %q to self: %w", name, ErrQueueFull)
		}
	}
	select {
	case ss.selfq <- f:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("nodal: service %q to self: %w", name, ctxError(ctx.Err()))
	}
}

// selfLoop hands frames services sent to this node to their service, in
// order; it is owned by the node's stopper.
func (n *Node) selfLoop() {
	self := NodeRef{Name: n.name, Incarnation: n.incarnation, Hidden: n.cfg.Hidden}
	for {
		select {
		case <-n.stopper.ShouldStop():
			return
		case f := <-n.svc.selfq:
			n.deliverService(self, f.name, f.data)
		}
	}
}

// deliverService hands one frame to its service, or counts it.
func (n *Node) deliverService(from NodeRef, name string, data []byte) {
	if s := n.svc.get(name); s != nil {
		s.HandleFrame(from, data)
		return
	}
	n.svc.countUnknown(from, name)
}

// countUnknown counts a frame for a service not attached here, and logs
// the first from each node.
// Both tables are bounded: names that arrive when they are full are counted
// under UnknownServiceOther, and logged no more.
func (ss *services) countUnknown(from NodeRef, name string) {
	ss.unknownMu.Lock()
	if _, ok := ss.unknown[name]; !ok && len(ss.unknown) >= maxUnknownServices {
		name = UnknownServiceOther
	}
	ss.unknown[name]++
	key := [2]string{from.Name, name}
	_, logged := ss.unknownLogged[key]
	if !logged {
		if len(ss.unknownLogged) < maxUnknownLogged {
			ss.unknownLogged[key] = struct{}{}
		} else {
			logged = true // the table is full: log no more
		}
	}
	ss.unknownMu.Unlock()
	if !logged {
		log.Warnw("frame for a service not attached here (logged once per node and service)", "from", from.Name, "service", name)
	}
}

// unknownServiceFrames returns a copy of the counts of frames for services
// not attached here.
func (ss *services) unknownServiceFrames() map[string]uint64 {
	ss.unknownMu.Lock()
	defer ss.unknownMu.Unlock()
	if len(ss.unknown) == 0 {
		return nil
	}
	return maps.Clone(ss.unknown)
}

// handleServiceFrame decodes a service frame from p; the payload is the rest
// of the frame, which p2p handed over (no copy).
func (d *dist) handleServiceFrame(p p2p.Peer, dec *decoder) error {
	name := dec.Str()
	if dec.Err() != nil {
		return dec.err()
	}
	d.n.deliverService(d.nodeRef(p), name, dec.Take(dec.Len()))
	return nil
}

// nodeRef is the NodeRef of a connected peer.
func (d *dist) nodeRef(p p2p.Peer) NodeRef {
	return NodeRef{Name: p.Name, Incarnation: p.Incarnation, Hidden: d.hiddenConn(p)}
}

// eachService calls f for every attached service, in attachment order;
// for events, the caller holds n.svc.mu.
func (n *Node) eachService(f func(Service)) {
	t := n.svc.table.Load()
	for _, name := range t.order {
		f(t.byName[name])
	}
}

// stopServices stops the attached services that have a stop hook, in the
// reverse order of attachment, and detaches them all.
func (n *Node) stopServices(ctx context.Context) error {
	ss := &n.svc
	ss.mu.Lock()
	t := ss.table.Load()
	ss.table.Store(&serviceTable{byName: map[string]Service{}})
	ss.mu.Unlock()
	var first error
	for _, name := range slices.Backward(t.order) {
		st, ok := t.byName[name].(ServiceStopper)
		if !ok {
			continue
		}
		if err := st.Stop(ctx); err != nil {
			log.Warnw("service stop failed", "service", name, "err", err)
			if first == nil {
				first = fmt.Errorf("nodal: stop service %q: %w", name, err)
			}
		}
	}
	return first
}
