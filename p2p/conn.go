package p2p

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/nodal-go/nodal/internal/hoptrace"
)

// maxBatchFrames bounds the frames one BatchHandler.Frames call gets.
const maxBatchFrames = 256

// idleBufCap is the most buffer capacity an idle connection keeps for
// each of its two outbound buffers.
const idleBufCap = 256 << 10

// peerCounters are cumulative per peer name.
type peerCounters struct {
	framesIn, bytesIn, framesOut, bytesOut, dropped, decodeErrors atomic.Uint64
}

// idleTrimAfter is how long a connection must have written nothing for
// its next write to let an outgrown buffer go (releaseLocked).
const idleTrimAfter = 100 * time.Millisecond

// idleGap is how long a direct connection must have written nothing for a
// sender to write its frame itself (writeInline) instead of waking the
// writer goroutine: a lone frame (a call, its reply) then costs no
// goroutine hand-off, while a stream of frames still goes out in batches.
const idleGap = 5 * time.Microsecond

// Group commit: frames queued while a batch is written all go out in the
// next one. A write is a syscall that holds its goroutine's P, so senders
// it made runnable (call processes woken by the batch the reader just
// delivered, each with one reply) can only queue theirs after it; and a
// writer that took the next batch at once would write their frames one by
// one. So a small batch waits for one yield (runtime.Gosched) of whoever
// writes it: the runnable senders queue their frames first and share the
// write. A batch of yieldBelow bytes or more is written at once.
const yieldBelow = 16 << 10

// maxLeadBatches bounds the batches a sender that found the connection
// idle writes (its own, then what others queued meanwhile) before it
// leaves the rest to the writer goroutine: a sender is not held up by a
// stream of other senders' frames.
const maxLeadBatches = 4

// frameIO is what a conn writes its frames on and closes: the libp2p
// stream, or a direct connection (direct.go).
type frameIO interface {
	io.Writer
	Close() error
	Reset() error
}

// conn is one authenticated frame stream to a peer. It has one reader and
// one writer goroutine (on the host's connection stopper). Senders append
// encoded frames to a bounded buffer; the writer swaps it out and writes the
// whole batch with one Write, so many small frames cost one syscall and one
// encryption record. A sender that finds a direct connection idle writes its
// frame itself (writeInline), and then what others queued meanwhile (group
// commit, yieldBelow).
type conn struct {
	h        *Host
	peer     Peer
	s        network.Stream // the handshake's stream (closed once a direct connection carries the frames)
	w        frameIO        // where frames are written: s, or the direct connection
	rd       io.Reader      // where frames are read: the handshake's buffered stream, or the direct connection
	outbound bool
	prev     *conn // earlier connection to the same name; its NodeDown comes first
	ctr      *peerCounters

	// direct is set when the frames run on a direct connection; then the
	// host's tick (direct.go) watches reads and writes, the counts of
	// underlying reads and of written batches.
	direct        bool
	reads, writes atomic.Uint64
	tickR, tickW  uint64 // the tick's last look (tick goroutine only)
	quietTicks    int

	mu         sync.Mutex
	buf        []byte        // encoded frames waiting for the writer
	frames     int           // frames in buf
	waiting    chan struct{} // non-nil while senders wait for space; closed on drain
	closed     bool
	flushing   bool // graceful close: write what is queued, then close
	reason     error
	started    bool  // startConn ran: a sender may write inline
	writing    bool  // a batch is being written (by the writer goroutine or inline)
	lastEnd    int64 // when the last write ended (nanotime of the monotonic clock base)
	lastFrames int   // frames in the last batch taken for writing
	// head is the head of the last data frame queued, when a Link.SendHead
	// queued it (headSet); the next SendHead with the same head sends its
	// short form.
	head    []byte
	headSet bool

	spare []byte // owned by whoever is writing: the second buffer

	wake       chan struct{} // cap 1: buf became non-empty or flushing was set
	closing    chan struct{} // closed by close
	done       chan struct{} // closed after NodeDown (or when never reported up)
	writerDone chan struct{}

	pingMu  sync.Mutex
	pingSeq uint64
	pings   map[uint64]chan struct{}
}

func newConn(h *Host, p Peer, s network.Stream, br *bufio.Reader, outbound bool) *conn {
	return &conn{
		h:          h,
		peer:       p,
		s:          s,
		w:          s,
		rd:         br,
		outbound:   outbound,
		ctr:        h.counters(p.Name),
		wake:       make(chan struct{}, 1),
		closing:    make(chan struct{}),
		done:       make(chan struct{}),
		writerDone: make(chan struct{}),
	}
}

