package nodal

import (
	"sync"
	"testing"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
)

// On a local-only node a pid of another node is on an unreachable node:
// links give an exit signal noconnection, monitors Down{noconnection} at
// once, messages are dropped.
func TestForeignPidOnLocalNodeIsNoConnection(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	w := probe(t, n)
	foreign := Pid{Node: "b@elsewhere", ID: 5, Incarnation: 9}
	w.Send(foreign, "dropped")
	ref := w.Monitor(foreign)
	require.Equal(t, Down{Ref: ref, Pid: foreign, Reason: ReasonNoConnection}, recv(t, w))
	w.TrapExit(true)
	w.Link(foreign)
	require.Equal(t, Exit{From: foreign, Reason: ReasonNoConnection}, recv(t, w))
	require.Equal(t, 0, queueLen(t, w))
}

type fakeRemote struct {
	mu  sync.Mutex
	got []signal
}

func (f *fakeRemote) route(s signal) error {
	f.mu.Lock()
	f.got = append(f.got, s)
	f.mu.Unlock()
	return nil
}

// Every interaction with a pid of another node goes through the routing
// point to n.remote, and signals injected with deliverLocal act like local
// ones (issue 5 plugs in here).
func TestRoutingPointHandsForeignPidsToRemote(t *testing.T) {
	defer leaktest.AfterTest(t)()
	n := startNode(t)
	defer stopNode(t, n)
	fr := &fakeRemote{}
	n.remote = fr
	w := probe(t, n)
	foreign := Pid{Node: "b@elsewhere", ID: 5, Incarnation: 9}
	w.Send(foreign, "hello")
	w.Link(foreign)
	ref := w.Monitor(foreign)
	w.SendExit(foreign, ReasonShutdown)
	kinds := []signalKind{}
	for _, s := range fr.got {
		require.Equal(t, w.Self(), s.from)
		require.Equal(t, foreign, s.to)
		kinds = append(kinds, s.kind)
	}
	require.Equal(t, []signalKind{sigMessage, sigLink, sigMonitor, sigExit}, kinds)
	require.Equal(t, "hello", fr.got[0].msg)
	require.Equal(t, ref, fr.got[2].ref)

	// The remote side answers: a message, then the monitored process's Down.
	n.deliverLocal(signal{kind: sigMessage, from: foreign, to: w.Self(), msg: "hi back"})
	n.deliverLocal(signal{kind: sigDown, from: foreign, to: w.Self(), ref: ref, reason: ReasonKilled})
	require.Equal(t, "hi back", recv(t, w))
	require.Equal(t, Down{Ref: ref, Pid: foreign, Reason: ReasonKilled}, recv(t, w))

	// An incoming link to a dead local pid answers noproc through remote.
	dead := Pid{Node: n.Name(), ID: 1 << 50, Incarnation: n.Incarnation()}
	fr.got = nil
	n.deliverLocal(signal{kind: sigLink, from: foreign, to: dead})
	require.Len(t, fr.got, 1)
	require.Equal(t, signal{kind: sigLinkExit, from: dead, to: foreign, reason: ReasonNoProc}, fr.got[0])

	// A link exit from the remote end kills the local non-trapping process.
	n.deliverLocal(signal{kind: sigLinkExit, from: foreign, to: w.Self(), reason: ReasonNoConnection})
	require.False(t, alive(n, w.Self()))
	require.Equal(t, "link-exit", sigLinkExit.String())
}
