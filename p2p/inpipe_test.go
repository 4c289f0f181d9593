package p2p

import (
	"sync"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
)

// gatedHandler records the frames it is given; while gate is open (not
// closed), each Frames call waits for it.
type gatedHandler struct {
	gate    chan struct{}
	mu      sync.Mutex
	got     []byte // the first byte of each frame, in delivery order
	entered chan struct{}
}

func (h *gatedHandler) Frames(_ Peer, frames [][]byte) {
	select {
	case h.entered <- struct{}{}:
	default:
	}
	<-h.gate
	h.mu.Lock()
	for _, f := range frames {
		h.got = append(h.got, f[0])
	}
	h.mu.Unlock()
}

func newTestPipe(h BatchHandler) (*inPipe, *conn) {
	c := &conn{closing: make(chan struct{})}
	return newInPipe(c, h), c
}

// TestInPipeStreamOverlapsDelivery: a stream's batches are delivered by
// the deliverer, so the reader goes on handing them over (reading) while
// a delivery is under way, up to maxHandedBytes and no further; once the
// delivery resumes every frame arrives, in order. With the reader
// delivering itself the first hand would not return.
func TestInPipeStreamOverlapsDelivery(t *testing.T) {
	defer leaktest.AfterTest(t)()
	h := &gatedHandler{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	q, _ := newTestPipe(h)
	const size = 16 << 10
	frame := func(i int) [][]byte { return [][]byte{append([]byte{byte(i)}, make([]byte, size-1)...)} }
	q.hand(frame(0), size+handedFrameCost, true)
	<-h.entered // the deliverer holds frame 0, gated
	handedAll := make(chan int, 1)
	go func() {
		n := 1
		for ; n < 200; n++ {
			q.hand(frame(n), size+handedFrameCost, true)
		}
		handedAll <- n
	}()
	// While the delivery is held up the reader hands over what the bound
	// allows, then waits: it never has more than maxHandedBytes and one
	// batch handed over.
	require.Eventually(t, func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.full
	}, 10*time.Second, time.Millisecond, "the reader waits for room")
	q.mu.Lock()
	handed, nhanded := q.handed, q.nhanded
	q.mu.Unlock()
	require.LessOrEqual(t, handed, maxHandedBytes+size+handedFrameCost)
	require.LessOrEqual(t, nhanded, maxHandedBatches+1)
	require.True(t, handed >= maxHandedBytes || nhanded >= maxHandedBatches, "the reader went on while frame 0 was being delivered")
	close(h.gate)
	require.Equal(t, 200, <-handedAll)
	q.finish()
	require.Len(t, h.got, 200)
	for i, b := range h.got {
		require.Equal(t, byte(i), b, "frame %d out of order", i)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	require.Zero(t, q.handed)
	require.Zero(t, q.nhanded)
	require.LessOrEqual(t, len(q.spare), maxHandedBatches+2, "batch arrays recycled, not piling up")
}

// TestInPipeLoneBatchInline: a batch that is not part of a stream, with
// the deliverer idle, is delivered by the reader before hand returns,
// and no deliverer goroutine is started for it; behind a stream's frames
// it waits its turn, in order.
func TestInPipeLoneBatchInline(t *testing.T) {
	defer leaktest.AfterTest(t)()
	h := &gatedHandler{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	close(h.gate)
	q, _ := newTestPipe(h)
	q.hand([][]byte{{1}}, 1+handedFrameCost, false)
	require.Equal(t, []byte{1}, h.got, "delivered before hand returned")
	require.False(t, q.started, "no deliverer for a lone batch")

	gate := make(chan struct{})
	h.gate = gate
	q.hand([][]byte{{2}}, 1+handedFrameCost, true) // a stream: the deliverer takes it
	<-h.entered
	q.hand([][]byte{{3}}, 1+handedFrameCost, false) // lone, but the deliverer is busy: after 2
	close(gate)
	q.finish()
	require.Equal(t, []byte{1, 2, 3}, h.got)
}

// TestInPipeClosingUnblocksReader: a reader waiting for room returns when
// the connection closes, so that it can see its read fail and end.
func TestInPipeClosingUnblocksReader(t *testing.T) {
	defer leaktest.AfterTest(t)()
	h := &gatedHandler{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	q, c := newTestPipe(h)
	big := [][]byte{make([]byte, maxHandedBytes)}
	q.hand(big, maxHandedBytes+handedFrameCost, true)
	<-h.entered
	returned := make(chan struct{})
	go func() {
		q.hand([][]byte{{7}}, 1+handedFrameCost, true)
		close(returned)
	}()
	require.Eventually(t, func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.full
	}, 10*time.Second, time.Millisecond)
	close(c.closing)
	<-returned
	close(h.gate)
	q.finish()
	require.Len(t, h.got, 2)
}
