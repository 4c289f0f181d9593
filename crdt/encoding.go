package crdt

import (
	"cmp"
	"encoding/binary"
	"slices"
)

// Wire format, version 1. All integers are minimal uvarints unless noted.
//
//	value   = version(1 byte = 1) kind(1 byte) replicas context body
//	          (a state's context is followed by its applied-event context, in
//	          the same form except that an entry may be empty: "0 0")
//	kind    = 1 ORMap | 2 AWORSet | 3 MVRegister | 4 Digest
//	replicas= n { len name-bytes epoch }          strictly ascending, n >= 0
//	context = per replica: max nspans { gap len }  span lo = prev+2+gap, hi = lo+len;
//	                                               prev starts at max; never empty
//	body    = Digest: applied-event context, then per replica: count
//	          hash(8 bytes little endian)
//	          state:  nkeys { key ndots { replica-index counter value } }
//	                  nlogs { replica-index nevents { gap nremoved { replica-index counter } } }
//
// Keys ascend by the key codec's order, dots within a key and removed dots
// ascend by dot order, log origins by replica index, events by counter (the
// first gap is the counter itself, then counter - previous - 1). Decoders
// accept only this canonical form, so equal values have equal encodings.
// Every count is checked against the bytes that remain before anything is
// allocated for it.

const encVersion = 1

// MaxCounter is the largest dot counter a decoder accepts. No honest replica
// comes near it (2^62 events), and the margin keeps counter arithmetic,
// including a replica's next dot, free of overflow on hostile input.
const MaxCounter = 1 << 62

const (
	kindORMap      byte = 1
	kindAWORSet    byte = 2
	kindMVRegister byte = 3
	kindDigest     byte = 4
)

func appendHeader(dst []byte, kind byte, ctx *Context) ([]byte, []ReplicaID, map[ReplicaID]uint64) {
	dst = append(dst, encVersion, kind)
	rs := ctx.Replicas()
	idx := make(map[ReplicaID]uint64, len(rs))
	dst = binary.AppendUvarint(dst, uint64(len(rs)))
	for i, r := range rs {
		idx[r] = uint64(i)
		dst = binary.AppendUvarint(dst, uint64(len(r.Name)))
		dst = append(dst, r.Name...)
		dst = binary.AppendUvarint(dst, r.Epoch)
	}
	return appendContext(dst, rs, ctx), rs, idx
}

func appendContext(dst []byte, rs []ReplicaID, ctx *Context) []byte {
	for _, r := range rs {
		x := ctx.m[r]
		if x == nil {
			x = &rctx{}
		}
		dst = binary.AppendUvarint(dst, x.max)
		dst = binary.AppendUvarint(dst, uint64(len(x.cloud)))
		prev := x.max
		for _, s := range x.cloud {
			dst = binary.AppendUvarint(dst, s.lo-prev-2)
			dst = binary.AppendUvarint(dst, s.hi-s.lo)
			prev = s.hi
		}
	}
	return dst
}

func (m *ORMap[K, V]) appendTo(dst []byte, kind byte) []byte {
	dst, rs, idx := appendHeader(dst, kind, &m.ctx)
	dst = appendContext(dst, rs, &m.applied)
	if m.flat != nil {
		dst = m.appendFlat(dst, idx)
	} else {
		dst = m.appendKeys(dst, idx)
	}
	return m.appendLog(dst, idx)
}

// appendFlat appends the keys and live dots of a flat value.
func (m *ORMap[K, V]) appendFlat(dst []byte, idx map[ReplicaID]uint64) []byte {
	m.sortFlat()
	dst = binary.AppendUvarint(dst, uint64(m.flatKeys))
	var last *ReplicaID
	var ri uint64
	for i := 0; i < len(m.flat); {
		k := m.flat[i].key
		j := i + 1
		for j < len(m.flat) && m.kc.Compare(m.flat[j].key, k) == 0 {
			j++
		}
		dst = m.kc.Append(dst, k)
		dst = binary.AppendUvarint(dst, uint64(j-i))
		for ; i < j; i++ {
			e := &m.flat[i]
			if last == nil || *last != e.dot.Replica {
				last, ri = &e.dot.Replica, idx[e.dot.Replica]
			}
			dst = binary.AppendUvarint(dst, ri)
			dst = binary.AppendUvarint(dst, e.dot.Counter)
			dst = m.vc.Append(dst, e.val)
		}
	}
	return dst
}