func (c *conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// enqueue queues one frame. With block it waits (bounded by ctx) while the
// queue is full; without, it fails with ErrQueueFull. A frame larger than
// the whole queue is accepted when the queue is empty. A blocking enqueue
// that finds a direct connection idle writes the frame itself: the kernel's
// socket buffer then stands in for the queue. On a libp2p stream (which may
// be a synchronous pipe, as p2ptest's are) the writer goroutine always
// writes, so a sender never waits for the peer's reader.
func (c *conn) enqueue(ctx context.Context, typ byte, payload []byte, block bool) error {
	return c.enqueueHead(ctx, typ, nil, nil, payload, block)
}

// enqueueHead is enqueue for a frame of head and body; short is nil, or
// (Link.SendHead) what stands for head when the last data frame queued
// was the same head's.
func (c *conn) enqueueHead(ctx context.Context, typ byte, head, short, body []byte, block bool) error {
	size := frameSize(len(head) + len(body))
	limit := c.h.cfg.Advanced.SendQueueBytes
	for {
		c.mu.Lock()
		if c.closed || c.flushing {
			reason := c.reason
			c.mu.Unlock()
			return &PeerError{Node: c.peer.Name, Err: fmt.Errorf("%w: connection closing: %w", ErrNoConnection, reason)}
		}
		if len(c.buf) == 0 || len(c.buf)+size <= limit {
			wasEmpty := len(c.buf) == 0
			switch {
			case short == nil:
				c.buf = appendFrameParts(c.buf, typ, head, body)
				c.headSet = c.headSet && typ != frameData
			case c.headSet && string(c.head) == string(head):
				c.buf = appendFrameParts(c.buf, typ, short, body)
			default:
				c.buf = appendFrameParts(c.buf, typ, head, body)
				c.head = append(c.head[:0], head...)
				c.headSet = true
			}
			c.frames++
			if !wasEmpty || c.writing {
				// The writer at work takes it with its next batch.
				c.mu.Unlock()
				return nil
			}
			if block && c.direct && c.started && monoNow()-c.lastEnd > int64(idleGap) {
				c.writeInline() // unlocks
				return nil
			}
			c.mu.Unlock()
			c.signal()
			return nil
		}
		if !block {
			c.mu.Unlock()
			c.ctr.dropped.Add(1)
			return &PeerError{Node: c.peer.Name, Err: ErrQueueFull}
		}
		if c.waiting == nil {
			c.waiting = make(chan struct{})
		}
		w := c.waiting
		c.mu.Unlock()
		select {
		case <-w:
		case <-c.closing:
		case <-ctx.Done():
			return ctxErr(ctx)
		}
	}
}

// writeInline writes the queued batch from the sender's goroutine; c.mu is
// held and released. The sender leads: while frames were queued during its
// write it writes them too, after a yield when they are few (yieldBelow),
// up to maxLeadBatches batches; the writer goroutine takes what is left.
// When the last batch carried several frames (traffic comes in bursts:
// many callers, or a batch of requests served at once), it yields before
// its own first write too, so that the burst shares it.
func (c *conn) writeInline() {
	if c.lastFrames > 1 && !c.leadYield() {
		return
	}
	for batches := 1; ; batches++ {
		batch, n := c.takeLocked()
		c.mu.Unlock()
		ok := c.writeBatch(batch, n)
		c.mu.Lock()
		c.releaseLocked(batch)
		if !ok || len(c.buf) == 0 && !c.flushing {
			c.mu.Unlock()
			return
		}
		if c.flushing || batches == maxLeadBatches {
			c.mu.Unlock()
			c.signal()
			return
		}
		if len(c.buf) < yieldBelow && !c.leadYield() {
			return
		}
	}
}

// leadYield lets runnable senders queue their frames before the leading
// sender takes the batch (runtime.Gosched); c.mu is held, and released
// when it returns false: the connection closed or is flushing meanwhile,
// and the writer goroutine takes over.
func (c *conn) leadYield() bool {
	c.writing = true // still the writer: senders only queue
	c.mu.Unlock()
	runtime.Gosched()
	c.mu.Lock()
	c.writing = false
	if c.closed || c.flushing {
		c.mu.Unlock()
		c.signal()
		return false
	}
	return true
}

// takeLocked takes the queued frames for writing; c.mu is held.
func (c *conn) takeLocked() ([]byte, int) {
	batch, n := c.buf, c.frames
	c.lastFrames = n
	c.buf, c.frames = c.spare[:0], 0
	c.spare = nil
	c.writing = true
	if c.waiting != nil {
		close(c.waiting)
		c.waiting = nil
	}
	return batch, n
}

// releaseLocked ends a write; c.mu is held. The buffer is reused while
// frames keep coming: one that outgrew idleBufCap is let go by the first
// write after the connection was quiet for idleTrimAfter (a burst is
// over), not while a stream runs, whose buffers would otherwise grow
// again from nothing after every write that catches up.
func (c *conn) releaseLocked(batch []byte) {
	c.writing = false
	now := monoNow()
	quiet := now-c.lastEnd > int64(idleTrimAfter)
	c.lastEnd = now
	if quiet && len(c.buf) == 0 && cap(batch) > idleBufCap {
		batch = nil
	}
	c.spare = batch[:0]
}

// writeBatch writes one batch of n frames; false when the connection failed
// (it is then closed).
func (c *conn) writeBatch(batch []byte, n int) bool {
	hoptrace.Stamp(hoptrace.WriteStart)
	_, err := c.w.Write(batch)
	hoptrace.Stamp(hoptrace.WriteEnd)
	if err != nil {
		c.ctr.dropped.Add(uint64(n))
		c.closeWith(fmt.Errorf("%w: write: %v", ErrConnClosed, err), false)
		return false
	}
	c.writes.Add(1)
	c.ctr.framesOut.Add(uint64(n))
	c.ctr.bytesOut.Add(uint64(len(batch)))
	return true
}

// writeLoop is the connection's writer goroutine: it writes what senders
// queued while a write was under way or the connection busy, a small batch
// after one yield (yieldBelow).
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	for {
		select {
		case <-c.wake:
		case <-c.closing:
			return
		}
		yielded := false
		for {
			c.mu.Lock()
			if c.closed {
				c.mu.Unlock()
				return
			}
			if c.writing {
				c.mu.Unlock() // an inline write; it signals if more is queued
				break
			}
			if len(c.buf) == 0 {
				flushing := c.flushing
				reason := c.reason
				c.mu.Unlock()
				if flushing {
					c.closeWith(reason, true)
					return
				}
				break
			}
			if !yielded && len(c.buf) < yieldBelow && !c.flushing {
				c.mu.Unlock()
				runtime.Gosched()
				yielded = true
				continue
			}
			yielded = false
			batch, n := c.takeLocked()
			c.mu.Unlock()
			if !c.writeBatch(batch, n) {
				return
			}
			c.mu.Lock()
			c.releaseLocked(batch)
			c.mu.Unlock()
		}
	}
}

