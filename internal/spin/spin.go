// Package spin is the bounded spin of a wait for something from the
// network: a process waiting in its mailbox (the module root's spin.go)
// and an rpc caller waiting for its reply or an idle rpc call process
// waiting for its next request (rpc/) all spin through a Waiter, under the
// same bounds.
//
// A goroutine that parks costs the goroutine that delivers to it a
// wake-up, and on a Go runtime with an idle P that wake-up starts a second
// OS thread (the runtime's wakep): a futex wake, a context switch and
// often an idle vCPU's halt and resume, per message and per direction.
// Erlang avoids it by keeping its schedulers busy-waiting a little before
// they sleep. A waiter whose next message is likely to come from another
// node soon looks for it for up to Budget before it parks, yielding its OS
// thread to the kernel between looks (sched_yield): the connection's
// reader, woken by the network poller on another thread, then delivers to
// a waiter that is not parked, so nobody is woken. The runtime yield every
// few looks lets the goroutines queued behind the spinner run.
//
// It is bounded three ways: in time (Budget per wait, and at most
// MaxLooks looks), in breadth (at most half the Ps spin at once, at least
// one), and by its outcome (a spin that ends without its message makes
// the waiter skip the next 1, 3, 7 ... 63 eligible waits, so a waiter
// whose messages come seldom soon stops spinning). The caller decides
// which waits are eligible; an idle node never spins: a spin follows only
// a message to or from another node.
package spin

import (
	"runtime"
	"sync/atomic"
	"time"
)

// Budget is the longest a waiter spins before it parks: about the round
// trip of a call between two nodes on loopback.
const Budget = 40 * time.Microsecond

// MaxLooks bounds the looks of one spin as well, so that a spin ends where
// time does not pass while goroutines run (a testing/synctest bubble's
// clock).
const MaxLooks = 1024

// MaxFails caps the backoff after spins that found nothing (skips 2^n - 1
// waits).
const MaxFails = 6

var (
	// spinners counts the waiters spinning now, in this OS process.
	spinners atomic.Int32
	// conversations counts the waiters whose wait is a conversation with
	// another node (eligible waits, spinning or not): more than one means
	// concurrent calls or servers, whose answers share writes.
	conversations atomic.Int32
	// handoffs counts the deliveries to a spinning waiter (Handed).
	handoffs atomic.Uint64
)

// Waiter is one waiting goroutine's spin: its backoff and whether it
// spins now. Its owner (the goroutine that waits) calls Spin and End; a
// deliverer calls Spinning and Handed. The zero Waiter is ready.
type Waiter struct {
	// Fails is the spins in a row that found nothing; owner only.
	Fails uint8
	// Skip is the eligible waits to skip before the next spin; owner only.
	Skip     uint8
	counted  bool // in conversations
	spinning atomic.Bool
}

// Spin waits, for an eligible wait, up to Budget (MaxLooks looks) for
// ready to report true; ready is called without locks held, from the
// owner's goroutine. It reports whether it spun: false when the wait is
// skipped (backoff), too many waiters spin already or spinning is not
// supported here. The wait counts as a conversation (Conversations) from
// the first Spin until End.
func (w *Waiter) Spin(ready func() bool) bool {
	if !Supported {
		return false
	}
	if !w.counted {
		w.counted = true
		conversations.Add(1)
	}
	if w.Skip > 0 {
		w.Skip--
		return false
	}
	if spinners.Add(1) > int32(max(1, runtime.GOMAXPROCS(0)/2)) {
		spinners.Add(-1)
		return false
	}
	defer spinners.Add(-1)
	w.spinning.Store(true)
	defer w.spinning.Store(false)
	start := time.Now()
	for i := 1; ; i++ {
		if i%8 == 0 {
			runtime.Gosched()
		} else {
			Yield()
		}
		if ready() {
			w.Fails = 0
			return true
		}
		if i == MaxLooks || time.Since(start) > Budget {
			w.Fails = min(w.Fails+1, MaxFails)
			w.Skip = 1<<w.Fails - 1
			return true
		}
	}
}

// Begin counts the owner as in a conversation (Conversations) until End,
// without spinning: a server busy with a request from another node whose
// next request may follow (rpc's idle call process handed a call), so that
// concurrent servers are seen as such even when none of them spins.
func (w *Waiter) Begin() {
	if !w.counted {
		w.counted = true
		conversations.Add(1)
	}
}

// End ends the wait's count in Conversations; the owner calls it when the
// wait is over.
func (w *Waiter) End() {
	if w.counted {
		w.counted = false
		conversations.Add(-1)
	}
}

// Spinning reports whether w's owner spins now.
func (w *Waiter) Spinning() bool { return w.spinning.Load() }

// Handed is called by a deliverer just before it hands w what it waits
// for (after, w's owner may be gone with w): if w spins, the delivery is
// counted in Handoffs, so that the connection's reader that delivers it
// can yield its vCPU to the spinner (the module root's
// dist.yieldToSpinner).
func (w *Waiter) Handed() {
	if w.spinning.Load() {
		handoffs.Add(1)
	}
}

// Spinners returns the number of waiters spinning now.
func Spinners() int32 { return spinners.Load() }

// Conversations returns the number of waits that are conversations with
// another node now (spinning or not).
func Conversations() int32 { return conversations.Load() }

// Handoffs returns the number of deliveries to a spinning waiter so far: a
// reader that sees it change across its delivery of a frame handed the
// frame to a spinner.
func Handoffs() uint64 { return handoffs.Load() }