// appendKeys appends the keys and live dots of a value with maps.
func (m *ORMap[K, V]) appendKeys(dst []byte, idx map[ReplicaID]uint64) []byte {
	keys := m.Keys()
	dst = binary.AppendUvarint(dst, uint64(len(keys)))
	var buf [1]liveRef[K, V]
	var last *originStore[K, V]
	var ri uint64
	for _, k := range keys {
		dst = m.kc.Append(dst, k)
		refs := m.keys[k].view(&buf)
		dst = binary.AppendUvarint(dst, uint64(len(refs)))
		for _, r := range refs {
			if r.o != last {
				last, ri = r.o, idx[r.o.id]
			}
			dst = binary.AppendUvarint(dst, ri)
			dst = binary.AppendUvarint(dst, r.n)
			dst = m.vc.Append(dst, r.entry().val)
		}
	}
	return dst
}

// appendLog appends the event log.
func (m *ORMap[K, V]) appendLog(dst []byte, idx map[ReplicaID]uint64) []byte {
	origins := make([]ReplicaID, 0, len(m.log.m))
	for r, o := range m.log.m {
		if len(o.ev) > 0 {
			origins = append(origins, r)
		}
	}
	slices.SortFunc(origins, ReplicaID.Compare)
	dst = binary.AppendUvarint(dst, uint64(len(origins)))
	for _, r := range origins {
		o := m.log.m[r]
		dst = binary.AppendUvarint(dst, idx[r])
		dst = binary.AppendUvarint(dst, uint64(len(o.ev)))
		var prev uint64
		for i, e := range o.ev {
			n := e.n
			if i == 0 {
				dst = binary.AppendUvarint(dst, n)
			} else {
				dst = binary.AppendUvarint(dst, n-prev-1)
			}
			prev = n
			rm := e.removed
			dst = binary.AppendUvarint(dst, uint64(len(rm)))
			for _, d := range rm {
				dst = binary.AppendUvarint(dst, idx[d.Replica])
				dst = binary.AppendUvarint(dst, d.Counter)
			}
		}
	}
	return dst
}

// AppendBinary appends the canonical encoding of m (state or delta, with the
// events it carries) to dst.
func (m *ORMap[K, V]) AppendBinary(dst []byte) ([]byte, error) {
	return m.appendTo(dst, kindORMap), nil
}

// MarshalBinary returns the canonical encoding of m.
func (m *ORMap[K, V]) MarshalBinary() ([]byte, error) { return m.AppendBinary(nil) }

// AppendBinary appends the canonical encoding of the digest to dst.
func (g Digest) AppendBinary(dst []byte) ([]byte, error) {
	dst, rs, _ := appendHeader(dst, kindDigest, &g.seen)
	dst = appendContext(dst, rs, &g.applied)
	for _, r := range rs {
		s := g.sums[r]
		dst = binary.AppendUvarint(dst, s.Count)
		dst = binary.LittleEndian.AppendUint64(dst, s.Hash)
	}
	return dst, nil
}

// MarshalBinary returns the canonical encoding of the digest.
func (g Digest) MarshalBinary() ([]byte, error) { return g.AppendBinary(nil) }

// ---- decoding ----

type decoder struct {
	b       []byte
	off     int
	err     error
	lastIdx uint64 // the replica index of the last dot read
}

func (d *decoder) fail(reason string) {
	if d.err == nil {
		d.err = &DecodeError{Offset: d.off, Reason: reason, Err: ErrMalformed}
	}
}

func (d *decoder) rest() int { return len(d.b) - d.off }

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail("bad or truncated varint")
		return 0
	}
	if n != uvarintLen(v) {
		d.fail("non-minimal varint")
		return 0
	}
	d.off += n
	return v
}

// count reads a count of items that each take at least minBytes bytes.
func (d *decoder) count(minBytes int) int {
	v := d.uvarint()
	if d.err != nil {
		return 0
	}
	if v > uint64(d.rest()/minBytes) {
		d.fail("count exceeds remaining input")
		return 0
	}
	return int(v)
}

func (d *decoder) byte1() byte {
	if d.err != nil {
		return 0
	}
	if d.rest() < 1 {
		d.fail("truncated")
		return 0
	}
	d.off++
	return d.b[d.off-1]
}

func decodeWith[T any](d *decoder, c Codec[T]) T {
	var zero T
	if d.err != nil {
		return zero
	}
	v, n, err := c.Decode(d.b[d.off:])
	if err != nil || n < 0 || n > d.rest() {
		d.fail("bad key or value")
		return zero
	}
	d.off += n
	return v
}

