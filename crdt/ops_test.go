package crdt_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/nodal-go/nodal/crdt"
	"github.com/stretchr/testify/require"
)

var (
	ra  = crdt.ReplicaID{Name: "a", Epoch: 1}
	rb  = crdt.ReplicaID{Name: "b", Epoch: 1}
	rc  = crdt.ReplicaID{Name: "c", Epoch: 1}
	ra2 = crdt.ReplicaID{Name: "a", Epoch: 2}
)

func newSet(r crdt.ReplicaID) *crdt.AWORSet[string] { return crdt.NewAWORSet(r, crdt.StringCodec{}) }

func newMap(r crdt.ReplicaID) *crdt.ORMap[string, uint64] {
	return crdt.NewORMap(r, crdt.StringCodec{}, crdt.Uint64Codec{})
}

func TestContext(t *testing.T) {
	dot := func(n uint64) crdt.Dot { return crdt.Dot{Replica: ra, Counter: n} }
	tests := []struct {
		name     string
		add      []uint64
		want     string
		max      uint64
		cloud    uint64
		contains []uint64
		absent   []uint64
	}{
		{"empty", nil, "{}", 0, 0, nil, []uint64{1}},
		{"contiguous", []uint64{1, 2, 3}, "{a/1:1-3}", 3, 0, []uint64{1, 3}, []uint64{4}},
		{"gap stays in cloud", []uint64{1, 3, 5, 6}, "{a/1:1,3,5-6}", 1, 3, []uint64{3, 5, 6}, []uint64{2, 4, 7}},
		{"filling gap compacts", []uint64{3, 1, 5, 2, 4}, "{a/1:1-5}", 5, 0, []uint64{4}, []uint64{6}},
		{"duplicates", []uint64{2, 2, 1, 1}, "{a/1:1-2}", 2, 0, []uint64{2}, []uint64{3}},
		{"adjacent cloud spans merge", []uint64{5, 7, 6}, "{a/1:5-7}", 0, 3, []uint64{6}, []uint64{1, 4, 8}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c crdt.Context
			for _, n := range tc.add {
				c.Add(dot(n))
			}
			require.Equal(t, tc.want, c.String())
			require.Equal(t, tc.max, c.Max(ra))
			require.Equal(t, tc.cloud, c.CloudLen())
			for _, n := range tc.contains {
				require.True(t, c.Contains(dot(n)), n)
			}
			for _, n := range tc.absent {
				require.False(t, c.Contains(dot(n)), n)
			}
			cl := c.Clone()
			require.True(t, cl.Equal(&c))
			require.True(t, c.Includes(cl))
		})
	}
	t.Run("join and includes", func(t *testing.T) {
		var x, y crdt.Context
		x.Add(dot(1))
		x.Add(dot(3))
		y.Add(dot(2))
		y.Add(crdt.Dot{Replica: rb, Counter: 1})
		require.False(t, x.Includes(&y))
		x.Join(&y)
		require.Equal(t, "{a/1:1-3 b/1:1}", x.String())
		require.True(t, x.Includes(&y))
		x.Purge(ra)
		require.Equal(t, "{b/1:1}", x.String())
	})
}

func TestAWORSetOps(t *testing.T) {
	t.Run("add remove contains", func(t *testing.T) {
		s := newSet(ra)
		s.Add("y")
		s.Add("x")
		require.Equal(t, []string{"x", "y"}, s.Elements())
		s.Remove("y")
		require.False(t, s.Contains("y"))
		require.Equal(t, 1, s.Len())
		require.True(t, s.Remove("nothing").Context().Equal(&crdt.Context{}), "removing an absent element makes no event")
	})
	t.Run("concurrent add wins over remove", func(t *testing.T) {
		a, b := newSet(ra), newSet(rb)
		b.Merge(a.Add("x"))
		rm := a.Remove("x")
		add := b.Add("x") // concurrent with the remove
		a.Merge(add)
		b.Merge(rm)
		require.True(t, a.Contains("x"))
		require.True(t, b.Contains("x"))
		require.True(t, a.Equal(b))
	})
	t.Run("removed element never comes back from a stale delta", func(t *testing.T) {
		a, b := newSet(ra), newSet(rb)
		add := a.Add("x")
		b.Merge(add)
		b.Merge(b.Remove("x"))
		ch := b.Join(add) // duplicate, late
		require.True(t, ch.Empty())
		require.False(t, b.Contains("x"))
	})
	t.Run("remove arriving before its add", func(t *testing.T) {
		a, b, c := newSet(ra), newSet(rb), newSet(rc)
		add := a.Add("x")
		b.Merge(add)
		rm := b.Remove("x")
		c.Merge(rm)
		require.True(t, c.Join(add).Empty())
		require.False(t, c.Contains("x"))
	})
	t.Run("join reports elements", func(t *testing.T) {
		a, b := newSet(ra), newSet(rb)
		require.Equal(t, []string{"p", "q"}, b.Join(joinAll(a.Add("q"), a.Add("p"))).Added)
		// a second add of a present element is no visible change
		require.True(t, b.Join(a.Add("p")).Empty())
		ch := b.Join(a.Remove("q"))
		require.Equal(t, []string{"q"}, ch.Removed)
		require.Empty(t, ch.Added)
	})
}

