package nodal

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSpinEligibilityAndBackoff checks when a wait spins (spin.go): only in
// a conversation with another node, and less after spins that found
// nothing.
func TestSpinEligibilityAndBackoff(t *testing.T) {
	if !spinSupported {
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
	require.Equal(t, uint8(1), p.spinFails)
	require.Equal(t, uint8(1), p.spinSkip)

	p.spinCall = true // a remote call's wait
	require.False(t, p.spin(), "the wait after a spin that found nothing skips")
	require.True(t, p.spin())
	require.Equal(t, uint8(2), p.spinFails)
	require.Equal(t, uint8(3), p.spinSkip, "the next failure skips 3")
	for range 3 {
		require.False(t, p.spin())
	}

	require.True(t, p.deliver("reply"))
	require.True(t, p.spin(), "a message in the mailbox ends the spin")
	require.Zero(t, p.spinFails, "a spin that found its message resets the backoff")
	m, err := p.Receive(context.Background())
	require.NoError(t, err)
	require.Equal(t, "reply", m)

	for range spinMaxFails + 2 {
		p.spinSkip = 0
		require.True(t, p.spin())
	}
	require.Equal(t, uint8(spinMaxFails), p.spinFails)
	require.Equal(t, uint8(1<<spinMaxFails-1), p.spinSkip, "the backoff is capped")
}