// header reads version, kind, replica table and context.
func (d *decoder) header(kind byte) ([]ReplicaID, Context) {
	var ctx Context
	if v := d.byte1(); d.err == nil && v != encVersion {
		d.err = &DecodeError{Offset: 0, Reason: "version " + itoa(uint64(v)), Err: ErrVersion}
	}
	if k := d.byte1(); d.err == nil && k != kind {
		d.err = &DecodeError{Offset: 1, Reason: "kind " + itoa(uint64(k)), Err: ErrKind}
	}
	n := d.count(3) // name length, epoch, and at least max + nspans
	var rs []ReplicaID
	for i := 0; i < n && d.err == nil; i++ {
		l := d.uvarint()
		if d.err != nil {
			break
		}
		if l > uint64(d.rest()) {
			d.fail("name exceeds remaining input")
			break
		}
		name := string(d.b[d.off : d.off+int(l)])
		d.off += int(l)
		r := ReplicaID{name, d.uvarint()}
		if len(rs) > 0 && rs[len(rs)-1].Compare(r) >= 0 {
			d.fail("replicas not strictly ascending")
		}
		rs = append(rs, r)
	}
	ctx = d.context(rs, false)
	return rs, ctx
}

// context reads one context entry per replica of rs; an entry may be empty
// only if allowEmpty.
func (d *decoder) context(rs []ReplicaID, allowEmpty bool) Context {
	var ctx Context
	for _, r := range rs {
		if d.err != nil {
			break
		}
		x := &rctx{max: d.uvarint()}
		if x.max > MaxCounter {
			d.fail("counter above MaxCounter")
		}
		ns := d.count(2)
		prev := x.max
		for j := 0; j < ns && d.err == nil; j++ {
			gap, l := d.uvarint(), d.uvarint()
			const maxU = ^uint64(0)
			if d.err != nil || prev > maxU-2 || gap > maxU-2-prev || l > maxU-(prev+2+gap) {
				d.fail("span overflows")
				break
			}
			lo := prev + 2 + gap
			hi := lo + l
			if hi > MaxCounter {
				d.fail("counter above MaxCounter")
				break
			}
			x.cloud = append(x.cloud, span{lo, hi})
			prev = hi
		}
		if x.empty() {
			if !allowEmpty {
				d.fail("empty replica context")
			}
			continue
		}
		if ctx.m == nil {
			ctx.m = make(map[ReplicaID]*rctx)
		}
		ctx.m[r] = x
	}
	return ctx
}

// idxDot is a dot as the encoding names it: replica index and counter.
type idxDot struct{ r, n uint64 }

func (a idxDot) compare(b idxDot) int {
	if c := cmp.Compare(a.r, b.r); c != 0 {
		return c
	}
	return cmp.Compare(a.n, b.n)
}

func (d *decoder) dot(rs []ReplicaID) Dot {
	i := d.uvarint()
	c := d.uvarint()
	if d.err != nil {
		return Dot{}
	}
	if i >= uint64(len(rs)) {
		d.fail("replica index out of range")
		return Dot{}
	}
	d.lastIdx = i
	if c == 0 {
		d.fail("zero counter")
		return Dot{}
	}
	return Dot{rs[i], c}
}

func (d *decoder) end() {
	if d.err == nil && d.rest() != 0 {
		d.fail("trailing bytes")
	}
}

// DecodeDigest decodes a digest. It never panics, and allocates in
// proportion to len(b) only.
func DecodeDigest(b []byte) (Digest, error) {
	d := &decoder{b: b}
	rs, seen := d.header(kindDigest)
	g := Digest{seen: seen, applied: d.context(rs, true), sums: make(map[ReplicaID]Summary)}
	if d.err == nil && !g.seen.Includes(&g.applied) {
		d.fail("applied events outside context")
	}
	for _, r := range rs {
		c := d.uvarint()
		if d.err != nil {
			break
		}
		if d.rest() < 8 {
			d.fail("truncated hash")
			break
		}
		h := binary.LittleEndian.Uint64(d.b[d.off:])
		d.off += 8
		if c == 0 && h != 0 {
			d.fail("hash of nothing must be zero")
			break
		}
		if c != 0 {
			g.sums[r] = Summary{c, h}
		}
	}
	d.end()
	if d.err != nil {
		return Digest{}, d.err
	}
	return g, nil
}

func decodeORMap[K comparable, V any](b []byte, kind byte, kc Codec[K], vc Codec[V]) (*ORMap[K, V], error) {
	return decodeORMapInto(b, kind, newORMap[K, V](kc, vc))
}

