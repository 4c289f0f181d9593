package nodal

import (
	"testing"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
)

// Erlang: register/2, whereis/1, registered/0; a name is held by one
// process, a process holds one name, and the name is freed when it exits.
func TestRegisterWhereisRegistered(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	require.NoError(t, w.Register("zeta"))
	a, err := n.Spawn(blockForever, WithName("alpha"))
	require.NoError(t, err)
	got, ok := n.Whereis("alpha")
	require.True(t, ok)
	require.Equal(t, a, got)
	require.Equal(t, []string{"alpha", "zeta"}, n.Registered())

	require.ErrorIs(t, w.Register("alpha"), ErrNameTaken)
	require.ErrorIs(t, w.Register("other"), ErrAlreadyRegistered, "one name per process")
	_, err = n.Spawn(blockForever, WithName("alpha"))
	require.ErrorIs(t, err, ErrNameTaken)
	require.ErrorIs(t, w.Register(""), ErrBadName)

	info, err := n.ProcessInfo(a)
	require.NoError(t, err)
	require.Equal(t, "alpha", info.RegisteredName)

	ref := w.Monitor(a)
	n.Exit(a, ReasonKill)
	waitDown(t, w, ref)
	_, ok = n.Whereis("alpha")
	require.False(t, ok, "the name is freed at exit")
	b, err := n.Spawn(blockForever, WithName("alpha"))
	require.NoError(t, err)
	got, _ = n.Whereis("alpha")
	require.Equal(t, b, got)

	require.NoError(t, w.Unregister())
	require.ErrorIs(t, w.Unregister(), ErrNotRegistered)
	require.Equal(t, []string{"alpha"}, n.Registered())
	require.NoError(t, w.Register("again"))
}

// Erlang: sending to an unregistered name is an error (badarg), unlike
// sending to a dead pid.
func TestSendNameUnregisteredIsError(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	require.ErrorIs(t, n.SendName("nobody", "x"), ErrNotRegistered)
	require.ErrorIs(t, w.SendName("nobody", "x"), ErrNotRegistered)
	require.NoError(t, w.Register("me"))
	require.NoError(t, n.SendName("me", "hi"))
	require.Equal(t, "hi", recv(t, w))
}
