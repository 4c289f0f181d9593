package nodal

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/nodal-go/nodal/p2p"
)

// FuzzDistFrame feeds arbitrary frames from a peer into the distribution
// layer: it must never panic, whatever the bytes (valid frames are
// delivered, others are rejected with an error).
func FuzzDistFrame(f *testing.F) {
	cfg := DefaultLocalConfig("fuzz@127.0.0.1", testCookie)
	cfg.Stdout = &distBuffer{}
	n, err := Start(context.Background(), cfg)
	if err != nil {
		f.Fatal(err)
	}
	defer stopNodes([]*Node{n})
	d := n.dist
	peer := p2p.Peer{Name: "x@127.0.0.1", Incarnation: 7}
	sink, err := n.Spawn(func(p *Process) error { <-p.Context().Done(); return nil }, WithName("sink"))
	if err != nil {
		f.Fatal(err)
	}
	from := Pid{Node: peer.Name, ID: 3, Incarnation: 7}
	seed := func(s signal) {
		b, err := d.encodeSignal(nil, s, n.name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed(signal{kind: sigMessage, from: from, to: sink, msg: "hello"})
	seed(signal{kind: sigLink, from: from, to: sink})
	seed(signal{kind: sigMonitor, from: from, to: sink, ref: Ref{Node: peer.Name, ID: 1, Incarnation: 7}})
	seed(signal{kind: sigExit, from: from, to: sink, reason: &ShutdownError{Reason: ReasonNormal}})
	seed(signal{kind: sigReply, from: from, to: sink, ref: Ref{Node: n.name, ID: 9, Incarnation: 1}, msg: CallReply{Reply: 1}})
	seed(signal{kind: sigCall, from: from, to: sink, ref: Ref{Node: peer.Name, ID: 2, Incarnation: 7}, msg: CallRequest{Req: "req"}})
	seed(signal{kind: sigReply, from: from, to: sink, ref: Ref{Node: n.name, ID: 9, Incarnation: 1}, msg: CallReply{Reply: 1, dropped: true}})
	name := appendString(append(appendRemotePid([]byte{dMsgName}, from, peer.Name, peer.Incarnation), 0), "sink")
	f.Add(append(name, tagNil))
	f.Add(appendString(binary.AppendUvarint([]byte{dWhereisReq}, 1), "sink"))
	f.Add([]byte{dSpawnReply, 1, 0, 3, 'a', 'b', 'c'})
	f.Add([]byte{dService, 3, 'r', 'e', 'g', 1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 0 && data[0] == dSpawnReq {
			return // spawning processes per input would only measure spawn
		}
		_ = d.handleFrame(peer, data)
	})
}
