package registry

import (
	"cmp"
	"fmt"
	"hash/maphash"
	"math/bits"
	"strings"
	"sync/atomic"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/crdt"
	"github.com/nodal-go/nodal/internal/wire"
)

// Registration is one claim of a name: the process, its metadata, when
// its owner registered it (the owner's clock, strictly increasing per
// node) and the conflict resolver it asked for.
type Registration struct {
	Pid      nodal.Pid
	Meta     string
	At       int64  // Unix nanoseconds on the owner's node, strictly increasing there
	Resolver string // "" for LowerNodeExit
}

// nameCodec is the key codec: a length-prefixed name of 1..MaxNameLen
// bytes, ordered bytewise.
type nameCodec struct{}

func (nameCodec) Compare(a, b string) int { return strings.Compare(a, b) }

func (nameCodec) Append(dst []byte, v string) []byte { return wire.AppendString(dst, v) }

func (nameCodec) Decode(src []byte) (string, int, error) {
	dec := wire.NewDecoder(src)
	l := dec.Length()
	if dec.Err() == nil && (l == 0 || l > MaxNameLen) {
		return "", 0, fmt.Errorf("%w: %d bytes", ErrNameTooLong, l)
	}
	b := dec.Take(l)
	if dec.Err() != nil {
		return "", 0, dec.Err()
	}
	return string(b), dec.Offset(), nil
}

// heldClaim is a Registration as the replicated state and the notices hold
// it, in 32 bytes instead of 72: the pid's node and incarnation are a
// pointer to an interned pair shared by the node's claims, and metadata
// and a resolver other than the default, which most claims lack, sit
// behind a pointer that is nil otherwise. Claims compare by value, never
// by pointer (a pair that missed the intern table is a copy).
type heldClaim struct {
	node *nodeInc
	id   uint64
	at   int64
	ext  *claimExt // nil: no metadata, the default resolver ("")
}

// nodeInc is a node name with an incarnation: a pid's node.
type nodeInc struct {
	name string
	inc  uint64
}

type claimExt struct{ meta, resolver string }

// toClaim is the heldClaim of g; its node is interned.
func toClaim(g Registration) heldClaim {
	c := heldClaim{node: internNodeInc(g.Pid.Node, g.Pid.Incarnation), id: g.Pid.ID, at: g.At}
	if g.Meta != "" || g.Resolver != "" {
		c.ext = &claimExt{meta: g.Meta, resolver: g.Resolver}
	}
	return c
}

// pid returns the claim's process.
func (c heldClaim) pid() nodal.Pid {
	return nodal.Pid{Node: c.node.name, ID: c.id, Incarnation: c.node.inc}
}

func (c heldClaim) meta() string {
	if c.ext == nil {
		return ""
	}
	return c.ext.meta
}

func (c heldClaim) resolver() string {
	if c.ext == nil {
		return ""
	}
	return c.ext.resolver
}

// reg returns the claim as a Registration.
func (c heldClaim) reg() Registration {
	return Registration{Pid: c.pid(), Meta: c.meta(), At: c.at, Resolver: c.resolver()}
}

// String prints the claim as its Registration.
func (c heldClaim) String() string { return fmt.Sprintf("%+v", c.reg()) }

// pidRef is a pid in 16 bytes (its node interned), as the read index holds
// it.
type pidRef struct {
	node *nodeInc
	id   uint64
}

func (p pidRef) pid() nodal.Pid {
	return nodal.Pid{Node: p.node.name, ID: p.id, Incarnation: p.node.inc}
}

// same reports whether p and o are the same process.
func (p pidRef) same(o pidRef) bool {
	return p.id == o.id && (p.node == o.node || *p.node == *o.node)
}

func (c heldClaim) ref() pidRef { return pidRef{c.node, c.id} }

// regCodec is the value codec of the replicated state: claims, encoded as
// Registrations (node, id, incarnation, metadata, time, resolver), ordered
// as Registrations (pid, metadata, time, resolver).
type regCodec struct{}

func (regCodec) Compare(a, b heldClaim) int {
	if a.node != b.node {
		if c := strings.Compare(a.node.name, b.node.name); c != 0 {
			return c
		}
	}
	if c := cmp.Compare(a.id, b.id); c != 0 {
		return c
	}
	if a.node != b.node {
		if c := cmp.Compare(a.node.inc, b.node.inc); c != 0 {
			return c
		}
	}
	if a.ext != b.ext {
		if c := strings.Compare(a.meta(), b.meta()); c != 0 {
			return c
		}
	}
	if c := cmp.Compare(a.at, b.at); c != 0 {
		return c
	}
	if a.ext == b.ext {
		return 0
	}
	return strings.Compare(a.resolver(), b.resolver())
}

