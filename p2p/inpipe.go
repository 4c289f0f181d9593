package p2p

import "sync"

// The inbound side of a connection is a pipeline of two goroutines while
// a stream runs: the reader (readLoop) reads, decrypts and splits frames,
// and a deliverer hands the batches to the BatchHandler (decoding and
// delivery into mailboxes), so that reading the next TLS records overlaps
// with delivering the last ones, each on a core of its own. A lone batch
// (a call, its reply: the read that brought it was not full,
// frameReader.full) finding the deliverer idle is delivered by the reader
// itself, as before: no hand-off, no thread woken, the latency of a call
// unchanged. The deliverer starts at the connection's first stream and
// lives as long as the reader, which waits for it to finish before it
// reports NodeDown: frames are delivered in order and all of them before
// NodeDown.
//
// Memory is bounded: the reader hands over at most maxHandedBytes of
// frames not yet delivered and then waits, so a deliverer held up by a
// slow receiver (RemoteBacklog) holds up the reader, and TCP the sender,
// as when the reader delivered itself.

// maxHandedBytes bounds the bytes of frames handed to the deliverer and
// not yet delivered (each frame counted with handedFrameCost more).
const maxHandedBytes = 1 << 20

// handedFrameCost is what a frame counts beyond its payload against
// maxHandedBytes, so that many empty frames are bounded too.
const handedFrameCost = 32

// maxHandedBatches bounds the batches handed over and not yet delivered:
// each holds an array of up to maxBatchFrames slice headers, recycled.
const maxHandedBatches = 64

// inPipe is what the reader and the deliverer of one connection share.
type inPipe struct {
	c  *conn
	bh BatchHandler

	mu      sync.Mutex
	batches [][][]byte // handed over, in order, not yet taken
	spare   [][][]byte // empty batch arrays for the reader
	handed  int        // cost of the frames handed over and not yet delivered
	nhanded int        // batches handed over and not yet delivered
	busy    bool       // frames are being delivered (by the deliverer, or inline by the reader)
	started bool       // the deliverer runs
	end     bool       // the reader is done: the deliverer exits when nothing is left
	parked  bool       // the deliverer waits for wake
	full    bool       // the reader waits for room

	wake chan struct{} // cap 1: to the deliverer
	room chan struct{} // cap 1: to the reader
	done chan struct{} // closed when the deliverer exits
}

func newInPipe(c *conn, bh BatchHandler) *inPipe {
	return &inPipe{c: c, bh: bh, wake: make(chan struct{}, 1), room: make(chan struct{}, 1), done: make(chan struct{})}
}

// hand delivers batch (of cost bytes; the reader's, in order after every
// batch before it): inline when the deliverer is idle and stream is
// false, else by the deliverer, which takes the array. It returns an
// empty array (of capacity maxBatchFrames) for the reader's next batch.
func (q *inPipe) hand(batch [][]byte, cost int, stream bool) [][]byte {
	q.mu.Lock()
	if !stream && !q.busy && q.nhanded == 0 {
		q.busy = true
		q.mu.Unlock()
		q.bh.Frames(q.c.peer, batch)
		clear(batch)
		q.mu.Lock()
		q.busy = false
		q.mu.Unlock()
		return batch[:0]
	}
	for closing := false; (q.handed >= maxHandedBytes || q.nhanded >= maxHandedBatches) && !closing; {
		q.full = true
		q.mu.Unlock()
		select {
		case <-q.room:
		case <-q.c.closing:
			// Hand it over anyway (one batch beyond the bound): the
			// next read fails and the reader ends.
			closing = true
		}
		q.mu.Lock()
	}
	q.batches = append(q.batches, batch)
	q.handed += cost
	q.nhanded++
	if !q.started {
		q.started = true
		go q.deliverLoop()
	} else if q.parked {
		q.parked = false
		signal(q.wake)
	}
	var next [][]byte
	if n := len(q.spare); n > 0 {
		next = q.spare[n-1]
		q.spare[n-1] = nil
		q.spare = q.spare[:n-1]
	}
	q.mu.Unlock()
	if next == nil {
		next = make([][]byte, 0, maxBatchFrames)
	}
	return next
}

// finish waits until every frame handed over is delivered; the deliverer
// exits. The reader calls it once, when it reads no more.
func (q *inPipe) finish() {
	q.mu.Lock()
	q.end = true
	started := q.started
	if q.parked {
		q.parked = false
		signal(q.wake)
	}
	q.mu.Unlock()
	if started {
		<-q.done
	}
}

// deliverLoop is the deliverer: it delivers the batches handed over, in
// order, until the reader is done and nothing is left.
func (q *inPipe) deliverLoop() {
	defer close(q.done)
	var taken [][][]byte
	for {
		q.mu.Lock()
		for len(q.batches) == 0 {
			q.busy = false
			if q.end {
				q.mu.Unlock()
				return
			}
			q.parked = true
			q.mu.Unlock()
			<-q.wake
			q.mu.Lock()
		}
		q.busy = true
		taken, q.batches = q.batches, taken[:0]
		q.mu.Unlock()
		cost := 0
		for _, b := range taken {
			q.bh.Frames(q.c.peer, b)
			for _, f := range b {
				cost += len(f) + handedFrameCost
			}
			clear(b)
		}
		q.mu.Lock()
		q.handed -= cost
		q.nhanded -= len(taken)
		for i, b := range taken {
			q.spare = append(q.spare, b[:0])
			taken[i] = nil
		}
		if q.full {
			q.full = false
			signal(q.room)
		}
		q.mu.Unlock()
	}
}

// signal wakes the one waiter of ch (capacity 1) without blocking.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
