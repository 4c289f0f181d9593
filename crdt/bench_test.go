package crdt_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/nodal-go/nodal/crdt"
)

func member(i int) string { return fmt.Sprintf("member-%07d", i) }

// BenchmarkMutate: cost of one mutation (one element) on a state that
// already holds 100,000 elements.
func BenchmarkMutate(b *testing.B) {
	base := newSet(ra)
	for i := range 100_000 {
		base.Add(member(i))
	}
	b.Run("AWORSet.Add", func(b *testing.B) {
		s := base.Clone()
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			s.Add(member(100_000 + i))
		}
	})
	b.Run("AWORSet.Remove", func(b *testing.B) {
		s := base.Clone()
		for i := range b.N {
			s.Add(member(100_000 + i))
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			s.Remove(member(100_000 + i))
		}
	})
	b.Run("ORMap.Add/one-key-100k-siblings", func(b *testing.B) {
		m := newMap(ra)
		for i := range 100_000 {
			m.Add("group", uint64(i))
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			m.Add("group", uint64(i))
		}
	})
	b.Run("ORMap.Put", func(b *testing.B) {
		m := newMap(ra)
		for i := range 100_000 {
			m.Put(member(i), uint64(i))
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			m.Put(member(i%100_000), uint64(i))
		}
	})
}

