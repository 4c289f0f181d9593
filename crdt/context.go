package crdt

import (
	"slices"
	"sort"
	"strconv"
	"strings"
)

// span is an inclusive range of counters [lo, hi], lo <= hi.
type span struct{ lo, hi uint64 }

func (s span) size() uint64 { return s.hi - s.lo + 1 }

// rctx is the causal context of one replica: every counter in [1, max] plus
// the counters of cloud. cloud is sorted, disjoint, non-adjacent, and every
// span in it starts above max+1 (compaction keeps it so).
type rctx struct {
	max   uint64
	cloud []span
}

func (c *rctx) contains(n uint64) bool {
	if n == 0 {
		return false
	}
	if n <= c.max {
		return true
	}
	i := sort.Search(len(c.cloud), func(i int) bool { return c.cloud[i].hi >= n })
	return i < len(c.cloud) && c.cloud[i].lo <= n
}

// add inserts [lo, hi] and compacts. It reports whether anything was new.
func (c *rctx) add(lo, hi uint64) {
	if lo == 0 {
		lo = 1
	}
	if hi < lo || hi <= c.max {
		return
	}
	if lo <= c.max+1 {
		c.max = hi
	} else {
		// insert into cloud, merging overlapping or adjacent spans
		i := sort.Search(len(c.cloud), func(i int) bool { return c.cloud[i].hi+1 >= lo })
		j := i
		for j < len(c.cloud) && c.cloud[j].lo <= hi+1 {
			lo = min(lo, c.cloud[j].lo)
			hi = max(hi, c.cloud[j].hi)
			j++
		}
		c.cloud = slices.Replace(c.cloud, i, j, span{lo, hi})
	}
	// compact: absorb spans that now touch max
	k := 0
	for k < len(c.cloud) && c.cloud[k].lo <= c.max+1 {
		c.max = max(c.max, c.cloud[k].hi)
		k++
	}
	if k > 0 {
		c.cloud = slices.Delete(c.cloud, 0, k)
	}
}

// spans returns every covered range, the prefix [1, max] first.
func (c *rctx) spans() []span {
	out := make([]span, 0, len(c.cloud)+1)
	if c.max > 0 {
		out = append(out, span{1, c.max})
	}
	return append(out, c.cloud...)
}

// top is the highest counter covered.
func (c *rctx) top() uint64 {
	if n := len(c.cloud); n > 0 {
		return c.cloud[n-1].hi
	}
	return c.max
}

func (c *rctx) empty() bool { return c.max == 0 && len(c.cloud) == 0 }

func (c *rctx) clone() *rctx { return &rctx{max: c.max, cloud: slices.Clone(c.cloud)} }

func (c *rctx) equal(o *rctx) bool { return c.max == o.max && slices.Equal(c.cloud, o.cloud) }

// subtractSpans returns the counters in a that are not in b; both are sorted
// and disjoint.
func subtractSpans(a, b []span) []span {
	var out []span
	j := 0
	for _, s := range a {
		lo := s.lo
		for j < len(b) && b[j].hi < lo {
			j++
		}
		k := j
		for lo <= s.hi {
			if k >= len(b) || b[k].lo > s.hi {
				out = append(out, span{lo, s.hi})
				break
			}
			if b[k].lo > lo {
				out = append(out, span{lo, b[k].lo - 1})
			}
			if b[k].hi >= s.hi {
				break
			}
			lo = b[k].hi + 1
			k++
		}
	}
	return out
}

// Context is a causal context: the set of dots a state has seen, stored as a
// version vector (every counter up to a maximum, per replica) plus a dot cloud
// of the dots seen out of order, as ranges. Adding a dot compacts the cloud
// into the vector as soon as it becomes contiguous. The zero value is empty and
// ready to use.
type Context struct {
	m map[ReplicaID]*rctx
	// the entry added to last (most additions are of one replica: this
	// one's own, or a delta's origin); lastID is valid when last is set
	lastID ReplicaID
	last   *rctx
}