func (regCodec) Append(dst []byte, v heldClaim) []byte {
	dst = wire.AppendIdent(dst, v.node.name, v.id, v.node.inc)
	dst = wire.AppendString(dst, v.meta())
	dst = wire.AppendVarint(dst, v.at)
	return wire.AppendString(dst, v.resolver())
}

func (regCodec) Decode(src []byte) (heldClaim, int, error) {
	dec := wire.NewDecoder(src)
	var c heldClaim
	node := dec.Bytes()
	id, inc := dec.Uvarint(), dec.Uvarint()
	meta := dec.Bytes()
	c.at = dec.Varint()
	res := dec.Bytes()
	if err := dec.Err(); err != nil {
		return heldClaim{}, 0, err
	}
	if len(meta) > MaxMetaLen || len(res) > MaxResolverLen {
		return heldClaim{}, 0, fmt.Errorf("%w: metadata or resolver name over its limit", ErrMetaTooLong)
	}
	c.id = id
	var err error
	if c.node, err = internNodeIncBytes(node, inc); err != nil {
		return heldClaim{}, 0, err
	}
	if len(meta) > 0 || len(res) > 0 {
		c.ext = &claimExt{meta: string(meta), resolver: internResolver(res)}
	}
	// One encoding per value: what decodes re-encodes to the same bytes,
	// which holds when every varint was minimal (the lengths add up).
	n := dec.Offset()
	if n != encodedLen(c) {
		return heldClaim{}, 0, fmt.Errorf("registry: non-canonical registration encoding")
	}
	return c, n, nil
}

// checkClaim refuses a claim whose pid is not of the replica that wrote it
// (sib.Dot.Replica, a node name and incarnation): only a pid's own node
// adds or removes its claims, and the read index derives a holder's node
// from its claim's origin.
func checkClaim(name string, sib crdt.Sibling[heldClaim]) error {
	if c, o := sib.Value, sib.Dot.Replica; c.node.name != o.Name || c.node.inc != o.Epoch {
		return fmt.Errorf("%w: %q claimed for %v by %s/%d", ErrForeignClaim, name, c.pid(), o.Name, o.Epoch)
	}
	return nil
}

// internResolver returns the built-in resolvers' names without a copy, so
// that decoded registrations share them.
func internResolver(b []byte) string {
	for _, name := range builtinNames {
		if string(b) == name {
			return name
		}
	}
	return string(b)
}

// encodedLen is len(regCodec{}.Append(nil, c)), without encoding.
func encodedLen(c heldClaim) int {
	meta, res := c.meta(), c.resolver()
	return uvarintLen(uint64(len(c.node.name))) + len(c.node.name) + uvarintLen(c.id) + uvarintLen(c.node.inc) +
		uvarintLen(uint64(len(meta))) + len(meta) + uvarintLen(uint64(c.at<<1)^uint64(c.at>>63)) +
		uvarintLen(uint64(len(res))) + len(res)
}

func uvarintLen(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

// nodeIncs interns the nodes of claims, so that the many claims of one
// node share one copy of its name and incarnation, made and checked once:
// a fixed, lock-free table of valid nodes (a node that collides is simply
// not shared).
var nodeIncs [256]atomic.Pointer[nodeInc]

func nodeSlot(h, inc uint64) *atomic.Pointer[nodeInc] {
	return &nodeIncs[(h^inc*0x9e3779b97f4a7c15)%uint64(len(nodeIncs))]
}

// internNodeIncBytes returns the node named b with incarnation inc: the
// table's copy when it has one (no allocation, no check), else a checked
// new one.
func internNodeIncBytes(b []byte, inc uint64) (*nodeInc, error) {
	slot := nodeSlot(maphash.Bytes(nodeSeed, b), inc)
	if p := slot.Load(); p != nil && p.inc == inc && p.name == string(b) {
		return p, nil
	}
	name := string(b)
	if err := nodal.ValidateNodeName(name); err != nil {
		return nil, err
	}
	p := &nodeInc{name: name, inc: inc}
	slot.Store(p)
	return p, nil
}

// internNodeInc is internNodeIncBytes for a name already a string (a local
// pid's node): the table keeps it only if it is valid.
func internNodeInc(name string, inc uint64) *nodeInc {
	slot := nodeSlot(maphash.String(nodeSeed, name), inc)
	if p := slot.Load(); p != nil && p.inc == inc && p.name == name {
		return p
	}
	p := &nodeInc{name: name, inc: inc}
	if nodal.ValidateNodeName(name) == nil {
		slot.Store(p)
	}
	return p
}

var nodeSeed = maphash.MakeSeed()