func joinAll(ds ...*crdt.AWORSet[string]) *crdt.AWORSet[string] {
	out := newSet(crdt.ReplicaID{Name: "zz", Epoch: 1})
	for _, d := range ds {
		out.Merge(d)
	}
	return out
}

func TestMVRegisterOps(t *testing.T) {
	a, b := crdt.NewMVRegister(ra, crdt.StringCodec{}), crdt.NewMVRegister(rb, crdt.StringCodec{})
	da := a.Write("1")
	db := b.Write("2")
	ch := a.Join(db)
	require.Len(t, ch.Added, 1)
	require.Equal(t, "2", ch.Added[0].Value)
	b.Merge(da)
	require.Equal(t, "[1@a/1:1 2@b/1:1] ctx{a/1:1 b/1:1}", a.String())
	require.True(t, a.Equal(b), "concurrent writes are siblings on both")
	// a write that observed both siblings replaces both
	w := a.Write("3")
	ch = b.Join(w)
	require.Len(t, ch.Removed, 2)
	require.Len(t, ch.Added, 1)
	require.Equal(t, []crdt.Sibling[string]{{Dot: crdt.Dot{Replica: ra, Counter: 2}, Value: "3"}}, b.Values())
	b.Merge(b.Clear())
	require.Empty(t, b.Values())
}

func TestORMapOps(t *testing.T) {
	type step func(m *crdt.ORMap[string, uint64])
	tests := []struct {
		name  string
		steps []step
		want  string
	}{
		{"put replaces observed", []step{
			func(m *crdt.ORMap[string, uint64]) { m.Put("k", 1) },
			func(m *crdt.ORMap[string, uint64]) { m.Put("k", 2) },
		}, "{k:[2@a/1:2]} ctx{a/1:1-2}"},
		{"add keeps siblings", []step{
			func(m *crdt.ORMap[string, uint64]) { m.Add("k", 1) },
			func(m *crdt.ORMap[string, uint64]) { m.Add("k", 1) },
		}, "{k:[1@a/1:1 1@a/1:2]} ctx{a/1:1-2}"},
		{"insert supersedes equal value only", []step{
			func(m *crdt.ORMap[string, uint64]) { m.Add("k", 1) },
			func(m *crdt.ORMap[string, uint64]) { m.Add("k", 2) },
			func(m *crdt.ORMap[string, uint64]) { m.Insert("k", 1) },
		}, "{k:[2@a/1:2 1@a/1:3]} ctx{a/1:1-3}"},
		{"delete removes equal values", []step{
			func(m *crdt.ORMap[string, uint64]) { m.Add("k", 1) },
			func(m *crdt.ORMap[string, uint64]) { m.Add("k", 2) },
			func(m *crdt.ORMap[string, uint64]) { m.Add("k", 1) },
			func(m *crdt.ORMap[string, uint64]) { m.Delete("k", 1) },
		}, "{k:[2@a/1:2]} ctx{a/1:1-4}"},
		{"remove key", []step{
			func(m *crdt.ORMap[string, uint64]) { m.Add("k", 1) },
			func(m *crdt.ORMap[string, uint64]) { m.Add("j", 1) },
			func(m *crdt.ORMap[string, uint64]) { m.Remove("k") },
		}, "{j:[1@a/1:2]} ctx{a/1:1-3}"},
		{"remove dots", []step{
			func(m *crdt.ORMap[string, uint64]) { m.Add("k", 1) },
			func(m *crdt.ORMap[string, uint64]) { m.Add("k", 2) },
			func(m *crdt.ORMap[string, uint64]) {
				m.RemoveDots(crdt.Dot{Replica: ra, Counter: 1}, crdt.Dot{Replica: rb, Counter: 9})
			},
		}, "{k:[2@a/1:2]} ctx{a/1:1-3}"},
		{"no-op mutations consume no dot", []step{
			func(m *crdt.ORMap[string, uint64]) { m.Remove("k") },
			func(m *crdt.ORMap[string, uint64]) { m.Delete("k", 1) },
			func(m *crdt.ORMap[string, uint64]) { m.RemoveDots(crdt.Dot{Replica: ra, Counter: 1}) },
			func(m *crdt.ORMap[string, uint64]) { m.Add("k", 7) },
		}, "{k:[7@a/1:1]} ctx{a/1:1}"},
		{"keys iterate in order", []step{
			func(m *crdt.ORMap[string, uint64]) { m.Add("z", 1) },
			func(m *crdt.ORMap[string, uint64]) { m.Add("a", 1) },
			func(m *crdt.ORMap[string, uint64]) { m.Add("m", 1) },
		}, "{a:[1@a/1:2] m:[1@a/1:3] z:[1@a/1:1]} ctx{a/1:1-3}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newMap(ra)
			replay := newMap(rb)
			for _, s := range tc.steps {
				before := m.Clone()
				s(m)
				// the delta of each step, recovered by the digest exchange,
				// must reproduce it on a replica that saw everything before
				replay.Merge(m.DeltaFor(before.Digest()))
				require.True(t, replay.Equal(m), "replay %s vs %s", replay, m)
			}
			require.Equal(t, tc.want, m.String())
		})
	}
}

