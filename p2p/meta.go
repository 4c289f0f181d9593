package p2p

import (
	"encoding/binary"
	"fmt"

	"github.com/hashicorp/memberlist"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

const metaVersion = 1

// nodeMeta is what a node spreads in its memberlist metadata so that every
// member can reach it over libp2p: its peer ID, addresses and incarnation.
type nodeMeta struct {
	Incarnation uint64
	Hidden      bool
	ID          peer.ID
	Addrs       []ma.Multiaddr
}

// encode fits the meta under limit (memberlist.MetaMaxSize), dropping
// addresses that do not fit.
func (m *nodeMeta) encode(limit int) []byte {
	b := make([]byte, 0, limit)
	b = append(b, metaVersion)
	var flags byte
	if m.Hidden {
		flags |= 1
	}
	b = append(b, flags)
	b = binary.BigEndian.AppendUint64(b, m.Incarnation)
	id := []byte(m.ID)
	b = append(b, byte(len(id)))
	b = append(b, id...)
	countAt := len(b)
	b = append(b, 0)
	n := 0
	for _, a := range m.Addrs {
		ab := a.Bytes()
		if len(ab) > 255 || len(b)+1+len(ab) > limit || n == 255 {
			continue
		}
		b = append(b, byte(len(ab)))
		b = append(b, ab...)
		n++
	}
	b[countAt] = byte(n)
	return b
}

func decodeMeta(b []byte) (*nodeMeta, error) {
	bad := func(what string) (*nodeMeta, error) {
		return nil, fmt.Errorf("%w: node meta: %s", ErrProtocol, what)
	}
	if len(b) > memberlist.MetaMaxSize {
		return bad("too long")
	}
	if len(b) < 11 || b[0] != metaVersion {
		return bad("bad header")
	}
	m := &nodeMeta{Hidden: b[1]&1 != 0, Incarnation: binary.BigEndian.Uint64(b[2:10])}
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
	if len(b) != 0 {
		return bad("trailing bytes")
	}
	return m, nil
}
