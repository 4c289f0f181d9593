package nodal

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	logging "github.com/ipfs/go-log/v2"
	"github.com/lni/goutils/syncutil"

	"github.com/nodal-go/nodal/internal/hoptrace"
)

var log = logging.Logger("nodal")

// workerShards is the number of owners of process goroutines. Each is a
// lighter syncutil.Stopper: a mutex-guarded closed flag and a WaitGroup. The
// mutex is held only to start a goroutine, never while waiting, so a process
// may spawn while Stop runs (it gets ErrStopped) without the deadlock a
// Stopper has when RunWorker is called from a worker during Stop; sharding
// keeps concurrent spawners off one lock; and the goroutine's bottom frame
// is small (an exiting process runs its exit fan-out on its initial stack).
const workerShards = 8

type workerShard struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
	_      [40]byte // one shard per cache line
}

// Node is a running node: it owns every process spawned on it, their names
// and the goroutines that run them. All methods are safe for concurrent use.
type Node struct {
	cfg         Config
	name        string
	incarnation uint64

	ctx    context.Context // root ctx: parent of every process Context; cancelled by Stop
	cancel context.CancelFunc

	nextID  atomic.Uint64
	nextRef atomic.Uint64
	procs   procTable

	namesMu sync.RWMutex
	names   map[string]*Process

	// remote delivers signals to pids of other nodes; nil on a local-only
	// node (see route.go). Set before any process runs.
	remote interface{ route(s signal) error }

	// Distribution (dist_*.go): nil / zero on a local-only node.
	dist         *dist
	groupLeader  Pid // default group leader: writes IORequests to Config.Stdout
	behavioursMu sync.RWMutex
	behaviours   map[string]Behaviour
	svc          services // attached services (service.go)

	// workers own the goroutines of processes (Func bodies and actor
	// activations); Stop closes them and waits for every goroutine.
	workers [workerShards]workerShard
	// stopper owns the node's other goroutines (services, remote delivery).
	// Stop stops it after every process has ended.
	stopper *syncutil.Stopper

	stopping atomic.Bool   // Stop has begun: no new Spawn
	allGone  chan struct{} // signalled when the last process exits during Stop
	stopOnce sync.Once
	stopErr  error
	done     chan struct{} // closed when Stop has finished
}

var lastIncarnation atomic.Uint32

// newIncarnation returns a creation number for a node start: random, never
// 0, and never the previous one of this OS process. It must differ from
// the previous start of the same node name, which may have been another OS
// process a moment ago (a crash and a restart by a process supervisor), so
// a clock would not do: two starts in the same second would share pids.
// Two starts collide with probability 2^-32.
func newIncarnation() uint64 {
	for {
		var b [4]byte
		_, _ = rand.Read(b[:]) // never fails (crypto/rand)
		next := binary.LittleEndian.Uint32(b[:])
		if next == 0 || next == lastIncarnation.Load() {
			continue
		}
		lastIncarnation.Store(next)
		return uint64(next)
	}
}

// Start starts a node. A zero Config gives a local-only node named
// "nonode@nohost". ctx bounds the start only, not the node's lifetime; call
// Stop to end the node.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	n := &Node{
		cfg:         cfg,
		name:        cfg.Name,
		incarnation: newIncarnation(),
		names:       make(map[string]*Process),
		allGone:     make(chan struct{}, 1),
		done:        make(chan struct{}),
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.procs.init()
	n.stopper = syncutil.NewStopper()
	n.svc.init()
	n.stopper.RunWorker(n.selfLoop)
	if err := n.startDist(ctx); err != nil {
		_ = n.Stop(context.Background())
		return nil, err
	}
	log.Debugw("node started", "node", n.name, "incarnation", n.incarnation)
	return n, nil
}

// Name returns the node name, for example "a@localhost" or "nonode@nohost".
func (n *Node) Name() string { return n.name }

// Incarnation returns this start's creation number (never 0). Pids and refs
// made by this node carry it.
func (n *Node) Incarnation() uint64 { return n.incarnation }

// Done returns a channel closed once Stop has finished.
func (n *Node) Done() <-chan struct{} { return n.done }

func (n *Node) newRef() Ref {
	return Ref{Node: n.name, ID: n.nextRef.Add(1), Incarnation: n.incarnation}
}

// runWorker runs f on a process goroutine owned by the node. It returns
// false (and does not run f) once Stop has closed the workers.
func (n *Node) runWorker(shard uint64, f func()) bool {
	w := &n.workers[shard%workerShards]
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	w.wg.Go(f)
	return true
}

// Spawn starts a goroutine-style process running fn. Options WithName,
// WithTrapExit and WithGroupLeader apply; WithLink needs a spawning process
// (use Process.Spawn) and is refused with ErrBadOption.
func (n *Node) Spawn(fn Func, opts ...SpawnOption) (Pid, error) {
	pid, _, err := n.spawn(nil, fn, nil, false, opts)
	return pid, err
}

// SpawnActor starts a handler-style process (see Actor). Init runs on the
// caller's goroutine before SpawnActor returns; if it fails the process exits
// with that reason and the error is an *ExitError wrapping ErrInitFailed.
func (n *Node) SpawnActor(a Actor, opts ...SpawnOption) (Pid, error) {
	pid, _, err := n.spawn(nil, nil, a, false, opts)
	return pid, err
}

// Send sends msg to the process to from outside any process. As with
// Process.Send, a message to a dead pid is dropped; the only error is a
// message for another node that the codec cannot encode.
func (n *Node) Send(to Pid, msg any) error {
	return n.send(signal{kind: sigMessage, to: to, msg: msg})
}