func TestMapChanges(t *testing.T) {
	a, b := newMap(ra), newMap(rb)
	d1 := a.Add("k", 1)
	d2 := a.Add("k", 2)
	ch := b.Join(d2)
	require.Equal(t, []crdt.KeyChange[string]{{Op: crdt.Added, Key: "k"}}, ch.Keys)
	require.Len(t, ch.Values, 1)
	ch = b.Join(d1)
	require.Empty(t, ch.Keys, "k was already present")
	require.Equal(t, uint64(1), ch.Values[0].Value)
	ch = b.Join(a.Remove("k"))
	require.Equal(t, []crdt.KeyChange[string]{{Op: crdt.Removed, Key: "k"}}, ch.Keys)
	require.Len(t, ch.Values, 2)
	for _, v := range ch.Values {
		require.Equal(t, crdt.Removed, v.Op)
	}
	require.Less(t, ch.Values[0].Dot.Counter, ch.Values[1].Dot.Counter, "canonical order")
}

func TestEpochNeverReusesDots(t *testing.T) {
	old := newSet(ra)
	d := old.Add("x")
	restarted := newSet(ra2) // same name, new epoch, empty state
	restarted.Merge(d)
	d2 := restarted.Add("y")
	require.Equal(t, []crdt.Dot{{Replica: ra, Counter: 1}, {Replica: ra2, Counter: 1}}, restarted.LiveDots())
	require.Equal(t, ra2, d2.LiveDots()[0].Replica)
}

func TestPurgeReplica(t *testing.T) {
	a, b, c := newMap(ra), newMap(rb), newMap(rc)
	b.Merge(a.Add("x", 1))
	b.Add("x", 2)
	b.Add("y", 3)
	c.Merge(b)
	// c removes a's sibling: c's log names a's dot
	c.RemoveDots(crdt.Dot{Replica: ra, Counter: 1})
	b.Merge(c.DeltaFor(b.Digest()))
	require.True(t, b.Mentions(ra))
	for _, m := range []*crdt.ORMap[string, uint64]{b, c} {
		m.PurgeReplica(ra)
		require.False(t, m.Mentions(ra))
		require.Equal(t, []string{"x", "y"}, m.Keys(), "other replicas' entries stay")
	}
	require.True(t, b.Equal(c))
	require.NotContains(t, b.String(), "a/1")
}

