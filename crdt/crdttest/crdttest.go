package crdttest

import (
	"bytes"
	"fmt"
	"math"
	"testing"

	"github.com/nodal-go/nodal/crdt"
	"pgregory.net/rapid"
)

// Unbounded is the log limit that keeps every event.
const Unbounded = math.MaxInt

// Gen tells the law suite how to make and mutate values of a type T.
type Gen[T crdt.Causal[T]] struct {
	// New returns an empty state replicated by r whose event log keeps at
	// most logLimit events per origin (Unbounded for all, 0 for none).
	New func(r crdt.ReplicaID, logLimit int) T
	// Mutate draws one mutation with t (any mutator of T, with arguments
	// drawn from a small domain so that histories collide), applies it to x
	// and returns the delta it returned.
	Mutate func(t *rapid.T, x T) T
	// Decode decodes the output of MarshalBinary. If nil, the encoding law
	// is skipped.
	Decode func(b []byte) (T, error)
}

// CheckLaws runs every law of the suite on T, each as a subtest driven by
// rapid (failures print a reproducible seed):
//
//   - join-laws: join is commutative, associative and idempotent, on states
//     and on deltas;
//   - delta-mutator: X ⊔ mδ(X) = m(X) for every mutation, and the delta is
//     already included in m(X);
//   - delta-vs-full: delivering every delta, in any order and with
//     duplicates, equals joining the full states;
//   - sync-exact: with complete logs, joining DeltaFor(peer digest) into the
//     peer equals joining the whole state;
//   - convergence: 2–5 replicas (with restarts under new epochs) and a
//     network that drops, duplicates and reorders deltas, mixed with digest
//     anti-entropy and full-state joins, under small or no event logs, reach
//     equal states equal to the join of all states after a final
//     anti-entropy; at every step no removed dot is ever live again on the
//     replica that removed it;
//   - purge: after every survivor purges a gone replica and syncs, nothing of
//     it remains anywhere and the survivors are equal;
//   - encoding: states, deltas and digests round-trip through their canonical
//     encodings byte for byte.
func CheckLaws[T crdt.Causal[T]](t *testing.T, g Gen[T]) {
	for _, l := range Laws(g) {
		t.Run(l.Name, func(t *testing.T) { rapid.Check(t, l.Check) })
	}
}

// Law is one property of the suite, runnable with rapid.Check on any
// rapid.TB.
type Law struct {
	Name  string
	Check func(t *rapid.T)
}

// Laws returns the suite's properties for T, in the order CheckLaws runs
// them (the encoding law only when g.Decode is set).
func Laws[T crdt.Causal[T]](g Gen[T]) []Law {
	laws := []Law{
		{"join-laws", func(t *rapid.T) { checkJoinLaws(t, g) }},
		{"delta-mutator", func(t *rapid.T) { checkDeltaMutator(t, g) }},
		{"delta-vs-full", func(t *rapid.T) { checkDeltaVsFull(t, g) }},
		{"sync-exact", func(t *rapid.T) { checkSyncExact(t, g) }},
		{"convergence", func(t *rapid.T) { checkConvergence(t, g) }},
		{"purge", func(t *rapid.T) { checkPurge(t, g) }},
	}
	if g.Decode != nil {
		laws = append(laws, Law{"encoding", func(t *rapid.T) { checkEncoding(t, g) }})
	}
	return laws
}

// Replica returns the identity the suite gives replica i at epoch e.
func Replica(i int, epoch uint64) crdt.ReplicaID {
	return crdt.ReplicaID{Name: fmt.Sprintf("r%d", i), Epoch: epoch}
}

func join[T crdt.Causal[T]](a, b T) T {
	c := a.Clone()
	c.Merge(b)
	return c
}

func requireEqual[T crdt.Causal[T]](t *rapid.T, what string, a, b T) {
	t.Helper()
	if !a.Equal(b) {
		t.Fatalf("%s: states differ\n a = %s\n b = %s", what, a, b)
	}
}

// world is a set of replicas with their recorded deltas.
type world[T crdt.Causal[T]] struct {
	g      Gen[T]
	reps   []T
	deltas []T
}