// SendName sends msg to the local process registered as name. It returns an
// error wrapping ErrNotRegistered when no process has that name.
func (n *Node) SendName(name string, msg any) error {
	return n.sendName(Pid{}, name, msg)
}

// Exit sends an exit signal with reason to pid from outside any process
// (erlang:exit/2; the sender is the zero Pid). ReasonKill kills
// unconditionally; ReasonNormal is ignored unless the target traps exits;
// any other reason kills a non-trapping process and reaches a trapping one
// as an Exit message.
func (n *Node) Exit(pid Pid, reason error) {
	n.route(signal{kind: sigExit, to: pid, reason: normalize(reason)})
}

// Processes returns the pids of the live processes on this node, sorted.
func (n *Node) Processes() []Pid {
	ps := n.procs.all()
	pids := make([]Pid, len(ps))
	for i, p := range ps {
		pids[i] = p.pid
	}
	slices.SortFunc(pids, Pid.Compare)
	return pids
}

// Stop ends the node, in the reverse order of start: first the attached
// services (each ServiceStopper's Stop, in the reverse order of attachment,
// while processes and the network still run), then the processes, then the
// network (leave the cluster, close connections). It sends an exit signal
// with reason shutdown (from the zero Pid) to every process and waits, bounded by ctx, for them to exit:
// non-trapping processes end at once, trapping ones (supervisors) receive
// Exit{From: Pid{}, Reason: ReasonShutdown} and should end. No process can
// be spawned once Stop has begun. When every process has exited, or ctx is
// done, the remaining processes are killed and Stop waits for every
// goroutine the node started; it returns ctx's error if the graceful part was
// cut short. A Func process must return once its Context is cancelled or its
// Receive reports ErrExited, or Stop waits for it; for the same reason Stop
// must not be called from a process. Stop is idempotent: later calls wait for
// the first to finish and return its result.
func (n *Node) Stop(ctx context.Context) error {
	n.stopOnce.Do(func() {
		n.stopErr = n.stop(ctx)
		close(n.done)
	})
	<-n.done
	return n.stopErr
}

func (n *Node) stop(ctx context.Context) error {
	log.Debugw("node stopping", "node", n.name)
	hoptrace.Flush() // the nodaltrace build's hop records, if any
	n.stopping.Store(true)
	// Services first, while processes and the network still run.
	serr := n.stopServices(ctx)
	for _, p := range n.procs.all() {
		r := ReasonShutdown
		if p.kind == kindBare {
			r = ReasonKill // a caller's temporary mailbox has nothing to clean up
		}
		n.route(signal{kind: sigExit, to: p.pid, reason: r})
	}
	var err error
wait:
	for n.procs.count.Load() > 0 {
		select {
		case <-n.allGone:
		case <-ctx.Done():
			err = fmt.Errorf("nodal: stop: %w", ctxError(ctx.Err()))
			break wait
		}
	}
	for i := range n.workers {
		w := &n.workers[i]
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
	}
	for _, p := range n.procs.all() {
		n.terminate(p, ReasonKilled)
	}
	n.cancel()
	for i := range n.workers {
		n.workers[i].wg.Wait()
	}
	n.stopper.Stop()
	// A process inserted while the workers closed (an actor whose Init ran
	// on a goroutine that has now ended) has no goroutine; end it too.
	for _, p := range n.procs.all() {
		n.terminate(p, ReasonKilled)
	}
	if derr := n.stopDist(ctx); derr != nil && err == nil {
		err = fmt.Errorf("nodal: stop: %w", derr)
	}
	if err == nil {
		err = serr
	}
	log.Debugw("node stopped", "node", n.name)
	return err
}

// ctxError wraps a context error with ErrTimeout when it is a deadline.
func ctxError(err error) error {
	if err == context.DeadlineExceeded {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return err
}

// procTable maps process ids to live processes, sharded to keep concurrent
// senders and spawners off one lock.
type procTable struct {
	count  atomic.Int64
	shards [procShards]procShard
}

const procShards = 64

type procShard struct {
	mu sync.RWMutex
	m  map[uint64]*Process
	_  [32]byte // 24-byte RWMutex + map: one 64-byte cache line per shard
}

func (t *procTable) init() {
	for i := range t.shards {
		t.shards[i].m = make(map[uint64]*Process)
	}
}

func (t *procTable) get(id uint64) *Process {
	s := &t.shards[id%procShards]
	s.mu.RLock()
	p := s.m[id]
	s.mu.RUnlock()
	return p
}

func (t *procTable) put(p *Process) {
	s := &t.shards[p.pid.ID%procShards]
	s.mu.Lock()
	s.m[p.pid.ID] = p
	s.mu.Unlock()
	t.count.Add(1)
}

// remove deletes p and returns the number of processes left, or -1 if p was
// not in the table.
func (t *procTable) remove(p *Process) int64 {
	s := &t.shards[p.pid.ID%procShards]
	s.mu.Lock()
	q, ok := s.m[p.pid.ID]
	if ok && q == p {
		delete(s.m, p.pid.ID)
	}
	s.mu.Unlock()
	if !ok || q != p {
		return -1
	}
	return t.count.Add(-1)
}

func (t *procTable) all() []*Process {
	var ps []*Process
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		for _, p := range s.m {
			ps = append(ps, p)
		}
		s.mu.RUnlock()
	}
	return ps
}
