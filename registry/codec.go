package registry

import (
	"cmp"
	"fmt"
	"hash/maphash"
	"math/bits"
	"strings"
	"sync/atomic"

	"github.com/nodal-go/nodal"
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

// regCodec is the value codec of Registration.
type regCodec struct{}

func (regCodec) Compare(a, b Registration) int {
	if c := a.Pid.Compare(b.Pid); c != 0 {
		return c
	}
	if c := strings.Compare(a.Meta, b.Meta); c != 0 {
		return c
	}
	if c := cmp.Compare(a.At, b.At); c != 0 {
		return c
	}
	return strings.Compare(a.Resolver, b.Resolver)
}

func (regCodec) Append(dst []byte, v Registration) []byte {
	dst = wire.AppendIdent(dst, v.Pid.Node, v.Pid.ID, v.Pid.Incarnation)
	dst = wire.AppendString(dst, v.Meta)
	dst = wire.AppendVarint(dst, v.At)
	return wire.AppendString(dst, v.Resolver)
}

func (regCodec) Decode(src []byte) (Registration, int, error) {
	dec := wire.NewDecoder(src)
	var r Registration
	node := dec.Bytes()
	r.Pid.ID, r.Pid.Incarnation = dec.Uvarint(), dec.Uvarint()
	meta := dec.Bytes()
	r.At = dec.Varint()
	res := dec.Bytes()
	if err := dec.Err(); err != nil {
		return Registration{}, 0, err
	}
	if len(meta) > MaxMetaLen || len(res) > MaxResolverLen {
		return Registration{}, 0, fmt.Errorf("%w: metadata or resolver name over its limit", ErrMetaTooLong)
	}
	var err error
	if r.Pid.Node, err = internNode(node); err != nil {
		return Registration{}, 0, err
	}
	r.Meta, r.Resolver = string(meta), internResolver(res)
	// One encoding per value: what decodes re-encodes to the same bytes,
	// which holds when every varint was minimal (the lengths add up).
	n := dec.Offset()
	if n != encodedLen(r) {
		return Registration{}, 0, fmt.Errorf("registry: non-canonical registration encoding")
	}
	return r, n, nil
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

// encodedLen is len(regCodec{}.Append(nil, r)), without encoding.
func encodedLen(r Registration) int {
	return uvarintLen(uint64(len(r.Pid.Node))) + len(r.Pid.Node) + uvarintLen(r.Pid.ID) + uvarintLen(r.Pid.Incarnation) +
		uvarintLen(uint64(len(r.Meta))) + len(r.Meta) + uvarintLen(uint64(r.At<<1)^uint64(r.At>>63)) +
		uvarintLen(uint64(len(r.Resolver))) + len(r.Resolver)
}

func uvarintLen(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

// nodeNames interns the node names of decoded registrations, so that the
// many registrations of one node share one copy of its name, made and
// checked once: a fixed, lock-free table of valid names (a name that
// collides is simply not shared).
var nodeNames [256]atomic.Pointer[string]

// internNode returns the valid node name b as a string: the table's copy
// when it has one (no allocation, no check), else a checked new one.
func internNode(b []byte) (string, error) {
	slot := &nodeNames[maphash.Bytes(nodeSeed, b)%uint64(len(nodeNames))]
	if p := slot.Load(); p != nil && *p == string(b) {
		return *p, nil
	}
	name := string(b)
	if err := nodal.ValidateNodeName(name); err != nil {
		return "", err
	}
	slot.Store(&name)
	return name, nil
}

var nodeSeed = maphash.MakeSeed()
