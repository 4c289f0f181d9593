package crdt

import "testing"

// A log emptied by reset, as a recycled delta's is, records the next
// batch's events in the array it kept: a batch like the previous one
// allocates nothing, and the previous batch's origin is forgotten.
func TestLogResetKeepsArray(t *testing.T) {
	a, b := ReplicaID{Name: "a", Epoch: 1}, ReplicaID{Name: "b", Epoch: 1}
	var l eventLog
	next := uint64(1)
	batch := func(r ReplicaID) {
		for range 300 {
			l.record(Dot{r, next}, nil, noLimit)
			next++
		}
		l.reset()
	}
	batch(a)
	if l.mentions(a) || l.len(a) != 0 {
		t.Fatal("a reset log still holds an origin")
	}
	if n := testing.AllocsPerRun(20, func() { batch(b) }); n != 0 {
		t.Fatalf("a batch recorded after reset allocates %v times", n)
	}
}