// Contains reports whether d has been seen.
func (c *Context) Contains(d Dot) bool {
	r := c.get(d.Replica)
	return r != nil && r.contains(d.Counter)
}

// Add records d as seen.
func (c *Context) Add(d Dot) { c.addRange(d.Replica, d.Counter, d.Counter) }

func (c *Context) addRange(r ReplicaID, lo, hi uint64) {
	if hi == 0 || hi < lo {
		return
	}
	if c.m == nil {
		c.m = make(map[ReplicaID]*rctx)
	}
	x := c.get(r)
	if x == nil {
		x = &rctx{}
		c.m[r] = x
	}
	c.lastID, c.last = r, x
	x.add(lo, hi)
}

// get returns the entry of r, nil if none. Only mutations set the cache
// it reads first, so concurrent reads stay reads.
func (c *Context) get(r ReplicaID) *rctx {
	if c.last != nil && c.lastID == r {
		return c.last
	}
	return c.m[r]
}

// Max returns the version vector entry of r: the highest n such that every dot
// (r, 1..n) has been seen.
func (c *Context) Max(r ReplicaID) uint64 {
	if x := c.m[r]; x != nil {
		return x.max
	}
	return 0
}

// VersionVector returns the contiguous part of the context, one entry per
// replica with a non-zero maximum.
func (c *Context) VersionVector() map[ReplicaID]uint64 {
	out := make(map[ReplicaID]uint64, len(c.m))
	for r, x := range c.m {
		if x.max > 0 {
			out[r] = x.max
		}
	}
	return out
}

// CloudLen returns the number of dots seen out of order (not yet compacted
// into the version vector).
func (c *Context) CloudLen() uint64 {
	var n uint64
	for _, x := range c.m {
		for _, s := range x.cloud {
			n += s.size()
		}
	}
	return n
}

// Replicas returns every replica the context mentions, in canonical order.
func (c *Context) Replicas() []ReplicaID {
	out := make([]ReplicaID, 0, len(c.m))
	for r := range c.m {
		out = append(out, r)
	}
	slices.SortFunc(out, ReplicaID.Compare)
	return out
}

// Join adds every dot of o to c.
func (c *Context) Join(o *Context) {
	for r, x := range o.m {
		if x.max > 0 {
			c.addRange(r, 1, x.max)
		}
		for _, s := range x.cloud {
			c.addRange(r, s.lo, s.hi)
		}
	}
}

// Includes reports whether every dot of o is in c.
func (c *Context) Includes(o *Context) bool {
	for r, x := range o.m {
		mine := c.m[r]
		if mine == nil {
			if !x.empty() {
				return false
			}
			continue
		}
		if len(subtractSpans(x.spans(), mine.spans())) > 0 {
			return false
		}
	}
	return true
}

// Purge forgets every dot of r.
func (c *Context) Purge(r ReplicaID) {
	delete(c.m, r)
	c.last = nil
}

// Clone returns a deep copy.
func (c *Context) Clone() *Context {
	out := &Context{m: make(map[ReplicaID]*rctx, len(c.m))}
	for r, x := range c.m {
		out.m[r] = x.clone()
	}
	return out
}

// Equal reports whether c and o contain the same dots.
func (c *Context) Equal(o *Context) bool {
	n := 0
	for r, x := range c.m {
		if x.empty() {
			continue
		}
		n++
		y := o.m[r]
		if y == nil || !x.equal(y) {
			return false
		}
	}
	for _, y := range o.m {
		if !y.empty() {
			n--
		}
	}
	return n == 0
}

// String prints the context in canonical order, e.g. {a/1:1-5,7 b/2:1-3}.
func (c *Context) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, r := range c.Replicas() {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(r.String())
		b.WriteByte(':')
		for j, s := range c.m[r].spans() {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatUint(s.lo, 10))
			if s.hi != s.lo {
				b.WriteByte('-')
				b.WriteString(strconv.FormatUint(s.hi, 10))
			}
		}
	}
	b.WriteByte('}')
	return b.String()
}