func TestDeltaForServesLogThenFallsBack(t *testing.T) {
	a, b := newMap(ra), newMap(rb)
	a.SetLogLimit(10)
	for i := range 100 {
		a.Put(fmt.Sprint(i), uint64(i))
	}
	b.Merge(a.Clone())
	// 5 new events: served from the log, 5 entries
	for i := range 5 {
		a.Put(fmt.Sprint(i), 1000)
	}
	d := a.DeltaFor(b.Digest())
	require.Len(t, d.LiveDots(), 5)
	require.Equal(t, 5, d.LogLen(ra), "the delta carries its events for relay")
	ch := b.Join(d)
	require.Len(t, ch.Values, 10, "5 siblings replaced")
	require.True(t, a.Equal(b))

	// 20 new events exceed the log (10): fallback to a's entries (100)
	for i := range 20 {
		a.Put(fmt.Sprint(i), 2000)
	}
	d = a.DeltaFor(b.Digest())
	require.Len(t, d.LiveDots(), 100)
	require.Equal(t, 0, d.LogLen(ra))
	b.Merge(d)
	require.True(t, a.Equal(b))
	require.Equal(t, 10, a.LogLen(ra))
}

func TestFallbackOnlyOriginEntries(t *testing.T) {
	// a holds 50 entries of its own and 3 of c. b lags on a only.
	a, b, c := newMap(ra), newMap(rb), newMap(rc)
	a.SetLogLimit(2)
	for i := range 3 {
		a.Merge(c.Add(fmt.Sprint("c", i), 1))
	}
	for i := range 50 {
		a.Add(fmt.Sprint("a", i), 1)
	}
	b.Merge(a.Clone())
	for i := range 5 {
		a.Add(fmt.Sprint("n", i), 1)
	}
	d := a.DeltaFor(b.Digest())
	for _, dot := range d.LiveDots() {
		require.Equal(t, ra, dot.Replica, "fallback carries only the lagging origin")
	}
	require.Len(t, d.LiveDots(), 55)
	b.Merge(d)
	require.True(t, a.Equal(b))
}

func TestForeignRemovalBeyondLogConverges(t *testing.T) {
	// c removes b's dot; the removal event is then trimmed from every log.
	a, b, c := newMap(ra), newMap(rb), newMap(rc)
	for _, m := range []*crdt.ORMap[string, uint64]{a, b, c} {
		m.SetLogLimit(1)
	}
	x := b.Add("x", 1)
	a.Merge(x)
	c.Merge(x)
	a.Merge(c.RemoveDots(x.LiveDots()...))
	a.Merge(c.Add("y", 1)) // pushes the removal out of the 1-event log
	// b still holds x. One exchange a->b falls back to c's entries,
	// which do not say x is gone; the live-set summaries then differ
	// while applied events are equal, and the next exchange repairs it.
	b.Merge(a.DeltaFor(b.Digest()))
	require.True(t, a.Applied().Equal(b.Applied()))
	require.True(t, b.Contains("x"))
	b.Merge(a.DeltaFor(b.Digest()))
	require.False(t, b.Contains("x"))
	require.True(t, a.Equal(b))
}

func TestLogKeepsNewest(t *testing.T) {
	m := newSet(ra)
	m.SetLogLimit(3)
	for i := range 10 {
		m.Add(fmt.Sprint(i))
	}
	require.Equal(t, 3, m.Map().LogLen(ra))
	// the newest 3 events serve a peer that is 3 behind, not 4
	old := newSet(rb)
	old.Merge(m.Clone())
	m.Add("10")
	m.Add("11")
	m.Add("12")
	require.Len(t, m.DeltaFor(old.Digest()).LiveDots(), 3)
	m.Add("13")
	require.Len(t, m.DeltaFor(old.Digest()).LiveDots(), 14, "fallback: all of a's entries")
	m.SetLogLimit(0)
	require.Equal(t, 0, m.Map().LogLen(ra))
}

