package replica

import (
	"fmt"
	"testing"

	"github.com/nodal-go/nodal/crdt"
)

// A push is encoded into a buffer sized by the last push's bytes per
// entry: a batch like the previous one allocates its frame once, instead
// of growing it from a few bytes.
func TestPushBufferSized(t *testing.T) {
	m := crdt.NewORMap(crdt.ReplicaID{Name: "a@h", Epoch: 1}, crdt.StringCodec{}, crdt.StringCodec{})
	batch := func(round int) *crdt.ORMap[string, string] {
		var acc *crdt.ORMap[string, string]
		for i := range 1000 {
			acc, _ = m.AddInto(acc, fmt.Sprintf("name-%d-%06d", round, i), "a@h/1")
		}
		return acc
	}
	var r Replica[string, string]
	r.encodePush(batch(0), 1000)
	d := batch(1)
	var b []byte
	ample := testing.AllocsPerRun(5, func() { b = encodeDelta(d, 1<<20) })
	if n := testing.AllocsPerRun(5, func() { b = r.encodePush(d, 1000) }); n != ample {
		t.Fatalf("a push like the last one allocates %v times, %v in a buffer large enough", n, ample)
	}
	if len(b) < cap(b)*9/10 {
		t.Fatalf("a push of %d bytes in a buffer of %d", len(b), cap(b))
	}
}
