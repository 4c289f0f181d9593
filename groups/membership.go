package groups

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"sync/atomic"
	"unicode/utf8"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/crdt"
)

// Size limits. A Join beyond them fails with ErrBadGroup or
// ErrMetaTooLarge; an entry from the network beyond them is malformed and
// its delta dropped.
const (
	// MaxGroupName bounds a group name, in bytes (Erlang atoms are at
	// most 255 characters; pg groups are any term, we keep names).
	MaxGroupName = 255
	// MaxMeta bounds a membership's metadata, in bytes: it travels with
	// every delta and digest repair of its group, so it is meant for a
	// few words (a role, a shard number), not for payloads.
	MaxMeta = 1024
	// MaxScopeName bounds a scope name, in bytes; the scope's service
	// name is ServicePrefix + scope.
	MaxScopeName = 64 - len(ServicePrefix)
	maxNodeName  = 255
)

// ServicePrefix is the prefix of a scope's service name on the node: scope
// "chat" attaches as "groups:chat".
const ServicePrefix = "groups:"

// Membership is one membership of a group: the member and its metadata.
// A pid that joined a group twice has two memberships in it.
type Membership struct {
	Pid  nodal.Pid
	Meta []byte
}

// ValidateGroup reports whether name can be a group name: 1 to
// MaxGroupName bytes of valid UTF-8. The error wraps ErrBadGroup.
func ValidateGroup(name string) error {
	if name == "" || len(name) > MaxGroupName || !utf8.ValidString(name) {
		return fmt.Errorf("%w: %q: want 1..%d bytes of UTF-8", ErrBadGroup, clip(name), MaxGroupName)
	}
	return nil
}

func validateMeta(meta []byte) error {
	if len(meta) > MaxMeta {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrMetaTooLarge, len(meta), MaxMeta)
	}
	return nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// groupCodec is the crdt.Codec of group names: a uvarint length and the
// bytes, ordered bytewise. Decode refuses names beyond the limits and
// non-minimal lengths, so equal names always have equal encodings.
type groupCodec struct{}

func (groupCodec) Compare(a, b string) int { return crdt.StringCodec{}.Compare(a, b) }

func (groupCodec) Append(dst []byte, v string) []byte { return crdt.StringCodec{}.Append(dst, v) }

func (groupCodec) Decode(src []byte) (string, int, error) {
	b, n, err := decodeBytes(src, MaxGroupName)
	if err != nil {
		return "", 0, err
	}
	s, ok := groupNames.get(b)
	if !ok {
		if err := ValidateGroup(s); err != nil {
			return "", 0, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		groupNames.put(s)
	}
	return s, n, nil
}

// interned is a fixed, lock-free table of strings decoded before, so that
// the many entries naming one group or one node share one copy of the
// name, made (and checked) once; a name that collides is simply not
// shared.
type interned [256]atomic.Pointer[string]

var (
	groupNames interned // valid group names
	nodeNames  interned // node names of memberships
	internSeed = maphash.MakeSeed()
)

// get returns the table's copy of b and true, or a new string and false.
func (t *interned) get(b []byte) (string, bool) {
	if p := t[maphash.Bytes(internSeed, b)%uint64(len(t))].Load(); p != nil && *p == string(b) {
		return *p, true
	}
	return string(b), false
}

func (t *interned) put(s string) {
	t[maphash.String(internSeed, s)%uint64(len(t))].Store(&s)
}

// membershipCodec is the crdt.Codec of memberships: the pid (node name,
// id, incarnation) then the metadata, ordered by pid then metadata.
type membershipCodec struct{}

func (membershipCodec) Compare(a, b Membership) int {
	if c := a.Pid.Compare(b.Pid); c != 0 {
		return c
	}
	return bytes.Compare(a.Meta, b.Meta)
}

func (membershipCodec) Append(dst []byte, v Membership) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(v.Pid.Node)))
	dst = append(dst, v.Pid.Node...)
	dst = binary.AppendUvarint(dst, v.Pid.ID)
	dst = binary.AppendUvarint(dst, v.Pid.Incarnation)
	dst = binary.AppendUvarint(dst, uint64(len(v.Meta)))
	return append(dst, v.Meta...)
}

func (membershipCodec) Decode(src []byte) (Membership, int, error) {
	var m Membership
	node, off, err := decodeBytes(src, maxNodeName)
	if err != nil || len(node) == 0 {
		return m, 0, fmt.Errorf("%w: membership: bad node name", ErrMalformed)
	}
	id, n, err := decodeUvarint(src[off:])
	if err != nil {
		return m, 0, err
	}
	off += n
	inc, n, err := decodeUvarint(src[off:])
	if err != nil {
		return m, 0, err
	}
	off += n
	meta, n, err := decodeBytes(src[off:], MaxMeta)
	if err != nil {
		return m, 0, err
	}
	off += n
	name, ok := nodeNames.get(node)
	if !ok {
		nodeNames.put(name)
	}
	m.Pid = nodal.Pid{Node: name, ID: id, Incarnation: inc}
	if len(meta) > 0 {
		m.Meta = bytes.Clone(meta)
	}
	return m, off, nil
}

// decodeUvarint reads a minimal uvarint.
func decodeUvarint(src []byte) (uint64, int, error) {
	v, n := binary.Uvarint(src)
	if n <= 0 || n != uvarintLen(v) {
		return 0, 0, fmt.Errorf("%w: bad uvarint", ErrMalformed)
	}
	return v, n, nil
}

// decodeBytes reads a minimal uvarint length of at most limit and that
// many bytes (aliasing src).
func decodeBytes(src []byte, limit int) ([]byte, int, error) {
	l, n, err := decodeUvarint(src)
	if err != nil {
		return nil, 0, err
	}
	if l > uint64(limit) {
		return nil, 0, fmt.Errorf("%w: length %d above limit %d", ErrMalformed, l, limit)
	}
	if l > uint64(len(src)-n) {
		return nil, 0, fmt.Errorf("%w: length %d exceeds input", ErrMalformed, l)
	}
	return src[n : n+int(l)], n + int(l), nil
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

var (
	_ crdt.Codec[string]     = groupCodec{}
	_ crdt.Codec[Membership] = membershipCodec{}
)
