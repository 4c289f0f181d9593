package nodal

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// Erlang: sending to a dead pid is not an error; the message is dropped.
func TestSendToDeadPidIsNotAnError(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	pid, err := n.Spawn(func(*Process) error { return nil })
	require.NoError(t, err)
	waitDown(t, w, w.Monitor(pid))
	n.Send(pid, "lost")
	w.Send(pid, "lost")
	// Another incarnation of this node, and a pid never spawned.
	n.Send(Pid{Node: n.Name(), ID: pid.ID, Incarnation: n.Incarnation() + 1}, "lost")
	n.Send(Pid{Node: n.Name(), ID: 1 << 60, Incarnation: n.Incarnation()}, "lost")
	require.False(t, alive(n, pid))
}

// Erlang: messages between one pair of processes arrive in the order sent,
// also with several concurrent senders to one receiver.
func TestFIFOPerSenderReceiverPair(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	const senders, per = 4, 2000
	w := probe(t, n)
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		_, err := n.Spawn(func(p *Process) error {
			defer wg.Done()
			for i := range per {
				p.Send(w.Self(), [2]int{s, i})
			}
			return nil
		})
		require.NoError(t, err)
	}
	next := make([]int, senders)
	for range senders * per {
		m := recv(t, w).([2]int)
		require.Equal(t, next[m[0]], m[1], "sender %d out of order", m[0])
		next[m[0]]++
	}
	wg.Wait()
}

// Receive ... after: a deadline gives an error that is both ErrTimeout and
// context.DeadlineExceeded; a cancel gives ctx.Err().
func TestReceiveTimeoutAndCancel(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	_, err := w.Receive(ctx)
	require.ErrorIs(t, err, ErrTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	_, err = w.ReceiveMatch(cctx, func(any) bool { return true })
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, ErrTimeout)

	// An expired ctx still returns a message that is already there
	// (receive ... after 0).
	n.Send(w.Self(), "here")
	m, err := w.Receive(cctx)
	require.NoError(t, err)
	require.Equal(t, "here", m)
}

// Selective receive: the first matching message is taken and the others
// stay, in order; a match that arrives later is waited for.
func TestReceiveMatchLeavesOthersInOrder(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	for i := range 5 {
		n.Send(w.Self(), i)
	}
	require.Equal(t, 3, recvMatch(t, w, func(m any) bool { return m == 3 }))
	go func() { n.Send(w.Self(), "late") }()
	require.Equal(t, "late", recvMatch(t, w, func(m any) bool { return m == "late" }))
	var rest []any
	for range 4 {
		rest = append(rest, recv(t, w))
	}
	require.Equal(t, []any{0, 1, 2, 4}, rest)
	require.Equal(t, 0, queueLen(t, w))
}

// A model check of the mailbox: random sends, receives and selective
// receives against a plain slice.
func TestMailboxMatchesModel(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	rapid.Check(t, func(rt *rapid.T) {
		w := n.newBare()
		defer n.terminate(w, ReasonNormal)
		var model []int
		next := 0
		expired, cancel := context.WithCancel(context.Background())
		cancel()
		for range rapid.IntRange(1, 200).Draw(rt, "ops") {
			switch rapid.IntRange(0, 3).Draw(rt, "op") {
			case 0, 1:
				n.Send(w.Self(), next)
				model = append(model, next)
				next++
			case 2:
				m, err := w.Receive(expired)
				if len(model) == 0 {
					if !errors.Is(err, context.Canceled) {
						rt.Fatalf("empty receive: %v %v", m, err)
					}
					continue
				}
				if err != nil || m != model[0] {
					rt.Fatalf("receive = %v, %v; want %d", m, err, model[0])
				}
				model = model[1:]
			case 3:
				mod := rapid.IntRange(1, 5).Draw(rt, "mod")
				want := -1
				for i, v := range model {
					if v%mod == 0 {
						want = v
						model = append(model[:i:i], model[i+1:]...)
						break
					}
				}
				m, err := w.ReceiveMatch(expired, func(m any) bool { return m.(int)%mod == 0 })
				if want < 0 {
					if err == nil {
						rt.Fatalf("matched %v, want none", m)
					}
					continue
				}
				if err != nil || m != want {
					rt.Fatalf("match %d = %v, %v; want %d", mod, m, err, want)
				}
			}
			if l := w.queueLenLocked(); l != len(model) {
				rt.Fatalf("queue len %d, model %d", l, len(model))
			}
		}
	})
}

