package nodal

import (
	"runtime"
	"sync/atomic"
	"time"
)

// Waiting for a message from the network. A process that parks costs the
// goroutine that delivers its next message a wake-up, and on a Go runtime
// with an idle P that wake-up starts a second OS thread (the runtime's
// wakep): a futex wake, a context switch and often an idle vCPU's halt
// and resume, per message and per direction. Erlang avoids it by keeping
// its schedulers busy-waiting a little before they sleep. A process whose
// next message is likely to come from another node soon (it waits for a
// remote call's reply, or it answered a message from another node and
// waits for the next one, as a server does) looks
// at its mailbox for up to spinBudget before it parks, yielding its OS
// thread to the kernel between looks (sched_yield): the connection's
// reader, woken by the network poller on another thread, then delivers
// into a mailbox whose owner is not parked, so nobody is woken. The
// runtime yield every few looks lets the goroutines queued behind the
// spinner run.
//
// It is bounded three ways: in time (spinBudget per wait, and at most
// spinMaxLooks looks), in breadth (at most half the Ps spin at once, at
// least one), and by its outcome (a spin that ends without a message
// makes the process skip the next 1, 3, 7 ... 63 eligible waits, so a
// process whose messages come seldom soon stops spinning). An idle node
// never spins: a spin follows only a message.

// spinBudget is the longest a process spins before it parks: about the
// round trip of a call between two nodes on loopback.
const spinBudget = 40 * time.Microsecond

// spinMaxLooks bounds the looks of one spin as well, so that a spin ends
// where time does not pass while goroutines run (a testing/synctest
// bubble's clock).
const spinMaxLooks = 1024

// spinMaxFails caps the backoff after spins that found nothing (skips
// 2^n - 1 waits).
const spinMaxFails = 6

// spinners counts the processes spinning now, in this OS process.
var spinners atomic.Int32

// netWaiters counts the processes whose wait is a conversation with
// another node (spin's eligible waits, spinning or not), in this OS
// process: more than one means concurrent calls or servers, whose
// answers share writes (dist.yieldToSpinner).
var netWaiters atomic.Int32

// endNetWait ends p's count in netWaiters when its wait ends; the owner
// calls it.
func (p *Process) endNetWait() {
	if p.netWaiting {
		p.netWaiting = false
		netWaiters.Add(-1)
	}
}

// spin waits up to spinBudget for a message when p's wait is eligible
// (see above); it reports whether it spun. The owner calls it without
// p.mu, before parking.
func (p *Process) spin() bool {
	// A conversation with another node: this process answered (or sent
	// to) a node whose message it took last. A process that only takes a
	// stream of messages does not spin: its spin would take the CPU its
	// connection's reader needs.
	talk := p.netIn.Swap(false) && p.sentOut
	p.sentOut = false
	if !spinSupported || !(talk || p.spinCall) {
		return false
	}
	if !p.netWaiting {
		p.netWaiting = true
		netWaiters.Add(1)
	}
	if p.spinSkip > 0 {
		p.spinSkip--
		return false
	}
	if spinners.Add(1) > int32(max(1, runtime.GOMAXPROCS(0)/2)) {
		spinners.Add(-1)
		return false
	}
	defer spinners.Add(-1)
	p.spinning.Store(true)
	defer p.spinning.Store(false)
	start := time.Now()
	for i := 1; ; i++ {
		if i%8 == 0 {
			runtime.Gosched()
		} else {
			osYield()
		}
		p.mu.Lock()
		got := p.nin > 0 || p.dead
		p.mu.Unlock()
		if got {
			p.spinFails = 0
			return true
		}
		if i == spinMaxLooks || time.Since(start) > spinBudget {
			p.spinFails = min(p.spinFails+1, spinMaxFails)
			p.spinSkip = 1<<p.spinFails - 1
			return true
		}
	}
}

// markNetIn notes that a message from another node is being delivered to
// p: its next wait may spin.
func (p *Process) markNetIn() {
	if !p.netIn.Load() {
		p.netIn.Store(true)
	}
}