// decodeORMapInto decodes into m, an empty value (new, or Reset) whose
// entry and dot buffers it reuses.
func decodeORMapInto[K comparable, V any](b []byte, kind byte, m *ORMap[K, V]) (*ORMap[K, V], error) {
	kc, vc := m.kc, m.vc
	d := &decoder{b: b}
	rs, ctx := d.header(kind)
	m.ctx = ctx
	m.applied = d.context(rs, true)
	if d.err == nil && !m.ctx.Includes(&m.applied) {
		d.fail("applied events outside context")
	}
	nk := d.count(2)
	m.flatKeys = nk
	// live dots as (replica index, counter), to refuse a dot under two keys
	// and a removed dot that is live
	refs := m.refs[:0]
	if cap(refs) < nk {
		refs = make([]idxDot, 0, nk)
	}
	switch {
	case nk == 0:
		m.flat = nil // no entries: not flat, as a new value
	case cap(m.flat) < nk:
		m.flat = make([]flatEntry[K, V], 0, nk)
	}
	var prevKey K
	for i := 0; i < nk && d.err == nil; i++ {
		k := decodeWith(d, kc)
		if d.err != nil {
			break
		}
		if i > 0 && kc.Compare(prevKey, k) >= 0 {
			d.fail("keys not strictly ascending")
			break
		}
		prevKey = k
		nd := d.count(2)
		if nd == 0 && d.err == nil {
			d.fail("key without dots")
		}
		var prev Dot
		for j := 0; j < nd && d.err == nil; j++ {
			dot := d.dot(rs)
			v := decodeWith(d, vc)
			if d.err != nil {
				break
			}
			if j > 0 && prev.Compare(dot) >= 0 {
				d.fail("dots not strictly ascending")
				break
			}
			prev = dot
			if !m.applied.Contains(dot) {
				d.fail("live dot is not an applied event")
				break
			}
			refs = append(refs, idxDot{d.lastIdx, dot.Counter})
			m.flat = append(m.flat, flatEntry[K, V]{dot, k, v})
		}
	}
	if d.err == nil && len(refs) > 1 {
		slices.SortFunc(refs, idxDot.compare)
		for i := 1; i < len(refs); i++ {
			if refs[i] == refs[i-1] {
				d.fail("dot under two keys")
				break
			}
		}
	}
	no := d.count(2)
	prevOrigin := -1
	for i := 0; i < no && d.err == nil; i++ {
		ri := d.uvarint()
		if d.err != nil {
			break
		}
		if ri >= uint64(len(rs)) || int(ri) <= prevOrigin {
			d.fail("log origin out of range or order")
			break
		}
		prevOrigin = int(ri)
		ne := d.count(2)
		if ne == 0 && d.err == nil {
			d.fail("log origin without events")
		}
		var prevN uint64
		for j := 0; j < ne && d.err == nil; j++ {
			gap := d.uvarint()
			n := gap
			if j > 0 {
				n = prevN + 1 + gap
				if n <= prevN {
					d.fail("event counter overflows")
					break
				}
			}
			prevN = n
			ev := Dot{rs[ri], n}
			if n == 0 || !m.applied.Contains(ev) {
				d.fail("logged event not applied")
				break
			}
			nr := d.count(2)
			var removed []Dot
			for k := 0; k < nr && d.err == nil; k++ {
				rd := d.dot(rs)
				if d.err != nil {
					break
				}
				if len(removed) > 0 && removed[len(removed)-1].Compare(rd) >= 0 {
					d.fail("removed dots not strictly ascending")
					break
				}
				if !m.ctx.Contains(rd) {
					d.fail("removed dot outside context")
					break
				}
				if _, live := slices.BinarySearchFunc(refs, idxDot{d.lastIdx, rd.Counter}, idxDot.compare); live {
					d.fail("removed dot is live")
					break
				}
				removed = append(removed, rd)
			}
			if d.err == nil {
				m.log.record(ev, removed, noLimit)
			}
		}
	}
	d.end()
	clear(refs)
	m.refs = refs[:0]
	if d.err != nil {
		m.Reset() // the buffers are kept, what was decoded is not
		return nil, d.err
	}
	return m, nil
}

// DecodeORMap decodes a state or delta encoded by MarshalBinary. It never
// panics on malformed input and allocates in proportion to len(b) only. The
// result has no replica identity and an unbounded log: join it into a
// replica, or call SetLogLimit (and use a fresh NewORMap to mutate).
func DecodeORMap[K comparable, V any](b []byte, kc Codec[K], vc Codec[V]) (*ORMap[K, V], error) {
	return decodeORMap(b, kindORMap, kc, vc)
}

// DecodeORMapInto is DecodeORMap decoding into dst, a value no longer used
// (a delta already joined, or a new NewORMap, of the codecs to decode
// with): dst is emptied and its entry buffer reused, so that a stream of
// deltas decodes without allocating one per delta. It returns dst; on an
// error, dst is empty and may be used again.
func DecodeORMapInto[K comparable, V any](dst *ORMap[K, V], b []byte) (*ORMap[K, V], error) {
	dst.Reset()
	return decodeORMapInto(b, kindORMap, dst)
}

func itoa(v uint64) string {
	var buf [20]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return string(buf[i:])
}
