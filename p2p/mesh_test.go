package p2p

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"
)

// A mesh dialer ends and leaves meshDial in one step (meshDialDone), so
// that an ensureMesh that finds no dialer listed may start one, and one
// that finds it listed can count on it to look again: it goes only when
// its member is gone or connected to its current start.
func TestMeshDialDone(t *testing.T) {
	const name = "b@127.0.0.1"
	h := &Host{conns: map[string]*conn{}, meshDial: map[string]bool{}}
	h.members.init()
	view := func(recs ...*memberRec) {
		v := map[string]*memberRec{}
		for _, r := range recs {
			v[r.Name] = r
		}
		h.members.view.Store(&v)
	}
	rec := &memberRec{Member: Member{Name: name, ID: peer.ID("now")}}
	view(rec)
	h.meshDial[name] = true

	m, done := h.meshDialDone(name)
	require.False(t, done, "a member with no connection: dial it")
	require.Same(t, rec, m)
	require.True(t, h.meshDial[name])

	h.conns[name] = &conn{peer: Peer{Name: name, ID: peer.ID("earlier")}}
	m, done = h.meshDialDone(name)
	require.False(t, done, "connected to an earlier start: wait for that connection to go")
	require.Nil(t, m)
	require.True(t, h.meshDial[name])

	h.conns[name] = &conn{peer: Peer{Name: name, ID: peer.ID("now")}}
	_, done = h.meshDialDone(name)
	require.True(t, done, "connected to its current start")
	require.False(t, h.meshDial[name], "the dialer leaves meshDial as it ends")

	h.meshDial[name] = true
	delete(h.conns, name)
	view()
	_, done = h.meshDialDone(name)
	require.True(t, done, "no longer a member")
	require.False(t, h.meshDial[name], "the dialer leaves meshDial as it ends")
}
