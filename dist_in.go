package nodal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/nodal-go/nodal/internal/hoptrace"
	"github.com/nodal-go/nodal/internal/spin"
	"github.com/nodal-go/nodal/internal/wire"
	"github.com/nodal-go/nodal/p2p"
)

// remotePid decodes a pid that appendRemotePid encoded; implied and inc
// are the node name and incarnation it leaves out (the peer's for a
// sender's pid, this node's for a target's).
func (dec *decoder) remotePid(implied string, inc uint64) Pid {
	if r := dec.Rest(); len(r) > 0 && r[0] == pidImplied {
		dec.Byte()
		id := dec.Uvarint()
		if dec.Err() != nil {
			return Pid{}
		}
		return Pid{Node: implied, ID: id, Incarnation: inc}
	}
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
	d.inHeads.Store(p.Name, new(msgHead)) // before the connection's first frame
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
	d.inHeads.Delete(p.Name) // after the connection's last frame
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
// survives. The p2p host calls Frames instead; Frame is the same for one frame.
func (d *dist) Frame(p p2p.Peer, data []byte) {
	d.Frames(p, [][]byte{data})
}

// maxRun bounds the messages for one process delivered under one lock.
const maxRun = 64

// Frames implements p2p.BatchHandler: it decodes frames in order and
// delivers them. Consecutive messages for one local process (the common
// stream) are decoded on a fast path and go into its mailbox together,
// with one lock, one wake-up and one backlog check; any other frame ends
// such a run first, so delivery keeps the frames' order. A frame that
// cannot be decoded is dropped, counted and logged; the connection
// survives.
func (d *dist) Frames(p p2p.Peer, frames [][]byte) {
	if !d.waitHost() {
		return
	}
	var buf [maxRun]any
	run := msgRun{msgs: buf[:0]}
	// The slice headers of []byte messages, one array for the batch
	// rather than one allocation per message (boxBytes); made at the
	// first message frame (a batch of other frames, such as services',
	// needs none).
	var hdrs [][]byte
	handed := spin.Handoffs()
	// The head of the connection's last frame, kept from one batch to the
	// next (a dMsgSame repeats it); a Frames call of its own (a test's,
	// Frame's without a connection) starts with none.
	head, _ := d.inHeads.Load(p.Name)
	h, _ := head.(*msgHead)
	if h == nil {
		h = new(msgHead)
	}
	for k, f := range frames {
		var box *[]byte // nil for a frame that is not a message
		if len(f) > 0 && (f[0] == dMsg || f[0] == dMsgSame) {
			if len(hdrs) == 0 {
				hdrs = make([][]byte, len(frames)-k)
			}
			box = &hdrs[0]
		}
		id, v, ok, err := d.decodeLocalMsg(f, box, h)
		if box != nil && *box != nil {
			hdrs = hdrs[1:]
		}
		if ok && err == nil {
			if run.id != id || len(run.msgs) == maxRun {
				d.deliverRun(&run)
				run.id = id
			}
			run.msgs = append(run.msgs, v)
			continue
		}
		d.deliverRun(&run)
		if !ok {
			h.b = nil // the frame before a dMsgSame is a message's
			err = d.handleFrame(p, f)
		}
		if err != nil {
			d.decodeErrors.Add(1)
			log.Warnw("dropped undecodable frame", "from", p.Name, "bytes", len(f), "error", err)
		}
	}
	d.deliverRun(&run)
	if len(frames) == 1 {
		d.yieldToSpinner(handed)
	}
}

// yieldToSpinner is called by a connection's reader after it delivered a
// lone frame (a call, a reply, one message of a conversation); handed is
// spin.Handoffs before the delivery. When the frame went to a waiter that
// spins for it (internal/spin: every deliverer calls spin.Waiter.Handed,
// a process's through markNetIn, rpc's for a caller's reply or an idle
// call process's request), the reader yields its vCPU to it
// (sched_yield). A spinner yields its OS
// thread between looks, and the reader's thread, woken by the network, is
// usually scheduled on the spinner's vCPU (on 2 vCPUs the other one runs
// the peer process; a nodaltrace build showed them on one vCPU in ~100 %
// of the spins that caught a message): the spinner then saw the message
// only once the reader's thread gave the vCPU back, after the reader's
// next read found nothing and its thread went idle, 7-10 us later. When
// the two run on different vCPUs the yield returns at once. A batch of
// several frames is left alone: the goroutines it made runnable queue
// their answers on the reader's P and share one write (group commit,
// p2p/conn.go), which a spinner writing alone in between would break.
//
// Only the one conversation of this OS process is helped so
// (spin.Conversations is 1): with concurrent callers or servers, a lone
// frame is one of many, and the spinner's answer written at once alone
// would break the batches the others share.
func (d *dist) yieldToSpinner(handed uint64) {
	if !spin.Supported || spin.Conversations() != 1 || spin.Handoffs() == handed {
		return
	}
	hoptrace.Stamp(hoptrace.Delivered)
	spin.Yield()
}

// msgRun is messages for the local process id, in order, not delivered yet.
type msgRun struct {
	id   uint64
	msgs []any
}

// deliverRun delivers r's messages and empties r. Messages for a process
// that does not exist (it exited) are dropped, as one by one.
func (d *dist) deliverRun(r *msgRun) {
	if len(r.msgs) == 0 {
		return
	}
	if p := d.n.procs.get(r.id); p != nil {
		p.markNetIn()
		if n := p.deliverMany(r.msgs); d.backlog > 0 && n > d.backlog {
			d.throttle(p)
		}
	}
	clear(r.msgs)
	r.msgs = r.msgs[:0]
}

// msgHead is the head of the last message frame decodeLocalMsg took
// (kind, both pids; a slice of that frame) and its target's id. A stream's
// frames from one process to one process share their head byte for byte:
// its sender sends the frames after the first as dMsgSame, which stand for
// that head (p2p.Link.SendHead), and a frame that starts with it has the
// same target: one comparison instead of parsing the pids again. dist.Frames
// keeps one per connection, and forgets it at any other frame.
type msgHead struct {
	b  []byte
	id uint64
}

// decodeLocalMsg decodes f on the fast path when it is a message (dMsg)
// whose pids carry no node name (the sender's node and this node are
// implied) for a pid of this node start, or a dMsgSame: it returns the
// target's id and the message, with ok. Any other frame gives !ok and is
// left to handleFrame; an error is a malformed message frame, or a
// dMsgSame with no head before it. A []byte message's slice header goes
// in *box (boxBytes): box is set only then, and may be nil for a frame
// that is not a message (f[0] is neither dMsg nor dMsgSame). head is the
// head of the last frame taken (msgHead); decodeLocalMsg updates it.
func (d *dist) decodeLocalMsg(f []byte, box *[]byte, head *msgHead) (id uint64, v any, ok bool, err error) {
	var i int
	if len(f) > 0 && f[0] == dMsgSame {
		if len(head.b) == 0 || len(f) == 1 {
			return 0, nil, true, errSameHead
		}
		id, i = head.id, 1
	} else if h := head.b; len(h) > 0 && len(f) > len(h) && string(f[:len(h)]) == string(h) {
		id, i = head.id, len(h) // the same bytes parse the same
	} else {
		// kind, from (its node: the peer), to (its node: this node),
		// value; each pid is pidImplied and its id, or 0, its id and its
		// incarnation (appendRemotePid)
		if len(f) < 6 || f[0] != dMsg {
			return 0, nil, false, nil
		}
		switch f[1] { // from's id, and incarnation: checked, not needed
		case pidImplied:
			i = skipUvarint(f, 2)
		case 0:
			i = skipUvarint(f, skipUvarint(f, 2))
		default:
			return 0, nil, false, nil
		}
		if i < 0 || i >= len(f) {
			return 0, nil, false, nil
		}
		switch to := f[i]; {
		case to == pidImplied:
			id, i = uvarintAt(f, i+1)
		case to == 0:
			id, i = uvarintAt(f, i+1)
			if i < 0 || !bytes.HasPrefix(f[i:], d.incEnc) {
				// A pid of another start (noproc), or one encoded otherwise
				// than this node encodes its incarnation: the general path.
				return 0, nil, false, nil
			}
			i += len(d.incEnc)
		default:
			return 0, nil, false, nil
		}
		if i < 0 || i >= len(f) {
			return 0, nil, false, nil // no value: the general path says so
		}
		head.b, head.id = f[:i:i], id
	}
	if f[i] == tagBytes {
		// The common payload, without a decoder: its length, then exactly
		// that many bytes to the frame's end.
		if n, j := uvarintAt(f, i+1); j >= 0 && n == uint64(len(f)-j) {
			*box = f[j:len(f):len(f)] // capacity clipped: appends copy
			return id, boxBytes(box), true, nil
		}
		if f[0] != dMsgSame {
			return 0, nil, false, nil // malformed: the general path says how
		}
		// malformed: the decoder says how
	}
	dec := decoder{Decoder: wire.NewDecoderAt(f, i), owned: true}
	v = d.codec.decodeValue(&dec)
	if err := dec.done(); err != nil {
		return 0, nil, true, err
	}
	return id, v, true, nil
}

// errSameHead is a dMsgSame frame with no message frame before it on its
// connection, or with no value.
var errSameHead = fmt.Errorf("%w: a repeated message head with no message before it, or no value", ErrCodec)

// skipUvarint returns the index after the uvarint at b[i:], or -1 when
// there is none (binary.Uvarint's rules; i may be -1 already).
func skipUvarint(b []byte, i int) int {
	if i < 0 {
		return -1
	}
	for j := 0; j < binary.MaxVarintLen64 && i+j < len(b); j++ {
		if c := b[i+j]; c < 0x80 {
			if j == binary.MaxVarintLen64-1 && c > 1 {
				return -1 // overflows 64 bits
			}
			return i + j + 1
		}
	}
	return -1
}

// uvarintAt reads a uvarint at b[i:] and returns it with the index after
// it, or -1 when there is none.
func uvarintAt(b []byte, i int) (uint64, int) {
	if i < len(b) && b[i] < 0x80 {
		return uint64(b[i]), i + 1
	}
	if i+1 < len(b) && b[i+1] < 0x80 && b[i+1] != 0 {
		return uint64(b[i]&0x7f) | uint64(b[i+1])<<7, i + 2 // a pid's id, a 1 KiB length
	}
	if i >= len(b) {
		return 0, -1
	}
	x, n := binary.Uvarint(b[i:])
	if n <= 0 {
		return 0, -1
	}
	return x, i + n
}

func (d *dist) handleFrame(p p2p.Peer, data []byte) error {
	dec := newDecoder(data, true) // p2p gives us the frame
	kind := dec.Byte()
	if f, ok := signalFrame(kind); ok {
		s, err := d.decodeSignal(p, kind, f, &dec)
		if err != nil {
			return err
		}
		hoptrace.Stamp(hoptrace.Decoded)
		d.deliverIncoming(s)
		hoptrace.Stamp(hoptrace.Delivered)
		return nil
	}
	switch kind {
	case dMsgName:
		from := dec.remotePid(p.Name, p.Incarnation)
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
		if p := n.procs.get(s.to.ID); p != nil {
			p.markNetIn()
			if p.deliver(s.msg) {
				d.throttleSampled(p)
			}
		}
		return
	}
	var q signalQueue
	if n.isLocal(s.to) {
		if p := n.procs.get(s.to.ID); p != nil {
			p.markNetIn()
		}
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
// stops). Frames calls it when a delivery left the mailbox above the bound.
func (d *dist) throttle(p *Process) {
	max := d.backlog
	if max <= 0 || d.queueLen(p) <= max {
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

// throttleSampled is throttle for one delivery at a time: it looks at the
// mailbox once every 64 deliveries, which keeps the check off the common
// path.
func (d *dist) throttleSampled(p *Process) {
	if d.backlog > 0 && d.delivered.Add(1)&63 == 0 {
		d.throttle(p)
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
