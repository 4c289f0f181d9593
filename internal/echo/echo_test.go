package echo

import (
	"bytes"
	"testing"

	"github.com/nodal-go/nodal"
)

func TestReplyRoundTrip(t *testing.T) {
	r := Reply{Text: "ping", Pid: nodal.Pid{Node: "b@127.0.0.1", ID: 300, Incarnation: 7}}
	// Through the codec, as a reply travels: it encodes itself.
	b, err := nodal.DefaultCodec.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	own, _ := r.AppendBinary(nil)
	if !bytes.HasSuffix(b, own) {
		t.Fatalf("codec encoding %x does not end with the reply's own %x", b, own)
	}
	v, err := nodal.DefaultCodec.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if v != r {
		t.Fatalf("got %#v, want %#v", v, r)
	}
	// Truncated or padded input is refused.
	var got Reply
	if err := got.UnmarshalBinary(own[:len(own)-1]); err == nil {
		t.Fatal("truncated reply decoded")
	}
	if err := got.UnmarshalBinary(append(own, 0)); err == nil {
		t.Fatal("reply with a trailing byte decoded")
	}
}

func FuzzReplyUnmarshal(f *testing.F) {
	own, _ := Reply{Text: "ping", Pid: nodal.Pid{Node: "b@127.0.0.1", ID: 5, Incarnation: 1}}.AppendBinary(nil)
	f.Add(own)
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Reply
		if err := r.UnmarshalBinary(data); err != nil {
			return
		}
		again, _ := r.AppendBinary(nil)
		var r2 Reply
		if err := r2.UnmarshalBinary(again); err != nil || r2 != r {
			t.Fatalf("re-encoded %#v decodes to %#v, %v", r, r2, err)
		}
	})
}