func TestDecodeErrors(t *testing.T) {
	s := newSet(ra)
	s.Add("x")
	s.Add("y")
	s.Remove("x")
	good, err := s.MarshalBinary()
	require.NoError(t, err)
	dg, _ := s.Digest().MarshalBinary()
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, crdt.ErrMalformed},
		{"version", append([]byte{9}, good[1:]...), crdt.ErrVersion},
		{"kind", append([]byte{1, 1}, good[2:]...), crdt.ErrKind},
		{"digest as set", dg, crdt.ErrKind},
		{"trailing", append(append([]byte{}, good...), 0), crdt.ErrMalformed},
		{"huge count", []byte{1, 2, 0xff, 0xff, 0xff, 0xff, 0x0f}, crdt.ErrMalformed},
		{"non-minimal varint", []byte{1, 2, 0x80, 0x00}, crdt.ErrMalformed},
		{"live dot not applied", []byte{1, 2, 1, 1, 'a', 1, 1, 0, 0, 0, 1, 1, 'x', 1, 0, 1, 0}, crdt.ErrMalformed},
		{"live dot outside context", []byte{1, 2, 1, 1, 'a', 1, 1, 0, 0, 0, 1, 1, 'x', 1, 0, 2, 0}, crdt.ErrMalformed},
		{"unsorted replicas", []byte{1, 2, 2, 1, 'b', 1, 1, 'a', 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0}, crdt.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := crdt.DecodeAWORSet(tc.in, crdt.StringCodec{})
			require.ErrorIs(t, err, tc.want)
			var de *crdt.DecodeError
			require.True(t, errors.As(err, &de))
		})
	}
	t.Run("every truncation fails", func(t *testing.T) {
		for i := range len(good) {
			_, err := crdt.DecodeAWORSet(good[:i], crdt.StringCodec{})
			require.ErrorIs(t, err, crdt.ErrMalformed, "prefix %d", i)
		}
		for i := range len(dg) {
			_, err := crdt.DecodeDigest(dg[:i])
			require.Error(t, err, "prefix %d", i)
		}
	})
	t.Run("the crafted shape is otherwise valid", func(t *testing.T) {
		// same bytes with the dot applied (E max 1) decode fine
		ok := []byte{1, 2, 1, 1, 'a', 1, 1, 0, 1, 0, 1, 1, 'x', 1, 0, 1, 0}
		s, err := crdt.DecodeAWORSet(ok, crdt.StringCodec{})
		require.NoError(t, err)
		require.Equal(t, []string{"x"}, s.Elements())
	})
	t.Run("round trip", func(t *testing.T) {
		u, err := crdt.DecodeAWORSet(good, crdt.StringCodec{})
		require.NoError(t, err)
		require.True(t, u.Equal(s))
		g, err := crdt.DecodeDigest(dg)
		require.NoError(t, err)
		require.True(t, g.Equal(s.Digest()))
	})
}

func TestAnyReplicaServesAGap(t *testing.T) {
	a, b, c := newSet(ra), newSet(rb), newSet(rc)
	for _, s := range []*crdt.AWORSet[string]{a, b, c} {
		s.SetLogLimit(100)
	}
	for i := range 50 {
		d := a.Add(fmt.Sprint(i))
		b.Merge(d) // b relays: it logs a's events as it joins them
		if i < 40 {
			c.Merge(d)
		}
	}
	b.Merge(a.Remove("3"))
	require.Equal(t, 51, b.Map().LogLen(ra))
	// a is gone from the conversation; b serves c's gap on a's behalf.
	d := b.DeltaFor(c.Digest())
	require.Len(t, d.LiveDots(), 10, "exactly the 10 missed adds")
	ch := c.Join(d)
	require.Len(t, ch.Added, 10)
	require.Equal(t, []string{"3"}, ch.Removed)
	require.True(t, b.Equal(c))
}

func TestDigestSizeFollowsReplicasNotEntries(t *testing.T) {
	size := func(n int) int {
		s := newSet(ra)
		for i := range n {
			s.Add(fmt.Sprint(i))
		}
		s.Merge(newSet(rb).Add("b"))
		enc, _ := s.Digest().MarshalBinary()
		return len(enc)
	}
	small, large := size(10), size(100_000)
	require.LessOrEqual(t, large-small, 8, "only varint widths grow: %d vs %d", small, large)
	require.Less(t, large, 50)
}

