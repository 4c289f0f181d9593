package p2p

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
)

// countIO is a frameIO that counts its writes; onFirst runs inside the
// first one (another sender queuing while a write is under way).
type countIO struct {
	mu      sync.Mutex
	writes  int
	onFirst func()
}

func (f *countIO) Write(p []byte) (int, error) {
	f.mu.Lock()
	f.writes++
	first := f.writes == 1
	f.mu.Unlock()
	if first && f.onFirst != nil {
		f.onFirst()
	}
	return len(p), nil
}

func (f *countIO) Close() error { return nil }
func (f *countIO) Reset() error { return nil }

func (f *countIO) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes
}

// runnableSenders starts n goroutines that each queue one frame on c once
// start is closed, and returns when all of them wait for it.
func runnableSenders(t *testing.T, ctx context.Context, c *conn, n int, start <-chan struct{}, done *sync.WaitGroup) {
	t.Helper()
	var ready sync.WaitGroup
	for i := range n {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			if err := c.enqueue(ctx, frameData, []byte{byte(i)}, true); err != nil {
				t.Errorf("enqueue: %v", err)
			}
		}()
	}
	ready.Wait()
}

// Frames of senders that became runnable together (call processes woken by
// one batch of requests, each with its reply) share a write even when each
// would find the connection idle by itself: on one P, the writer yields
// once before it takes a small batch, and the writer that leads a write
// yields before it writes what was queued meanwhile.
func TestGroupCommit(t *testing.T) {
	defer leaktest.AfterTest(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h := startHidden(t, ctx)
	defer stopAll(t, h)
	const senders = 16

	for _, tc := range []struct {
		name   string
		peer   string
		direct bool // a sender that finds the connection idle writes its frame itself and leads
	}{
		{"writer goroutine", "x@127.0.0.1", false},
		{"inline leader", "y@127.0.0.1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// One P: the senders made runnable wait behind whoever runs,
			// as they wait behind a write's syscall.
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
			f := &countIO{}
			c := newConn(h, Peer{Name: tc.peer}, nil, nil, true)
			c.w, c.direct, c.started = f, tc.direct, true
			go c.writeLoop()
			defer c.close(ErrShutdown)
			start := make(chan struct{})
			var done sync.WaitGroup
			runnableSenders(t, ctx, c, senders, start, &done)
			want := senders
			if tc.direct {
				// The lead write readies the senders and another sender
				// queues a frame while it runs.
				f.onFirst = func() {
					close(start)
					require.NoError(t, c.enqueue(ctx, frameData, []byte("meanwhile"), false))
				}
				require.NoError(t, c.enqueue(ctx, frameData, []byte("lead"), true))
				want += 2
			} else {
				close(start)
			}
			done.Wait()
			waitUntil(t, 10*time.Second, func() bool { return c.ctr.framesOut.Load() == uint64(want) }, "frames written")
			// One write for the senders (two for the leader: its own frame,
			// then the others'); three when the scheduler's periodic look
			// at its global queue picks the yielder early.
			require.LessOrEqual(t, f.count(), 3, "%d frames in %d writes", want, f.count())
		})
	}
}

// After a batch of several frames (bursty traffic), a sender that finds
// the connection idle yields before its first write as well: a burst of
// senders made runnable with it shares that write.
func TestGroupCommitBurstLeader(t *testing.T) {
	defer leaktest.AfterTest(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h := startHidden(t, ctx)
	defer stopAll(t, h)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f := &countIO{}
	c := newConn(h, Peer{Name: "x@127.0.0.1"}, nil, nil, true)
	c.w, c.direct, c.started = f, true, true
	go c.writeLoop()
	defer c.close(ErrShutdown)
	const senders, rounds = 16, 20
	for round := range rounds {
		c.mu.Lock()
		c.lastEnd = 0 // idle, and the last batch was a burst
		c.lastFrames = senders
		c.mu.Unlock()
		start := make(chan struct{})
		var done sync.WaitGroup
		runnableSenders(t, ctx, c, senders, start, &done)
		close(start)
		require.NoError(t, c.enqueue(ctx, frameData, []byte("lead"), true))
		done.Wait()
		want := uint64((round + 1) * (senders + 1))
		waitUntil(t, 10*time.Second, func() bool { return c.ctr.framesOut.Load() == want }, "frames written")
	}
	// One write per round; a second now and then, when the scheduler's
	// periodic look at its global queue picks the leader early. Without
	// the first yield the leader's frame goes alone and the burst needs
	// at least one more.
	require.LessOrEqual(t, f.count(), rounds*3/2, "%d rounds of %d frames in %d writes", rounds, senders+1, f.count())
}
