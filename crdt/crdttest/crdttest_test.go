package crdttest_test

import (
	"flag"
	"fmt"
	"testing"

	"github.com/nodal-go/nodal/crdt"
	"github.com/nodal-go/nodal/crdt/crdttest"
	"pgregory.net/rapid"
)

// mutant wraps an AWORSet and breaks one behaviour; the suite must notice.
type mutant struct {
	s   *crdt.AWORSet[string]
	bug string
}

func (m *mutant) wrap(s *crdt.AWORSet[string]) *mutant { return &mutant{s: s, bug: m.bug} }

func (m *mutant) Merge(d *mutant) {
	if m.bug == "merge-drops-removals" && len(d.s.LiveDots()) == 0 {
		return
	}
	m.s.Merge(d.s)
}
func (m *mutant) Clone() *mutant         { return m.wrap(m.s.Clone()) }
func (m *mutant) Equal(o *mutant) bool   { return m.s.Equal(o.s) }
func (m *mutant) Digest() crdt.Digest    { return m.s.Digest() }
func (m *mutant) Context() *crdt.Context { return m.s.Context() }
func (m *mutant) LiveDots() []crdt.Dot   { return m.s.LiveDots() }
func (m *mutant) String() string         { return m.s.String() }
func (m *mutant) MarshalBinary() ([]byte, error) {
	return m.s.MarshalBinary()
}
func (m *mutant) Mentions(r crdt.ReplicaID) bool { return m.s.Mentions(r) }
func (m *mutant) DeltaFor(g crdt.Digest) *mutant {
	if m.bug == "sync-sends-nothing" {
		return m.wrap(crdt.NewAWORSet(m.s.Self(), crdt.StringCodec{}))
	}
	return m.wrap(m.s.DeltaFor(g))
}
func (m *mutant) PurgeReplica(r crdt.ReplicaID) {
	if m.bug != "purge-noop" {
		m.s.PurgeReplica(r)
	}
}

func gen(bug string) crdttest.Gen[*mutant] {
	return crdttest.Gen[*mutant]{
		New: func(r crdt.ReplicaID, limit int) *mutant {
			s := crdt.NewAWORSet(r, crdt.StringCodec{})
			s.SetLogLimit(limit)
			return &mutant{s: s, bug: bug}
		},
		Mutate: func(t *rapid.T, m *mutant) *mutant {
			e := rapid.SampledFrom([]string{"a", "b", "c"}).Draw(t, "e")
			var d *crdt.AWORSet[string]
			if rapid.IntRange(0, 2).Draw(t, "op") < 2 {
				d = m.s.Add(e)
			} else {
				d = m.s.Remove(e)
			}
			if bug == "delta-lost" {
				return m.wrap(crdt.NewAWORSet(m.s.Self(), crdt.StringCodec{}))
			}
			return m.wrap(d)
		},
	}
}

// recorder is a rapid.TB that records failure instead of failing the test.
type recorder struct {
	name   string
	failed bool
	msg    string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Name() string              { return r.name }
func (r *recorder) Logf(string, ...any)       {}
func (r *recorder) Log(...any)                {}
func (r *recorder) Skipf(string, ...any)      {}
func (r *recorder) Skip(...any)               {}
func (r *recorder) SkipNow()                  {}
func (r *recorder) Errorf(f string, a ...any) { r.failed, r.msg = true, fmt.Sprintf(f, a...) }
func (r *recorder) Error(a ...any)            { r.failed, r.msg = true, fmt.Sprint(a...) }
func (r *recorder) Fatalf(f string, a ...any) { r.failed, r.msg = true, fmt.Sprintf(f, a...) }
func (r *recorder) Fatal(a ...any)            { r.failed, r.msg = true, fmt.Sprint(a...) }
func (r *recorder) FailNow()                  { r.failed = true }
func (r *recorder) Fail()                     { r.failed = true }
func (r *recorder) Failed() bool              { return r.failed }

// TestSuiteCatchesBugs runs laws against broken types: each must fail.
func TestSuiteCatchesBugs(t *testing.T) {
	// Expected failures must not leave fail files behind (or replay old
	// ones), and need no minimal counterexample: shrink briefly.
	for name, v := range map[string]string{"rapid.nofailfile": "true", "rapid.shrinktime": "200ms"} {
		if f := flag.Lookup(name); f != nil {
			old := f.Value.String()
			_ = f.Value.Set(v)
			defer func() { _ = f.Value.Set(old) }()
		}
	}
	tests := []struct{ bug, law string }{
		{"merge-drops-removals", "delta-vs-full"},
		{"merge-drops-removals", "convergence"},
		{"delta-lost", "delta-mutator"},
		{"sync-sends-nothing", "sync-exact"},
		{"sync-sends-nothing", "convergence"},
		{"purge-noop", "purge"},
	}
	for _, tc := range tests {
		t.Run(tc.bug+"/"+tc.law, func(t *testing.T) {
			var law *crdttest.Law
			for _, l := range crdttest.Laws(gen(tc.bug)) {
				if l.Name == tc.law {
					law = &l
				}
			}
			if law == nil {
				t.Fatalf("no law %q", tc.law)
			}
			r := &recorder{name: "mutant-" + tc.bug + "-" + tc.law}
			rapid.Check(r, law.Check)
			t.Logf("caught: %.300s", r.msg)
			if !r.failed {
				t.Fatalf("law %s did not catch %s", tc.law, tc.bug)
			}
		})
	}
}

// TestSuitePassesCorrectType runs every law on the unbroken wrapper.
func TestSuitePassesCorrectType(t *testing.T) {
	crdttest.CheckLaws(t, gen(""))
}