func TestReplaceIsOneEvent(t *testing.T) {
	a, b := newMap(ra), newMap(rb)
	b.Merge(a.Add("name", 1))
	b.Merge(b.Add("name", 2)) // b's concurrent sibling stays untouched
	a.Merge(b)
	own := a.Get("name")[0].Dot
	d := a.Replace("name", 10, own)
	require.Equal(t, "{a/1:2}", d.Applied().String(), "one event")
	require.Equal(t, "{a/1:1-2}", d.Context().String(), "which removes a/1:1")
	ch := b.Join(d)
	require.Empty(t, ch.Keys, "the key never disappears")
	require.Len(t, ch.Values, 2)
	require.Equal(t, []crdt.Sibling[uint64]{
		{Dot: crdt.Dot{Replica: ra, Counter: 2}, Value: 10},
		{Dot: crdt.Dot{Replica: rb, Counter: 1}, Value: 2},
	}, b.Get("name"))
}

func TestByReplicaAndPurgeChanges(t *testing.T) {
	m := newMap(rb)
	a := newMap(ra)
	m.Merge(a.Add("x", 1))
	m.Merge(a.Add("y", 2))
	m.Add("y", 3)
	var got []string
	for k, s := range m.ByReplica(ra) {
		got = append(got, fmt.Sprint(s.Dot, " ", k, "=", s.Value))
	}
	require.Equal(t, []string{"a/1:1 x=1", "a/1:2 y=2"}, got)
	ch := m.Purge(ra)
	require.Equal(t, []crdt.KeyChange[string]{{Op: crdt.Removed, Key: "x"}}, ch.Keys, "y keeps b's sibling")
	require.Len(t, ch.Values, 2)
	require.False(t, m.Mentions(ra))
	s := newSet(rb)
	s.Merge(newSet(ra).Add("e"))
	require.Equal(t, []string{"e"}, s.Purge(ra).Removed)
}

// TestHostileRangesCostNothing: a tiny encoding may claim 2^60 dots; decoding,
// joining and serving it must cost in proportion to the bytes and to our own
// state, never to the claimed range.
func TestHostileRangesCostNothing(t *testing.T) {
	huge := []byte{1, 2, 1, 1, 'a', 1}                                        // version, AWORSet, 1 replica "a"/1
	huge = append(huge, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10) // C max = 2^60
	huge = append(huge, 0)                                                    // no cloud
	huge = append(huge, 0, 0)                                                 // applied: empty
	huge = append(huge, 0, 0)                                                 // no keys, no log
	d, err := crdt.DecodeAWORSet(huge, crdt.StringCodec{})
	require.NoError(t, err)
	require.Equal(t, uint64(1)<<60, d.Context().Max(ra))

	s := newSet(rb)
	s.Merge(newSet(ra).Add("x"))
	s.Add("y")
	allocs := testing.AllocsPerRun(10, func() {
		c := s.Clone()
		ch := c.Join(d) // kills a/1:1, keeps b's
		if len(ch.Removed) != 1 || !c.Contains("y") {
			t.Fatal("wrong join")
		}
		c.Merge(d.DeltaFor(c.Digest()))
		_ = c.DeltaFor(d.Digest())
	})
	require.Less(t, allocs, 500.0)
	// cloud spans far above max: same
	far := []byte{1, 2, 1, 1, 'a', 1, 0, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10, 0, 0, 0, 0}
	d, err = crdt.DecodeAWORSet(far, crdt.StringCodec{})
	require.NoError(t, err)
	c := s.Clone()
	c.Merge(d)
	require.Equal(t, uint64(1)<<60+1, c.Context().CloudLen(), "2^60+1 dots claimed, held as one range")
	require.True(t, c.Contains("y"))
}

func TestTrimLog(t *testing.T) {
	a, b := newSet(ra), newSet(rb)
	for i := range 10 {
		b.Merge(a.Add(fmt.Sprint(i)))
	}
	a.TrimLog(ra, b.Digest().Applied().Max(ra)) // b has all: stable
	require.Equal(t, 0, a.Map().LogLen(ra))
	a.Add("new")
	require.Equal(t, 1, a.Map().LogLen(ra))
	d := a.DeltaFor(b.Digest())
	require.Len(t, d.LiveDots(), 1, "the new event is still served from the log")
	a.TrimLog(ra, 5) // below what is kept: nothing changes
	require.Equal(t, 1, a.Map().LogLen(ra))
}

func TestPurgeSelfIsRefused(t *testing.T) {
	s := newSet(ra)
	s.Add("x")
	require.True(t, s.Purge(ra).Empty())
	require.True(t, s.Contains("x"))
	d := s.Add("y")
	require.Equal(t, uint64(2), d.LiveDots()[0].Counter, "no counter reused")
}

