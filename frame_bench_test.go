package nodal

import (
	"context"
	"testing"

	"github.com/nodal-go/nodal/p2p"
)

// The hot pieces of the frame path, one at a time, with their allocations:
// encoding a 32-byte message, decoding and delivering a burst of them as the
// p2p reader hands it over (dist.Frames), and the mailbox's batched push.
// `nodal bench remote` measures them together across two OS processes.

// frameBenchPeer is the node the frames of these benchmarks come from.
var frameBenchPeer = p2p.Peer{Name: "peer@127.0.0.1", Incarnation: 7}

// BenchmarkFrameEncode32 encodes one remote message with a 32-byte payload
// into a reused buffer, as dist.route does before queueing it.
func BenchmarkFrameEncode32(b *testing.B) {
	n := benchNode(b)
	defer benchStop(b, n)
	d := newDist(n, DefaultCodec)
	to := Pid{Node: frameBenchPeer.Name, ID: 1234, Incarnation: frameBenchPeer.Incarnation}
	s := signal{kind: sigMessage, from: Pid{Node: n.name, ID: 99, Incarnation: n.incarnation}, to: to, msg: any(make([]byte, 32))}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = d.encodeSignal(buf[:0], s, frameBenchPeer.Name); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFramesDeliver32 decodes bursts of 256 frames, each a message
// with a 32-byte payload for one local process, and delivers them
// (dist.Frames); a process drains its mailbox meanwhile. One op is one
// message.
func BenchmarkFramesDeliver32(b *testing.B) {
	n := benchNode(b)
	defer benchStop(b, n)
	d := newDist(n, DefaultCodec)
	d.hostSet.Store(true)
	d.backlog = -1
	total := b.N
	done := make(chan struct{})
	sink, err := n.Spawn(func(p *Process) error {
		for range total {
			if _, err := p.Receive(context.Background()); err != nil {
				return err
			}
		}
		close(done)
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	// The frames as the peer encodes them: this node's pids carry no name.
	peer := newDist(n, DefaultCodec)
	s := signal{kind: sigMessage, from: Pid{Node: frameBenchPeer.Name, ID: 99, Incarnation: frameBenchPeer.Incarnation}, to: sink, msg: any(make([]byte, 32))}
	one, err := peer.encodeSignal(nil, s, n.name)
	if err != nil {
		b.Fatal(err)
	}
	// encodeSignal named the sender's node: the peer would have left it
	// implied; rebuild the frame as it arrives.
	one = append([]byte{dMsg}, appendRemotePid(nil, s.from, frameBenchPeer.Name, frameBenchPeer.Incarnation)...)
	one = appendRemotePid(one, sink, n.name, n.incarnation)
	if one, err = DefaultCodec.AppendValue(one, make([]byte, 32)); err != nil {
		b.Fatal(err)
	}
	batch := make([][]byte, 256)
	for i := range batch {
		batch[i] = one
	}
	b.ReportAllocs()
	b.ResetTimer()
	for left := total; left > 0; left -= len(batch) {
		d.Frames(frameBenchPeer, batch[:min(left, len(batch))])
	}
	<-done
	if e := d.decodeErrors.Load(); e != 0 {
		b.Fatalf("%d frames not decoded", e)
	}
}

// BenchmarkMailboxDeliverMany pushes runs of 64 messages into a mailbox
// under one lock (Process.deliverMany) while its process drains it. One op
// is one message.
func BenchmarkMailboxDeliverMany(b *testing.B) {
	n := benchNode(b)
	defer benchStop(b, n)
	total := b.N
	done := make(chan struct{})
	pid, err := n.Spawn(func(p *Process) error {
		for range total {
			if _, err := p.Receive(context.Background()); err != nil {
				return err
			}
		}
		close(done)
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	p := n.procs.get(pid.ID)
	run := make([]any, 64)
	for i := range run {
		run[i] = i
	}
	b.ReportAllocs()
	b.ResetTimer()
	for left := total; left > 0; left -= len(run) {
		p.deliverMany(run[:min(left, len(run))])
	}
	<-done
}

// BenchmarkDecodeLocalMsg32 decodes one message frame with a 32-byte
// payload on the fast path of dist.Frames (decodeLocalMsg), without
// delivering it.
func BenchmarkDecodeLocalMsg32(b *testing.B) {
	n := benchNode(b)
	defer benchStop(b, n)
	d := newDist(n, DefaultCodec)
	from := Pid{Node: frameBenchPeer.Name, ID: 99, Incarnation: frameBenchPeer.Incarnation}
	to := Pid{Node: n.name, ID: 1234, Incarnation: n.incarnation}
	f := append([]byte{dMsg}, appendRemotePid(nil, from, frameBenchPeer.Name, frameBenchPeer.Incarnation)...)
	f = appendRemotePid(f, to, n.name, n.incarnation)
	f, err := DefaultCodec.AppendValue(f, make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	var box []byte
	var head msgHead // the head of the frame before it, as in a stream
	b.ReportAllocs()
	for b.Loop() {
		id, _, ok, err := d.decodeLocalMsg(f, &box, &head)
		if !ok || err != nil || id != to.ID {
			b.Fatal("not decoded on the fast path", ok, err)
		}
	}
}
