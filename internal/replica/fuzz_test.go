package replica

import (
	"testing"

	"github.com/nodal-go/nodal/crdt"
)

func FuzzDecodeFrame(f *testing.F) {
	m := crdt.NewORMap(crdt.ReplicaID{Name: "a@h", Epoch: 1}, crdt.StringCodec{}, crdt.StringCodec{})
	d := m.Add("k", "v")
	f.Add(encodeDelta(d, 0))
	f.Add(encodeDigest(digestAnswer, m.Digest()))
	f.Add(encodeAsk(2, []crdt.ReplicaID{{Name: "a@h", Epoch: 1}, {Name: "b@h", Epoch: 3}}, m.Digest()))
	f.Add(encodeAnswer(3, d))
	g := m.Digest()
	f.Add(encodeSync(kindSyncReq, 4, &g))
	f.Add(encodeSync(kindSyncDigest, 5, nil))
	f.Add(encodeSyncAck(6))
	f.Add(encodeNotice([]byte("hi")))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := decodeFrame(b, crdt.StringCodec{}, crdt.StringCodec{}, nil)
		if err != nil {
			return
		}
		// What decodes re-encodes to the same bytes (canonical encodings).
		var again []byte
		switch fr.kind {
		case kindDelta:
			again = encodeDelta(fr.delta, 0)
		case kindDigest:
			again = encodeDigest(fr.flags, fr.digest)
		case kindAsk:
			again = encodeAsk(fr.id, fr.origins, fr.digest)
		case kindAnswer:
			again = encodeAnswer(fr.id, fr.delta)
		case kindSyncReq, kindSyncDigest:
			if fr.flags == withDigest {
				again = encodeSync(fr.kind, fr.id, &fr.digest)
			} else {
				again = encodeSync(fr.kind, fr.id, nil)
			}
		case kindSyncAck:
			again = encodeSyncAck(fr.id)
		case kindNotice:
			again = encodeNotice(fr.notice)
		}
		if string(again) != string(b) {
			t.Fatalf("kind %d: %x re-encodes as %x", fr.kind, b, again)
		}
	})
}

func FuzzDecodeGossip(f *testing.F) {
	m := crdt.NewORMap(crdt.ReplicaID{Name: "a@h", Epoch: 1}, crdt.StringCodec{}, crdt.StringCodec{})
	m.Add("k", "v")
	f.Add(encodeGossip(m.Digest()))
	f.Add([]byte{gossipVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := decodeGossip(b)
		if err != nil {
			return
		}
		if again := encodeGossip(g); string(again) != string(b) {
			t.Fatalf("%x re-encodes as %x", b, again)
		}
	})
}