func newWorld[T crdt.Causal[T]](g Gen[T], n, logLimit int) *world[T] {
	w := &world[T]{g: g}
	for i := range n {
		w.reps = append(w.reps, g.New(Replica(i, 1), logLimit))
	}
	return w
}

// history runs random mutations and deliveries on w.
func (w *world[T]) history(t *rapid.T, steps int) {
	for range steps {
		i := rapid.IntRange(0, len(w.reps)-1).Draw(t, "replica")
		if len(w.deltas) > 0 && rapid.IntRange(0, 2).Draw(t, "kind") == 0 {
			d := w.deltas[rapid.IntRange(0, len(w.deltas)-1).Draw(t, "delta")]
			w.reps[i].Merge(d)
			continue
		}
		w.deltas = append(w.deltas, w.g.Mutate(t, w.reps[i]))
	}
}

func checkJoinLaws[T crdt.Causal[T]](t *rapid.T, g Gen[T]) {
	w := newWorld(g, 3, Unbounded)
	w.history(t, rapid.IntRange(0, 30).Draw(t, "steps"))
	pick := func(name string) T {
		if len(w.deltas) > 0 && rapid.Bool().Draw(t, name+"-is-delta") {
			return w.deltas[rapid.IntRange(0, len(w.deltas)-1).Draw(t, name+"-delta")]
		}
		return w.reps[rapid.IntRange(0, 2).Draw(t, name+"-replica")]
	}
	a, b, c := pick("a"), pick("b"), pick("c")
	requireEqual(t, "commutative", join(a, b), join(b, a))
	requireEqual(t, "associative", join(join(a, b), c), join(a, join(b, c)))
	requireEqual(t, "idempotent", join(a, a), a)
	requireEqual(t, "absorbing", join(join(a, b), b), join(a, b))
}

func checkDeltaMutator[T crdt.Causal[T]](t *rapid.T, g Gen[T]) {
	w := newWorld(g, 3, Unbounded)
	w.history(t, rapid.IntRange(0, 30).Draw(t, "steps"))
	x := w.reps[rapid.IntRange(0, 2).Draw(t, "replica")]
	before := x.Clone()
	d := g.Mutate(t, x) // x is now m(X)
	requireEqual(t, "X ⊔ mδ(X) = m(X)", join(before, d), x)
	requireEqual(t, "mδ(X) ⊑ m(X)", join(x, d), x)
}

func checkDeltaVsFull[T crdt.Causal[T]](t *rapid.T, g Gen[T]) {
	n := rapid.IntRange(2, 4).Draw(t, "replicas")
	w := newWorld(g, n, Unbounded)
	w.history(t, rapid.IntRange(1, 40).Draw(t, "steps"))
	full := g.New(Replica(99, 1), Unbounded)
	for _, r := range w.reps {
		full.Merge(r)
	}
	viaDeltas := g.New(Replica(98, 1), Unbounded)
	order := rapid.Permutation(w.deltas).Draw(t, "order")
	for _, d := range order {
		viaDeltas.Merge(d)
		if rapid.IntRange(0, 3).Draw(t, "dup") == 0 {
			viaDeltas.Merge(d)
		}
	}
	requireEqual(t, "deltas vs full states", viaDeltas, full)
}

func checkSyncExact[T crdt.Causal[T]](t *rapid.T, g Gen[T]) {
	w := newWorld(g, 3, Unbounded)
	w.history(t, rapid.IntRange(0, 40).Draw(t, "steps"))
	i := rapid.IntRange(0, 2).Draw(t, "from")
	j := rapid.IntRange(0, 2).Draw(t, "to")
	src, dst := w.reps[i], w.reps[j]
	want := join(dst, src)
	got := dst.Clone()
	got.Merge(src.DeltaFor(dst.Digest()))
	requireEqual(t, "peer ⊔ DeltaFor(digest(peer)) = peer ⊔ state", got, want)
	// and a second exchange brings nothing new
	requireEqual(t, "second exchange", join(got, src.DeltaFor(got.Digest())), got)
}