// shutdown queues a bye frame and closes once everything queued is written.
func (c *conn) shutdown(code byte, reason error) {
	c.mu.Lock()
	if c.closed || c.flushing {
		c.mu.Unlock()
		return
	}
	c.buf = appendFrame(c.buf, frameBye, []byte{code})
	c.flushing = true
	c.reason = reason
	c.mu.Unlock()
	c.signal()
}

// close ends the connection now; the first reason given wins.
func (c *conn) close(reason error) { c.closeWith(reason, false) }

func (c *conn) closeWith(reason error, graceful bool) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	if c.reason == nil {
		c.reason = reason
	}
	dropped := c.frames
	c.buf, c.frames = nil, 0
	w := c.w
	if c.waiting != nil {
		close(c.waiting)
		c.waiting = nil
	}
	c.mu.Unlock()
	if dropped > 0 {
		c.ctr.dropped.Add(uint64(dropped))
		log.Debugw("frames dropped with closing connection", "node", c.peer.Name, "frames", dropped)
	}
	close(c.closing)
	if graceful {
		_ = w.Close()
	} else {
		_ = w.Reset()
	}
	if c.s != nil && w != frameIO(c.s) {
		_ = c.s.Reset()
	}
	c.h.unregister(c)
}

func (c *conn) closeReason() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

