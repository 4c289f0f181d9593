package p2p

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	"github.com/hashicorp/memberlist"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Meta versions: 1 has no tags (still read, so a cluster can be upgraded
// node by node from a version that sent it), 2 adds the tags.
const (
	metaVersion1 = 1
	metaVersion  = 2
)

// Meta flags.
const (
	metaHidden  = 1 << 0
	metaLeaving = 1 << 1 // the node is stopping: its coming leave is graceful
)

// nodeMeta is what a node spreads in its memberlist metadata so that every
// member can reach it over libp2p: its peer ID, addresses and incarnation,
// plus its tags and whether it is leaving.
//
// Layout (version 2): version, flags, incarnation (8, big endian), peer ID
// length and bytes, address count then each address's length and bytes,
// tag count then each tag's key length, key, value length and value. Tags
// are in key order.
type nodeMeta struct {
	Incarnation uint64
	Hidden      bool
	Leaving     bool
	ID          peer.ID
	Addrs       []ma.Multiaddr
	Tags        map[string]string
}

// encode fits the meta under limit (memberlist.MetaMaxSize): the tags
// always (checkTags bounds them so that they fit), then as many addresses
// as fit, in order.
func (m *nodeMeta) encode(limit int) []byte {
	b := make([]byte, 0, limit)
	b = append(b, metaVersion)
	var flags byte
	if m.Hidden {
		flags |= metaHidden
	}
	if m.Leaving {
		flags |= metaLeaving
	}
	b = append(b, flags)
	b = binary.BigEndian.AppendUint64(b, m.Incarnation)
	id := []byte(m.ID)
	b = append(b, byte(len(id)))
	b = append(b, id...)
	countAt := len(b)
	b = append(b, 0)
	room := limit - 1 - tagsSize(m.Tags) // the tag count and the tags come after the addresses
	n := 0
	for _, a := range m.Addrs {
		ab := a.Bytes()
		if len(ab) > 255 || len(b)+1+len(ab) > room || n == 255 {
			continue
		}
		b = append(b, byte(len(ab)))
		b = append(b, ab...)
		n++
	}
	b[countAt] = byte(n)
	b = append(b, byte(len(m.Tags)))
	for _, k := range slices.Sorted(maps.Keys(m.Tags)) {
		b = append(b, byte(len(k)))
		b = append(b, k...)
		b = append(b, byte(len(m.Tags[k])))
		b = append(b, m.Tags[k]...)
	}
	return b
}

// decodeMeta reads a meta of either version. It is bounded by the input
// (at most memberlist.MetaMaxSize bytes) and never panics.
func decodeMeta(b []byte) (*nodeMeta, error) {
	bad := func(what string) (*nodeMeta, error) {
		return nil, fmt.Errorf("%w: node meta: %s", ErrProtocol, what)
	}
	if len(b) > memberlist.MetaMaxSize {
		return bad("too long")
	}
	if len(b) < 11 || (b[0] != metaVersion && b[0] != metaVersion1) {
		return bad("bad header")
	}
	version := b[0]
	m := &nodeMeta{Hidden: b[1]&metaHidden != 0, Leaving: b[1]&metaLeaving != 0, Incarnation: binary.BigEndian.Uint64(b[2:10])}
	b = b[10:]
	idLen := int(b[0])
	if len(b) < 1+idLen+1 {
		return bad("short peer id")
	}
	id, err := peer.IDFromBytes(b[1 : 1+idLen])
	if err != nil {
		return bad("peer id")
	}
	m.ID = id
	b = b[1+idLen:]
	n := int(b[0])
	b = b[1:]
	for range n {
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			return bad("short address")
		}
		a, err := ma.NewMultiaddrBytes(b[1 : 1+int(b[0])])
		if err != nil {
			return bad("address")
		}
		m.Addrs = append(m.Addrs, a)
		b = b[1+int(b[0]):]
	}
	if version == metaVersion {
		if len(b) < 1 {
			return bad("short tags")
		}
		n := int(b[0])
		b = b[1:]
		for range n {
			k, rest, ok := cutString(b)
			if !ok || k == "" {
				return bad("tag key")
			}
			v, rest, ok := cutString(rest)
			if !ok {
				return bad("tag value")
			}
			if m.Tags == nil {
				m.Tags = make(map[string]string, n)
			}
			if _, dup := m.Tags[k]; dup {
				return bad("duplicate tag")
			}
			m.Tags[k] = v
			b = rest
		}
	}
	if len(b) != 0 {
		return bad("trailing bytes")
	}
	return m, nil
}

// cutString reads a one-byte length and that many bytes.
func cutString(b []byte) (string, []byte, bool) {
	if len(b) < 1 || len(b) < 1+int(b[0]) {
		return "", nil, false
	}
	return string(b[1 : 1+int(b[0])]), b[1+int(b[0]):], true
}