// BenchmarkJoinDelta: cost of joining one element's delta on a peer.
func BenchmarkJoinDelta(b *testing.B) {
	src, dst := newSet(ra), newSet(rb)
	for i := range 100_000 {
		dst.Merge(src.Add(member(i)))
	}
	deltas := make([]*crdt.AWORSet[string], b.N)
	for i := range b.N {
		deltas[i] = src.Add(member(100_000 + i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		dst.Join(deltas[i])
	}
}

// BenchmarkJoinState: cost per element of joining a full state of n
// elements into an empty replica.
func BenchmarkJoinState(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprint("n=", n), func(b *testing.B) {
			src := newSet(ra)
			for i := range n {
				src.Add(member(i))
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				dst := newSet(rb)
				dst.Merge(src)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/elem")
		})
	}
}

// BenchmarkEncode: encoded bytes per element of a 100,000-element set made
// by 4 replicas (without the event log, and with the default log), and the
// cost per element of encoding and decoding.
func BenchmarkEncode(b *testing.B) {
	const n = 100_000
	s := newSet(ra)
	reps := []*crdt.AWORSet[string]{newSet(ra), newSet(rb), newSet(rc), newSet(ra2)}
	for i := range n {
		s.Merge(reps[i%4].Add(member(i)))
	}
	noLog := s.Clone()
	noLog.SetLogLimit(0)
	withLog, _ := s.MarshalBinary()
	enc, _ := noLog.MarshalBinary()
	b.Run("encode", func(b *testing.B) {
		for range b.N {
			enc, _ = noLog.MarshalBinary()
		}
		b.ReportMetric(float64(len(enc))/n, "B/elem")
		b.ReportMetric(float64(len(withLog))/n, "B/elem-with-log")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/elem")
	})
	b.Run("decode", func(b *testing.B) {
		for range b.N {
			if _, err := crdt.DecodeAWORSet(enc, crdt.StringCodec{}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/elem")
	})
}

// syncPair builds two replicas of n elements (written by 4 origins) where
// the first has diff more changes than the second: half removals of
// existing elements, half additions, spread over the origins.
func syncPair(n, diff int) (ahead, behind *crdt.AWORSet[string]) {
	reps := []*crdt.AWORSet[string]{newSet(ra), newSet(rb), newSet(rc), newSet(ra2)}
	for _, r := range reps {
		r.SetLogLimit(1 << 15)
	}
	for i := range n {
		d := reps[i%4].Add(member(i))
		for j, r := range reps {
			if j != i%4 {
				r.Merge(d)
			}
		}
	}
	behind = reps[0].Clone()
	for k := range diff {
		r := reps[k%4]
		var d *crdt.AWORSet[string]
		if k%2 == 0 {
			d = r.Remove(member(k * 7 % n))
		} else {
			d = r.Add(member(n + k))
		}
		reps[0].Merge(d)
	}
	return reps[0], behind
}

// BenchmarkSync: bring a replica of 100,000 elements up to date with one that
// differs by 0.1 %, 1 % and 10 %: the digest-driven exchange (digest one way,
// delta back, both encoded, decoded and joined) against shipping the full
// state (encoded without its event log, decoded, joined).
//
// Each iteration needs a fresh 100,000-element peer; cloning it runs with
// the timer stopped, but its cost still leaks into ns/op, so the exchange
// itself is timed by hand and reported as ns/exchange.
func BenchmarkSync(b *testing.B) {
	const n = 100_000
	for _, pct := range []float64{0.1, 1, 10} {
		diff := int(n * pct / 100)
		ahead, behind := syncPair(n, diff)
		name := fmt.Sprintf("diff=%g%%", pct)
		b.Run(name+"/digest", func(b *testing.B) {
			var bytes int
			var manual time.Duration
			for range b.N {
				b.StopTimer()
				peer := behind.Clone()
				runtime.GC() // keep the clone's garbage out of the timed part
				b.StartTimer()
				t0 := time.Now()
				dg, _ := peer.Digest().MarshalBinary()
				g, err := crdt.DecodeDigest(dg)
				if err != nil {
					b.Fatal(err)
				}
				enc, _ := ahead.DeltaFor(g).MarshalBinary()
				d, err := crdt.DecodeAWORSet(enc, crdt.StringCodec{})
				if err != nil {
					b.Fatal(err)
				}
				peer.Join(d)
				bytes = len(dg) + len(enc)
				b.StopTimer()
				manual += time.Since(t0)
				if !peer.Equal(ahead) {
					b.Fatal("not in sync")
				}
				b.StartTimer()
			}
			full := ahead.Clone()
			full.SetLogLimit(0)
			fb, _ := full.MarshalBinary()
			b.ReportMetric(float64(bytes), "bytes")
			b.ReportMetric(100*float64(bytes)/float64(len(fb)), "%full")
			b.ReportMetric(float64(bytes)/float64(diff), "B/diff")
			b.ReportMetric(float64(manual.Nanoseconds())/float64(b.N), "ns/exchange")
		})
		b.Run(name+"/full", func(b *testing.B) {
			full := ahead.Clone()
			full.SetLogLimit(0)
			var bytes int
			var manual time.Duration
			for range b.N {
				b.StopTimer()
				peer := behind.Clone()
				runtime.GC() // keep the clone's garbage out of the timed part
				b.StartTimer()
				t0 := time.Now()
				enc, _ := full.MarshalBinary()
				d, err := crdt.DecodeAWORSet(enc, crdt.StringCodec{})
				if err != nil {
					b.Fatal(err)
				}
				peer.Join(d)
				bytes = len(enc)
				b.StopTimer()
				manual += time.Since(t0)
				if !peer.Equal(ahead) {
					b.Fatal("not in sync")
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(bytes), "bytes")
			b.ReportMetric(float64(manual.Nanoseconds())/float64(b.N), "ns/exchange")
		})
	}
}

// BenchmarkSyncFallback: 1 % of 100,000 elements differ, all made by one of
// four origins, whose gap (1,000 events) is older than a 100-event log: the
// delta carries that origin's entries (a quarter of the state), never the
// whole state.
func BenchmarkSyncFallback(b *testing.B) {
	const n, diff = 100_000, 1_000
	reps := []*crdt.AWORSet[string]{newSet(ra), newSet(rb), newSet(rc), newSet(ra2)}
	for _, r := range reps {
		r.SetLogLimit(100)
	}
	for i := range n {
		d := reps[i%4].Add(member(i))
		for j, r := range reps {
			if j != i%4 {
				r.Merge(d)
			}
		}
	}
	behind := reps[0].Clone()
	for k := range diff {
		reps[1].Add(member(n + k))
	}
	ahead := reps[1]
	full := ahead.Clone()
	full.SetLogLimit(0)
	fb, _ := full.MarshalBinary()
	var bytes int
	var manual time.Duration
	for range b.N {
		b.StopTimer()
		peer := behind.Clone()
		runtime.GC()
		b.StartTimer()
		t0 := time.Now()
		dg, _ := peer.Digest().MarshalBinary()
		g, _ := crdt.DecodeDigest(dg)
		enc, _ := ahead.DeltaFor(g).MarshalBinary()
		d, err := crdt.DecodeAWORSet(enc, crdt.StringCodec{})
		if err != nil {
			b.Fatal(err)
		}
		peer.Join(d)
		bytes = len(dg) + len(enc)
		b.StopTimer()
		manual += time.Since(t0)
		if !peer.Equal(ahead) {
			b.Fatal("not in sync")
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(bytes), "bytes")
	b.ReportMetric(100*float64(bytes)/float64(len(fb)), "%full")
	b.ReportMetric(float64(manual.Nanoseconds())/float64(b.N), "ns/exchange")
}
