package nodal

import (
	"fmt"
	"slices"
	"time"

	"github.com/nodal-go/nodal/p2p"
)

func (dec *decoder) remotePid(implied string) Pid {
	node, id, inc := dec.Ident()
	if node == "" {
		node = implied
	}
	return Pid{Node: node, ID: id, Incarnation: inc}
}

// NodeUp implements p2p.Handler: the connection is up before any of its
// frames is delivered.
func (d *dist) NodeUp(p p2p.Peer) {
	// Under the services' lock: a service attaching now sees the node
	// either in its catch-up or in this NodeUp, never both or neither.
	d.n.svc.mu.Lock()
	d.mu.Lock()
	d.updatePeersLocked(func(m map[string]p2p.Peer) { m[p.Name] = p })
	close(d.upChanged)
	d.upChanged = make(chan struct{})
	d.mu.Unlock()
	ref := d.nodeRef(p)
	d.n.eachService(func(s Service) { s.NodeUp(ref) })
	d.n.svc.mu.Unlock()
	hidden := d.hiddenConn(p)
	log.Infow("node up", "node", p.Name, "hidden", hidden)
	d.notifySubscribers(hidden, NodeUp{Node: p.Name, Hidden: hidden})
	// Signals that waited for this connection go out first (after peers
	// is published, so a queue made from now on sees the node up).
	d.connMu.Lock() // not waitingFor's lock-free look: a queue may be in the making
	_, waited := d.connWaits[p.Name]
	d.connMu.Unlock()
	if waited {
		d.enqueueAsync(asyncItem{run: func() { d.flushConnWait(p.Name) }})
	}
}

// NodeDown implements p2p.Handler: every link and monitor towards the lost
// node fires with reason noconnection, and node monitors get NodeDown.
func (d *dist) NodeDown(p p2p.Peer, reason error) {
	d.mu.Lock()
	if cur, ok := d.peer(p.Name); ok && cur.ID == p.ID && cur.Incarnation == p.Incarnation {
		d.updatePeersLocked(func(m map[string]p2p.Peer) { delete(m, p.Name) })
	}
	d.mu.Unlock()
	log.Infow("node down", "node", p.Name, "reason", reason)
	d.failPending(p.Name, reason)
	d.fireNoConnection(p.Name)

	d.fireNodeWatches(p.Name, reason, false)
	d.notifySubscribers(d.hiddenConn(p), NodeDown{Node: p.Name, Reason: reason})
	d.n.svc.mu.Lock()
	ref := d.nodeRef(p)
	d.n.eachService(func(s Service) { s.NodeDown(ref, reason) })
	d.n.svc.mu.Unlock()
}

// fireNoConnection delivers noconnection for every link and monitor that a
// local process holds towards a pid of node, and forgets the monitors that
// processes of node hold on local processes.
func (d *dist) fireNoConnection(node string) {
	for _, p := range d.n.procs.all() {
		var links []Pid
		var mons []Ref
		var targets []Pid
		p.mu.Lock()
		p.links.each(func(l Pid, _ struct{}) {
			if l.Node == node {
				links = append(links, l)
			}
		})
		p.monitors.each(func(ref Ref, t Pid) {
			if t.Node == node {
				mons = append(mons, ref)
				targets = append(targets, t)
			}
		})
		var gone []Ref
		p.monitoredBy.each(func(ref Ref, w Pid) {
			if w.Node == node {
				gone = append(gone, ref)
			}
		})
		for _, ref := range gone {
			p.monitoredBy.del(ref)
		}
		p.mu.Unlock()
		slices.SortFunc(links, Pid.Compare)
		// Deliver as incoming signals: exits they cause towards other
		// nodes go out through the async sender, never blocking the p2p
		// goroutine that reports the node-down.
		for _, l := range links {
			d.deliverIncoming(signal{kind: sigLinkExit, from: l, to: p.pid, reason: ReasonNoConnection})
		}
		for i, ref := range mons {
			d.deliverIncoming(signal{kind: sigDown, from: targets[i], to: p.pid, ref: ref, reason: ReasonNoConnection})
		}
	}
}

// Frame implements p2p.Handler: it decodes one frame and delivers it. A frame
// that cannot be decoded is dropped, counted and logged; the connection
// survives.
func (d *dist) Frame(p p2p.Peer, data []byte) {
	if !d.waitHost() {
		return
	}
	if err := d.handleFrame(p, data); err != nil {
		d.decodeErrors.Add(1)
		log.Warnw("dropped undecodable frame", "from", p.Name, "bytes", len(data), "error", err)
	}
}

func (d *dist) handleFrame(p p2p.Peer, data []byte) error {
	dec := newDecoder(data, true) // p2p gives us the frame
	kind := dec.Byte()
	if f, ok := signalFrame(kind); ok {
		s, err := d.decodeSignal(p, kind, f, &dec)
		if err != nil {
			return err
		}
		d.deliverIncoming(s)
		return nil
	}
	switch kind {
	case dMsgName:
		from := dec.remotePid(p.Name)
		name := dec.Str()
		v := d.codec.decodeValue(&dec)
		if err := dec.done(); err != nil {
			return err
		}
		// {Name, Node} ! Msg to a name that is not registered is dropped
		// silently, as in Erlang.
		_ = d.n.sendName(from, name, v)
		return nil
	case dSpawnReq:
		return d.handleSpawnRequest(p, &dec)
	case dSpawnReply, dWhereisReply:
		return d.handleReply(p, kind, &dec)
	case dWhereisReq:
		return d.handleWhereisRequest(p, &dec)
	case dService:
		return d.handleServiceFrame(p, &dec)
	}
	return fmt.Errorf("%w: unknown frame kind %d", ErrCodec, kind)
}

// deliverIncoming delivers a signal from another node. Signals it causes
// for pids of other nodes go through the async sender, never from the p2p
// reader goroutine that called us.
func (d *dist) deliverIncoming(s signal) {
	n := d.n
	if s.kind == sigMessage && n.isLocal(s.to) {
		if p := n.procs.get(s.to.ID); p != nil && p.deliver(s.msg) {
			d.throttle(p)
		}
		return
	}
	var q signalQueue
	if n.isLocal(s.to) {
		n.deliverQ(&s, &q)
	} else {
		n.undeliverable(&s, ReasonNoProc, &q)
	}
	for q.head < len(q.items) {
		f := q.items[q.head]
		q.items[q.head] = signal{}
		q.head++
		if f.to.Node == n.name {
			n.routeQ(&f, &q)
		} else {
			d.enqueueAsync(asyncItem{s: f})
		}
	}
}

// throttle pauses the calling p2p reader while p's mailbox is above the
// backlog bound, until it is under half of it (or p exits, or the node
// stops). It samples the mailbox once every 64 deliveries per reader call
// site, which keeps the check off the common path.
func (d *dist) throttle(p *Process) {
	max := d.backlog
	if max <= 0 || d.delivered.Add(1)&63 != 0 {
		return
	}
	if d.queueLen(p) <= max {
		return
	}
	d.throttled.Add(1)
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for d.queueLen(p) > max/2 {
		select {
		case <-t.C:
		case <-d.ctx.Done():
			return
		}
	}
}

func (d *dist) queueLen(p *Process) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead {
		return 0
	}
	return p.queueLenLocked()
}
