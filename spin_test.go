package nodal

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal/internal/spin"
	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// TestSpinEligibilityAndBackoff checks when a wait spins (spin.go): only in
// a conversation with another node, and less after spins that found
// nothing.
func TestSpinEligibilityAndBackoff(t *testing.T) {
	if !spin.Supported {
		t.Skip("no spin on this OS")
	}
	n, err := Start(context.Background(), Config{})
	require.NoError(t, err)
	defer func() { require.NoError(t, n.Stop(context.Background())) }()
	p := n.newBare()
	defer n.terminate(p, ReasonNormal)

	require.False(t, p.spin(), "a local wait does not spin")
	p.markNetIn()
	require.False(t, p.spin(), "a message from the network alone (a stream) does not make a wait spin")

	p.markNetIn()
	p.sentOut = true
	require.True(t, p.spin(), "a server that answered a remote message spins")
	require.Equal(t, uint8(1), p.spinW.Fails)
	require.Equal(t, uint8(1), p.spinW.Skip)

	p.spinCall = true // a remote call's wait
	require.False(t, p.spin(), "the wait after a spin that found nothing skips")
	require.True(t, p.spin())
	require.Equal(t, uint8(2), p.spinW.Fails)
	require.Equal(t, uint8(3), p.spinW.Skip, "the next failure skips 3")
	for range 3 {
		require.False(t, p.spin())
	}

	require.True(t, p.deliver("reply"))
	require.True(t, p.spin(), "a message in the mailbox ends the spin")
	require.Zero(t, p.spinW.Fails, "a spin that found its message resets the backoff")
	m, err := p.Receive(context.Background())
	require.NoError(t, err)
	require.Equal(t, "reply", m)

	for range spin.MaxFails + 2 {
		p.spinW.Skip = 0
		require.True(t, p.spin())
	}
	require.Equal(t, uint8(spin.MaxFails), p.spinW.Fails)
	require.Equal(t, uint8(1<<spin.MaxFails-1), p.spinW.Skip, "the backoff is capped")
}

// TestNetWaitersCountsConversations checks the count that lets a reader
// yield to a spinner (dist.yieldToSpinner, spin.Conversations) only for the one conversation
// of the OS process: a wait that may spin is counted until it ends, and a
// local wait is not.
func TestNetWaitersCountsConversations(t *testing.T) {
	if !spin.Supported {
		t.Skip("no spin on this OS")
	}
	n, err := Start(context.Background(), Config{})
	require.NoError(t, err)
	defer func() { require.NoError(t, n.Stop(context.Background())) }()
	base := spin.Conversations()

	p := n.newBare()
	defer n.terminate(p, ReasonNormal)
	require.True(t, p.deliver("local"))
	_, err = p.Receive(context.Background())
	require.NoError(t, err)
	require.Equal(t, base, spin.Conversations(), "a local wait is not a conversation")

	// A remote call's wait: counted while it waits, not after.
	p.spinCall = true
	got := make(chan any, 1)
	go func() {
		m, _ := p.ReceiveMatch(context.Background(), nil)
		got <- m
	}()
	p2ptest.Eventually(t, 10*time.Second, func() bool { return spin.Conversations() == base+1 },
		"a remote call's wait counts")
	require.True(t, p.deliver("reply"))
	require.Equal(t, "reply", <-got)
	require.Equal(t, base, spin.Conversations(), "the count ends with the wait")

	// Two processes in a conversation at once are two.
	q := n.newBare()
	defer n.terminate(q, ReasonNormal)
	p.spinCall, q.spinCall = true, true
	p.spin()
	q.spin()
	require.Equal(t, base+2, spin.Conversations())
	p.endNetWait()
	q.endNetWait()
	require.Equal(t, base, spin.Conversations())
}

// TestServerWaitCountsOnlyWhileSpinning: a process that answered another
// node spins for its next message as a server, and counts as a
// conversation only while it spins: once parked it no longer keeps the
// reader from yielding to another waiter that is the OS process's one
// conversation (dist.yieldToSpinner).
func TestServerWaitCountsOnlyWhileSpinning(t *testing.T) {
	if !spin.Supported {
		t.Skip("no spin on this OS")
	}
	n, err := Start(context.Background(), Config{})
	require.NoError(t, err)
	defer func() { require.NoError(t, n.Stop(context.Background())) }()
	base := spin.Conversations()

	p := n.newBare()
	defer n.terminate(p, ReasonNormal)
	p.netIn.Store(true) // it took a message from the network
	p.sentOut = true    // and answered
	got := make(chan any, 1)
	go func() {
		m, _ := p.ReceiveMatch(context.Background(), nil)
		got <- m
	}()
	p2ptest.Eventually(t, 10*time.Second, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.parked
	}, "the server's wait parks after its spin")
	require.Equal(t, base, spin.Conversations(), "a parked server's wait is not a conversation")
	require.True(t, p.deliver("next"))
	require.Equal(t, "next", <-got)
	require.Equal(t, uint8(1), p.spinW.Fails, "it spun (in vain) before it parked")
	require.Equal(t, base, spin.Conversations())
}