func TestManySiblingsUnderOneKey(t *testing.T) {
	a, b := newMap(ra), newMap(rb)
	var mine []crdt.Dot
	for i := range 200 {
		d := a.Add("group", uint64(i))
		b.Merge(d)
		mine = append(mine, d.LiveDots()...)
		b.Merge(b.Add("group", uint64(1000+i)))
	}
	require.Equal(t, 400, b.Count("group"))
	sibs := b.Get("group")
	require.Len(t, sibs, 400)
	for i := 1; i < len(sibs); i++ {
		require.Negative(t, sibs[i-1].Dot.Compare(sibs[i].Dot), "canonical order")
	}
	ch := b.Join(a.RemoveDots(mine[:150]...))
	require.Len(t, ch.Values, 150)
	require.Empty(t, ch.Keys)
	require.Equal(t, 250, b.Count("group"))
	enc, _ := b.MarshalBinary()
	c, err := crdt.DecodeORMap(enc, crdt.StringCodec{}, crdt.Uint64Codec{})
	require.NoError(t, err)
	require.True(t, c.Equal(b))
	enc2, _ := c.MarshalBinary()
	require.Equal(t, enc, enc2)
	require.True(t, b.Clone().Equal(b))
	b.Merge(b.Remove("group"))
	require.False(t, b.Contains("group"))
}

// Live yields every live entry once, whether the value keeps its entries in
// maps (a state), or flat (a mutator's delta, a decoded value).
func TestLiveEntries(t *testing.T) {
	a, b := newMap(ra), newMap(rb)
	b.Merge(a.Add("x", 1))
	d := b.Add("y", 2)
	b.Add("x", 3)
	b.RemoveDots(crdt.Dot{Replica: ra, Counter: 1})
	enc, err := b.MarshalBinary()
	require.NoError(t, err)
	decoded, err := crdt.DecodeORMap(enc, crdt.StringCodec{}, crdt.Uint64Codec{})
	require.NoError(t, err)
	collect := func(m *crdt.ORMap[string, uint64]) map[crdt.Dot]string {
		out := map[crdt.Dot]string{}
		for k, sib := range m.Live() {
			_, dup := out[sib.Dot]
			require.False(t, dup, "dot %v twice", sib.Dot)
			out[sib.Dot] = fmt.Sprintf("%s=%d", k, sib.Value)
		}
		return out
	}
	want := map[crdt.Dot]string{{Replica: rb, Counter: 1}: "y=2", {Replica: rb, Counter: 2}: "x=3"}
	require.Equal(t, want, collect(decoded), "decoded")
	require.Equal(t, want, collect(b), "state")
	require.Equal(t, map[crdt.Dot]string{{Replica: rb, Counter: 1}: "y=2"}, collect(d), "delta")
	n := 0
	for range b.Live() {
		n++
		break
	}
	require.Equal(t, 1, n, "stops when asked")
}

// JoinAppend reports the siblings Join reports, in the same order, after
// what dst held, and leaves the same state.
func TestJoinAppendMatchesJoin(t *testing.T) {
	a, b := newMap(ra), newMap(rb)
	var deltas []*crdt.ORMap[string, uint64]
	for i := range 20 {
		deltas = append(deltas, a.Add(fmt.Sprintf("k%02d", (i*7)%13), uint64(i)))
	}
	deltas = append(deltas, a.Remove("k03"), a.Replace("k05", 99), b.Add("k05", 7))
	enc, err := a.MarshalBinary()
	require.NoError(t, err)
	decoded, err := crdt.DecodeORMap(enc, crdt.StringCodec{}, crdt.Uint64Codec{})
	require.NoError(t, err)
	deltas = append(deltas, decoded, b)
	x, y := newMap(rc), newMap(rc)
	prefix := []crdt.ValueChange[string, uint64]{{Op: crdt.Added, Key: "before"}}
	for i, d := range deltas {
		want := x.Join(d).Values
		got := y.JoinAppend(slices.Clone(prefix), d)
		require.Equal(t, prefix, got[:1], "delta %d: dst kept", i)
		if len(want) == 0 {
			require.Len(t, got, 1, "delta %d", i)
		} else {
			require.Equal(t, want, got[1:], "delta %d", i)
		}
		require.True(t, x.Equal(y), "delta %d: same state", i)
	}
}
