package spin

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSpinBackoff checks a Waiter's bounds by outcome: a spin that finds
// nothing makes the next 1, 3, 7 ... waits skip, capped, and a spin that
// finds what it waits for resets the backoff.
func TestSpinBackoff(t *testing.T) {
	if !Supported {
		t.Skip("no spin on this OS")
	}
	var w Waiter
	defer w.End()
	never := func() bool { return false }
	start := time.Now()
	require.True(t, w.Spin(never), "an eligible wait spins")
	require.Less(t, time.Since(start), time.Second, "a fruitless spin ends (Budget, MaxLooks)")
	require.Equal(t, uint8(1), w.Fails)
	require.Equal(t, uint8(1), w.Skip)
	require.False(t, w.Spin(never), "the wait after a fruitless spin skips")
	require.True(t, w.Spin(never))
	require.Equal(t, uint8(3), w.Skip, "the next failure skips 3")
	for range 3 {
		require.False(t, w.Spin(never))
	}
	// What comes during the spin ends it: here on the third look, not
	// from another goroutine, which a loaded host may not run within the
	// spin's budget. A loaded host may also let the whole budget pass in
	// one yield, and the spin then rightly ends at that look: such an
	// attempt is tried again from the same backoff, within a deadline.
	fails, skip := w.Fails, w.Skip
	looks := 0
	for deadline := time.Now().Add(20 * time.Second); ; {
		looks = 0
		w.Fails, w.Skip = fails, skip
		require.True(t, w.Spin(func() bool { looks++; return looks == 3 }), "what comes during the spin ends it")
		if looks == 3 || time.Now().After(deadline) {
			break
		}
	}
	require.Equal(t, 3, looks, "the spin ends at the look that finds it")
	require.Zero(t, w.Fails, "a spin that found its message resets the backoff")
	require.Zero(t, w.Skip)
	for range MaxFails + 2 {
		w.Skip = 0
		require.True(t, w.Spin(never))
	}
	require.Equal(t, uint8(MaxFails), w.Fails)
	require.Equal(t, uint8(1<<MaxFails-1), w.Skip, "the backoff is capped")
}

// TestSpinBreadthAndHandoff checks the bound in breadth (at most half the
// Ps spin at once, at least one), the count of conversations (from the
// first Spin until End, spinning or not) and that a delivery to a spinner,
// and only to a spinner, is counted as a hand-off.
func TestSpinBreadthAndHandoff(t *testing.T) {
	if !Supported {
		t.Skip("no spin on this OS")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	base := Conversations()

	var first, second Waiter
	held, release := make(chan struct{}), make(chan struct{})
	spun := make(chan bool)
	go func() {
		once := false
		spun <- first.Spin(func() bool {
			if !once {
				once = true
				close(held) // first spins now, holding the one spinner slot of 2 Ps
				<-release
			}
			return true
		})
	}()
	<-held
	require.Equal(t, int32(1), Spinners())
	require.True(t, first.Spinning())
	require.False(t, second.Spin(func() bool { return true }), "a second spinner of 2 Ps parks at once")
	require.Equal(t, base+2, Conversations(), "both waits are conversations, spinning or not")
	require.False(t, second.Spinning())

	h := Handoffs()
	second.Handed()
	require.Equal(t, h, Handoffs(), "a delivery to a waiter that does not spin is no hand-off")
	first.Handed()
	require.Equal(t, h+1, Handoffs(), "a delivery to a spinner is a hand-off")

	close(release)
	require.True(t, <-spun)
	require.False(t, first.Spinning())
	require.Zero(t, Spinners())
	first.End()
	second.End()
	second.End() // once only
	require.Equal(t, base, Conversations(), "End ends the count")
}

// TestBeginCountsWithoutSpinning: Begin counts a conversation until End,
// once however often it is called, and a Spin after it does not count it
// again.
func TestBeginCountsWithoutSpinning(t *testing.T) {
	base := Conversations()
	var w Waiter
	w.Begin()
	w.Begin()
	require.Equal(t, base+1, Conversations())
	if Supported {
		w.Spin(func() bool { return true })
		require.Equal(t, base+1, Conversations(), "a spin of a counted wait counts it once")
	}
	w.End()
	require.Equal(t, base, Conversations())
	w.End()
	require.Equal(t, base, Conversations())
}