type message[T any] struct {
	to int
	d  T
}

// tracker checks that a dot removed on a replica is never live there again.
type tracker struct {
	seen map[crdt.Dot]bool // true while live, false once removed
}

func (k *tracker) check(t *rapid.T, who int, live []crdt.Dot, ctx *crdt.Context) {
	t.Helper()
	now := make(map[crdt.Dot]bool, len(live))
	for _, d := range live {
		now[d] = true
		if was, ok := k.seen[d]; ok && !was {
			t.Fatalf("replica %d: removed dot %v is live again", who, d)
		}
		k.seen[d] = true
	}
	for d, was := range k.seen {
		if was && !now[d] {
			if !ctx.Contains(d) {
				t.Fatalf("replica %d: dot %v vanished from the context", who, d)
			}
			k.seen[d] = false
		}
	}
}

func checkConvergence[T crdt.Causal[T]](t *rapid.T, g Gen[T]) {
	n := rapid.IntRange(2, 5).Draw(t, "replicas")
	limit := rapid.SampledFrom([]int{0, 1, 3, 8, Unbounded}).Draw(t, "log-limit")
	epochs := make([]uint64, n)
	reps := make([]T, n)
	tracks := make([]*tracker, n)
	for i := range n {
		epochs[i] = 1
		reps[i] = g.New(Replica(i, 1), limit)
		tracks[i] = &tracker{seen: map[crdt.Dot]bool{}}
	}
	var net []message[T]
	merge := func(i int, d T) {
		reps[i].Merge(d)
		tracks[i].check(t, i, reps[i].LiveDots(), reps[i].Context())
	}
	steps := rapid.IntRange(1, 80).Draw(t, "steps")
	for range steps {
		switch rapid.IntRange(0, 9).Draw(t, "action") {
		case 0, 1, 2, 3: // local mutation, broadcast its delta
			i := rapid.IntRange(0, n-1).Draw(t, "at")
			d := g.Mutate(t, reps[i])
			tracks[i].check(t, i, reps[i].LiveDots(), reps[i].Context())
			for j := range n {
				if j != i {
					net = append(net, message[T]{j, d})
				}
			}
		case 4, 5: // deliver any message (reorder), sometimes keep it (duplicate)
			if len(net) == 0 {
				continue
			}
			k := rapid.IntRange(0, len(net)-1).Draw(t, "msg")
			m := net[k]
			if !rapid.Bool().Draw(t, "duplicate") {
				net = append(net[:k], net[k+1:]...)
			}
			merge(m.to, m.d)
		case 6: // drop
			if len(net) == 0 {
				continue
			}
			k := rapid.IntRange(0, len(net)-1).Draw(t, "drop")
			net = append(net[:k], net[k+1:]...)
		case 7: // digest anti-entropy i -> j
			i := rapid.IntRange(0, n-1).Draw(t, "ae-from")
			j := rapid.IntRange(0, n-1).Draw(t, "ae-to")
			merge(j, reps[i].DeltaFor(reps[j].Digest()))
		case 8: // full state i -> j
			i := rapid.IntRange(0, n-1).Draw(t, "fs-from")
			j := rapid.IntRange(0, n-1).Draw(t, "fs-to")
			merge(j, reps[i].Clone())
		case 9: // restart with a new epoch: state lost, dots never reused
			if !rapid.Bool().Draw(t, "restart") {
				continue
			}
			i := rapid.IntRange(0, n-1).Draw(t, "restart-at")
			epochs[i]++
			reps[i] = g.New(Replica(i, epochs[i]), limit)
			tracks[i] = &tracker{seen: map[crdt.Dot]bool{}}
		}
	}
	all := g.New(Replica(99, 1), Unbounded)
	for _, r := range reps {
		all.Merge(r)
	}
	antiEntropy(t, reps, func(i int) { tracks[i].check(t, i, reps[i].LiveDots(), reps[i].Context()) })
	for i := 1; i < n; i++ {
		requireEqual(t, fmt.Sprintf("replica 0 vs %d after anti-entropy", i), reps[0], reps[i])
	}
	requireEqual(t, "converged vs join of all states", reps[0], all)
}

