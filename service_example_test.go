package nodal_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// workers is a tiny replicated service: every node counts the live worker
// processes it watches, and every node knows every other node's count. It
// uses each hook: frames to connected nodes (HandleFrame, NodeUp, NodeDown),
// membership (MemberEvent), gossip (LocalState, MergeRemoteState,
// HandleBroadcast), a stop hook, and an owner process that monitors the
// workers to learn of their exits.
type workers struct {
	n     *nodal.Node
	owner nodal.Pid

	mu     sync.Mutex
	mine   uint64
	counts map[nodal.NodeRef]uint64 // other nodes' counts, by node start
}

const workersService = "example/workers"

type watch struct{ Pid nodal.Pid }

func startWorkers(n *nodal.Node) (*workers, error) {
	w := &workers{n: n, counts: map[nodal.NodeRef]uint64{}}
	// The owner process monitors watched workers: a Down is how a service
	// learns that a local process exited.
	owner, err := n.Spawn(func(p *nodal.Process) error {
		for {
			m, err := p.Receive(p.Context())
			if err != nil {
				return err
			}
			switch m := m.(type) {
			case watch:
				p.Monitor(m.Pid)
				w.changed(+1)
			case nodal.Down:
				w.changed(-1)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	w.owner = owner
	return w, n.AttachService(workersService, w)
}

// Watch counts pid until it exits.
func (w *workers) Watch(pid nodal.Pid) error { return w.n.Send(w.owner, watch{pid}) }

func (w *workers) changed(delta int) {
	w.mu.Lock()
	w.mine = uint64(int(w.mine) + delta)
	b := binary.AppendUvarint(nil, w.mine)
	w.mu.Unlock()
	for _, node := range w.n.Nodes() { // to every connected node, in order
		_ = w.n.SendService(context.Background(), node, workersService, b)
	}
	_ = w.n.BroadcastService(workersService, "count", b) // and to the rest by gossip
}

func (w *workers) set(from nodal.NodeRef, b []byte) {
	v, k := binary.Uvarint(b)
	if k <= 0 {
		return // malformed: ignore
	}
	w.mu.Lock()
	w.counts[from] = v
	w.mu.Unlock()
}

// Count returns node's count as this node knows it.
func (w *workers) Count(node string) (uint64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ref, v := range w.counts {
		if ref.Name == node {
			return v, true
		}
	}
	return 0, false
}

func (w *workers) HandleFrame(from nodal.NodeRef, data []byte) { w.set(from, data) }

// NodeUp sends this node's count to the new connection (TrySendService: a
// callback must not block).
func (w *workers) NodeUp(node nodal.NodeRef) {
	w.mu.Lock()
	b := binary.AppendUvarint(nil, w.mine)
	w.mu.Unlock()
	_ = w.n.TrySendService(node.Name, workersService, b)
}

// NodeDown hides the count of a node this node cannot reach.
func (w *workers) NodeDown(node nodal.NodeRef, _ error) {
	w.mu.Lock()
	delete(w.counts, node)
	w.mu.Unlock()
}

// MemberEvent forgets a start that is gone for good (left, or replaced by
// a newer incarnation).
func (w *workers) MemberEvent(ev nodal.MemberEvent) {
	if errors.Is(ev.Reason, nodal.ErrNodeLeft) || errors.Is(ev.Reason, nodal.ErrNodeReplaced) {
		w.mu.Lock()
		for ref := range w.counts {
			if ref.Name == ev.Member.Name && ref.Incarnation != ev.Member.Incarnation {
				delete(w.counts, ref)
			}
		}
		w.mu.Unlock()
	}
}

func (w *workers) LocalState(bool) []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return binary.AppendUvarint(nil, w.mine)
}

func (w *workers) MergeRemoteState(from nodal.NodeRef, st []byte, _ bool) { w.set(from, st) }

func (w *workers) HandleBroadcast(from nodal.NodeRef, msg []byte) { w.set(from, msg) }

// Stop ends the owner process; Node.Stop calls it first.
func (w *workers) Stop(ctx context.Context) error {
	w.n.Exit(w.owner, nodal.ReasonShutdown)
	for {
		if _, err := w.n.ProcessInfo(w.owner); err != nil {
			return nil // gone
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

var (
	_ nodal.MemberWatcher  = (*workers)(nil)
	_ nodal.GossipService  = (*workers)(nil)
	_ nodal.ServiceStopper = (*workers)(nil)
)

// A replicated service on two nodes: b learns how many workers a runs, and
// when one of them exits.
func Example_service() {
	net := p2ptest.New()
	defer net.Close()
	ctx := context.Background()
	start := func(name string, seeds ...string) (*nodal.Node, *workers) {
		cfg := nodal.DefaultLocalConfig(name, "example-cookie")
		cfg.P2P.Network = net
		cfg.Seeds = seeds
		n, err := nodal.Start(ctx, cfg)
		if err != nil {
			panic(err)
		}
		w, err := startWorkers(n)
		if err != nil {
			panic(err)
		}
		return n, w
	}
	a, wa := start("a@10.0.0.1")
	b, wb := start("b@10.0.0.2", a.GossipAddr())
	defer func() { _ = b.Stop(ctx); _ = a.Stop(ctx) }()

	waitFor := func(want uint64) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			if v, ok := wb.Count(a.Name()); ok && v == want {
				fmt.Printf("b sees %d workers on a\n", v)
				return
			}
			if time.Now().After(deadline) {
				fmt.Println("timed out")
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	var pids []nodal.Pid
	for range 3 {
		pid, _ := a.Spawn(func(p *nodal.Process) error { <-p.Context().Done(); return nil })
		_ = wa.Watch(pid)
		pids = append(pids, pid)
	}
	waitFor(3)
	a.Exit(pids[0], nodal.ReasonKill)
	waitFor(2)
	// Output:
	// b sees 3 workers on a
	// b sees 2 workers on a
}