// readLoop reports NodeUp, delivers frames in order, then reports NodeDown.
func (c *conn) readLoop() {
	defer close(c.done)
	if c.prev != nil {
		select {
		case <-c.prev.done:
		case <-c.h.connStopper.ShouldStop():
			c.close(ErrShutdown)
			return
		}
	}
	hd := c.h.handler
	hd.NodeUp(c.peer)
	log.Infow("node up", "node", c.peer.Name, "incarnation", c.peer.Incarnation, "hidden", c.peer.Hidden)
	fr := frameReader{r: c.rd, max: c.h.cfg.Advanced.MaxFrameSize}
	bh, _ := hd.(BatchHandler)
	var in *inPipe
	var batch [][]byte
	if bh != nil {
		in = newInPipe(c, bh)
		batch = make([][]byte, 0, maxBatchFrames)
	}
	batchCost := 0
	flush := func() {
		if len(batch) == 0 {
			return
		}
		c.ctr.framesIn.Add(uint64(len(batch)))
		c.ctr.bytesIn.Add(uint64(batchCost - handedFrameCost*len(batch)))
		batch, batchCost = in.hand(batch, batchCost, fr.full), 0
	}
	end := func() {
		flush()
		if in != nil {
			in.finish()
		}
	}
	var reason error
	for {
		typ, p, err := fr.next()
		if err != nil {
			end()
			reason = c.readError(err)
			break
		}
		switch typ {
		case frameData:
			hoptrace.Stamp(hoptrace.FrameRead)
			if bh == nil {
				c.ctr.framesIn.Add(1)
				c.ctr.bytesIn.Add(uint64(len(p)))
				hd.Frame(c.peer, p)
				continue
			}
			batch = append(batch, p)
			batchCost += len(p) + handedFrameCost
			if len(batch) == maxBatchFrames || !fr.ready() {
				flush()
			}
			continue
		case framePing:
			// Best effort: a full queue drops the pong and the pinger times out.
			_ = c.enqueue(context.Background(), framePong, p, false)
		case framePong:
			c.pong(binary.BigEndian.Uint64(p))
		case frameBye:
			end()
			reason = byeReason(p[0])
			if errors.Is(reason, ErrLeft) {
				c.h.noteBye(c.peer.Name, c.peer.Incarnation)
			}
		}
		if typ == frameBye {
			break
		}
		if !fr.ready() {
			flush() // a control frame ended what the last read brought
		}
	}
	c.close(reason)
	<-c.writerDone
	reason = c.closeReason()
	hd.NodeDown(c.peer, reason)
	log.Infow("node down", "node", c.peer.Name, "incarnation", c.peer.Incarnation, "reason", reason.Error())
	if errors.Is(reason, ErrConnClosed) || errors.Is(reason, ErrProtocol) || errors.Is(reason, ErrFrameTooLarge) {
		c.h.kickMesh(c.peer.Name) // a live member gets reconnected
	}
}

func (c *conn) readError(err error) error {
	if r := c.closeReason(); r != nil {
		return r // closed locally; that reason wins
	}
	if errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrProtocol) {
		c.ctr.decodeErrors.Add(1)
		log.Warnw("bad frame, closing connection", "node", c.peer.Name, "err", err.Error())
		return err
	}
	return fmt.Errorf("%w: %v", ErrConnClosed, err)
}

func byeReason(code byte) error {
	switch code {
	case byeLeft:
		return ErrLeft
	case byeDisconnected:
		return ErrDisconnected
	}
	return ErrConnClosed
}

func (c *conn) ping(ctx context.Context) error {
	ch := make(chan struct{})
	c.pingMu.Lock()
	c.pingSeq++
	seq := c.pingSeq
	if c.pings == nil {
		c.pings = make(map[uint64]chan struct{})
	}
	c.pings[seq] = ch
	c.pingMu.Unlock()
	defer func() {
		c.pingMu.Lock()
		delete(c.pings, seq)
		c.pingMu.Unlock()
	}()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	if err := c.enqueue(ctx, framePing, b[:], true); err != nil {
		return err
	}
	select {
	case <-ch:
		return nil
	case <-c.closing:
		return &PeerError{Node: c.peer.Name, Err: fmt.Errorf("%w: %w", ErrNoConnection, c.closeReason())}
	case <-ctx.Done():
		return ctxErr(ctx)
	}
}

func (c *conn) pong(seq uint64) {
	c.pingMu.Lock()
	ch := c.pings[seq]
	delete(c.pings, seq)
	c.pingMu.Unlock()
	if ch != nil {
		close(ch)
	}
}

// ctxErr wraps ctx.Err(), adding ErrTimeout for deadlines.
func ctxErr(ctx context.Context) error {
	err := ctx.Err()
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return err
}