// antiEntropy runs digest exchanges between every ordered pair until no
// digest changes; it fails if that takes more than a few rounds.
func antiEntropy[T crdt.Causal[T]](t *rapid.T, reps []T, after func(i int)) {
	t.Helper()
	const maxRounds = 4
	for round := 0; ; round++ {
		changed := false
		for i := range reps {
			for j := range reps {
				if i == j {
					continue
				}
				before := reps[j].Digest()
				reps[j].Merge(reps[i].DeltaFor(before))
				if after != nil {
					after(j)
				}
				if !reps[j].Digest().Equal(before) {
					changed = true
				}
			}
		}
		if !changed {
			return
		}
		if round == maxRounds {
			t.Fatalf("anti-entropy did not settle in %d rounds", maxRounds)
		}
	}
}

func checkPurge[T crdt.Causal[T]](t *rapid.T, g Gen[T]) {
	n := rapid.IntRange(2, 5).Draw(t, "replicas")
	limit := rapid.SampledFrom([]int{0, 2, Unbounded}).Draw(t, "log-limit")
	reps := make([]T, n)
	for i := range n {
		reps[i] = g.New(Replica(i, 1), limit)
	}
	var deltas []T
	for range rapid.IntRange(1, 50).Draw(t, "steps") {
		i := rapid.IntRange(0, n-1).Draw(t, "at")
		if len(deltas) > 0 && rapid.Bool().Draw(t, "deliver") {
			reps[i].Merge(deltas[rapid.IntRange(0, len(deltas)-1).Draw(t, "delta")])
			continue
		}
		deltas = append(deltas, g.Mutate(t, reps[i]))
	}
	gone := rapid.IntRange(0, n-1).Draw(t, "gone")
	goneID := Replica(gone, 1)
	var survivors []T
	for i, r := range reps {
		if i != gone {
			survivors = append(survivors, r)
		}
	}
	// survivors first exchange what they have (the gone replica's dots spread)
	if rapid.Bool().Draw(t, "sync-before") {
		antiEntropy(t, survivors, nil)
	}
	for _, r := range survivors {
		r.PurgeReplica(goneID)
		if r.Mentions(goneID) {
			t.Fatalf("purge left residue: %s", r)
		}
	}
	antiEntropy(t, survivors, nil)
	for i, r := range survivors {
		if r.Mentions(goneID) {
			t.Fatalf("survivor %d mentions %v after sync: %s", i, goneID, r)
		}
		for _, d := range r.LiveDots() {
			if d.Replica == goneID {
				t.Fatalf("survivor %d holds dot %v", i, d)
			}
		}
		if i > 0 {
			requireEqual(t, "survivors", survivors[0], r)
		}
	}
}

func checkEncoding[T crdt.Causal[T]](t *rapid.T, g Gen[T]) {
	w := newWorld(g, 3, rapid.SampledFrom([]int{0, 3, Unbounded}).Draw(t, "log-limit"))
	w.history(t, rapid.IntRange(0, 30).Draw(t, "steps"))
	vals := append([]T{}, w.reps...)
	vals = append(vals, w.deltas...)
	vals = append(vals, w.reps[0].DeltaFor(w.reps[1].Digest()))
	for _, v := range vals {
		b, err := v.MarshalBinary()
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		u, err := g.Decode(b)
		if err != nil {
			t.Fatalf("decode %x: %v", b, err)
		}
		requireEqual(t, "decode(encode(x)) = x", u, v)
		b2, _ := u.MarshalBinary()
		if !bytes.Equal(b, b2) {
			t.Fatalf("encoding not canonical:\n %x\n %x", b, b2)
		}
	}
	for _, r := range w.reps {
		dg := r.Digest()
		b, _ := dg.MarshalBinary()
		dg2, err := crdt.DecodeDigest(b)
		if err != nil {
			t.Fatalf("decode digest: %v", err)
		}
		if !dg2.Equal(dg) {
			t.Fatalf("digest round trip: %s vs %s", dg, dg2)
		}
	}
}