// The mailbox is unbounded: a sender never blocks on a slow receiver.
func TestMailboxUnbounded(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	const count = 100_000
	for i := range count {
		n.Send(w.Self(), i)
	}
	require.Equal(t, count, queueLen(t, w))
	ctx := testCtx(t) // every message is already queued
	for i := range count {
		m, err := w.Receive(ctx)
		require.NoError(t, err)
		if m != i {
			require.Equal(t, i, m)
		}
	}
}

// A receiver blocked in Receive is woken by a send from another goroutine.
func TestReceiveWakesOnSend(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	pid, err := n.Spawn(func(p *Process) error {
		for i := range 100 {
			m, err := p.Receive(context.Background())
			if err != nil {
				return err
			}
			p.Send(w.Self(), fmt.Sprint(m, i))
		}
		return nil
	})
	require.NoError(t, err)
	for i := range 100 {
		n.Send(pid, "m")
		require.Equal(t, fmt.Sprint("m", i), recv(t, w))
	}
}

// A process taking its messages one at a time reuses its mailbox's chunk
// list: a send and its receive allocate nothing (the message is boxed
// already).
func TestMailboxOneAtATimeAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	var m any = "x"
	ctx := context.Background()
	allocs := testing.AllocsPerRun(200, func() {
		w.Send(w.Self(), m)
		if got, err := w.Receive(ctx); err != nil || got != m {
			t.Fatalf("got %v, %v", got, err)
		}
	})
	require.Zero(t, allocs, "allocations per send and receive")
}

// chunkFeed delivers numbered messages to a process in runs of a quarter
// chunk (Process.deliverMany) and receives them checking their order.
type chunkFeed struct {
	t          *testing.T
	ctx        context.Context
	w          *Process
	vals       []any // boxed before any measure
	next, want int
}

func newChunkFeed(t *testing.T, w *Process, n int) *chunkFeed {
	f := &chunkFeed{t: t, ctx: testCtx(t), w: w, vals: make([]any, n)}
	for i := range f.vals {
		f.vals[i] = i
	}
	return f
}

// deliver delivers the next runs quarter-chunk runs.
func (f *chunkFeed) deliver(runs int) {
	const step = chunkMax / 4
	for range runs {
		f.w.deliverMany(f.vals[f.next : f.next+step])
		f.next += step
	}
}

// receive receives k messages, each queued before (ctx bounds the wait).
func (f *chunkFeed) receive(k int) {
	for range k {
		m, err := f.w.Receive(f.ctx)
		require.NoError(f.t, err)
		if m != f.vals[f.want] {
			require.Equal(f.t, f.vals[f.want], m)
		}
		f.want++
	}
}

// TestLaggingMailboxReusesChunks: while the owner of a mailbox that
// outgrew one chunk lags behind its senders, each chunk it drains is
// refilled by the senders rather than a new one allocated, and every
// message still arrives in order.
func TestLaggingMailboxReusesChunks(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	f := newChunkFeed(t, probe(t, n), 20*chunkMax)
	// A backlog of three chunks, then the owner stays two chunks behind.
	f.deliver(12)
	f.receive(chunkMax)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 16 {
		f.deliver(4)
		f.receive(chunkMax)
	}
	runtime.ReadMemStats(&after)
	// 16 chunks' worth went through: without reuse each took a 16 KiB
	// chunk of its own.
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(4*chunkMax*16), "chunks allocated anew")
	f.receive(f.next - f.want)
}

// TestSwingingMailboxReusesChunks: when a mailbox's lag swings (its owner
// drains a long backlog while the senders are held up, as a reader paused
// at RemoteBacklog is, then they fill it as long again) the senders refill
// the chunks drained on the way down rather than allocate new ones, and
// every message still arrives in order.
func TestSwingingMailboxReusesChunks(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	const swing = 16 // chunks
	f := newChunkFeed(t, probe(t, n), 3*swing*chunkMax+chunkMax)
	f.deliver(4 * (swing + 1))
	f.receive(swing * chunkMax) // down to one chunk, the senders held up
	f.deliver(4 * swing)        // and up again, once to warm up
	f.receive(swing * chunkMax)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f.deliver(4 * swing)
	runtime.ReadMemStats(&after)
	// Without reuse beyond maxFreeChunks each chunk past those took a
	// 16 KiB allocation of its own.
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(2*chunkMax*16), "chunks allocated anew")
	f.receive(f.next - f.want)
}
