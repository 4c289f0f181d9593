package p2p

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/libp2p/go-libp2p/core/peer"
)

// DistProtocol is the libp2p protocol of the frame stream between two nodes.
const DistProtocol = "/nodal/dist/1.1.0"

var helloMagic = [4]byte{'N', 'D', 'L', 1}

const (
	nonceLen     = 32
	macLen       = sha256.Size
	maxHelloAddr = 16
	maxAddrLen   = 256
)

// Handshake status codes (listener's verdict, dialer's cookie check).
const (
	hsOK byte = iota
	hsCookieMismatch
	hsNameInUse
	hsNameMode
	hsTieBreak // the peer keeps (or is making) another connection to us
	hsStopping
	hsBadHello
)

func statusErr(code byte, node string) error {
	var err error
	switch code {
	case hsOK:
		return nil
	case hsCookieMismatch:
		err = ErrCookieMismatch
	case hsNameInUse:
		err = fmt.Errorf("%w: the peer already has a live connection to a node named so", ErrNameInUse)
	case hsNameMode:
		err = ErrNameMode
	case hsTieBreak:
		err = errTieBreak
	case hsStopping:
		err = fmt.Errorf("%w: peer is stopping", ErrNoConnection)
	default:
		err = fmt.Errorf("%w: handshake refused (code %d)", ErrProtocol, code)
	}
	return &PeerError{Node: node, Err: err}
}

// errTieBreak marks a dial refused because the peer keeps another connection
// to us (simultaneous dial); the surviving connection will show up.
var errTieBreak = fmt.Errorf("%w: simultaneous connection, the other one is kept", ErrNoConnection)

// hello is what each side says first.
type hello struct {
	Name        string
	Incarnation uint64
	Hidden      bool
	Long        bool
	Nonce       [nonceLen]byte
	Addrs       []string
	// Direct (the dialer's) says it can move the frames to a direct
	// connection; DirectPort (the listener's, when the dialer asked) is the
	// port of its direct listener (direct.go), 0 for none.
	Direct     bool
	DirectPort uint16
}

// Hello flags.
const (
	helloHidden     = 1
	helloLong       = 2
	helloDirect     = 4 // the dialer can use a direct connection
	helloDirectPort = 8 // a 2-byte direct listener port follows the addresses
)

func deriveKey(domain, cookie string) []byte {
	h := sha256.New()
	h.Write([]byte(domain))
	h.Write([]byte{0})
	h.Write([]byte(cookie))
	return h.Sum(nil)
}

func cookieKey(cookie string) []byte { return deriveKey("nodal/cookie/v1", cookie) }
func gossipKey(cookie string) []byte { return deriveKey("nodal/gossip/v1", cookie) }

func newNonce() (n [nonceLen]byte) {
	_, _ = rand.Read(n[:]) // crypto/rand.Read never fails (Go 1.24+)
	return n
}

// handshakeMAC proves knowledge of the cookie over both nonces, both peer
// IDs and both names; role separates the dialer's proof from the listener's.
func handshakeMAC(key []byte, role string, d, l *hello, dID, lID peer.ID) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(role))
	m.Write(d.Nonce[:])
	m.Write(l.Nonce[:])
	for _, s := range []string{string(dID), string(lID), d.Name, l.Name} {
		var n [binary.MaxVarintLen64]byte
		m.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		m.Write([]byte(s))
	}
	return m.Sum(nil)
}

func (hl *hello) append(b []byte) []byte {
	b = append(b, helloMagic[:]...)
	var flags byte
	if hl.Hidden {
		flags |= helloHidden
	}
	if hl.Long {
		flags |= helloLong
	}
	if hl.Direct {
		flags |= helloDirect
	}
	if hl.DirectPort != 0 {
		flags |= helloDirectPort
	}
	b = append(b, flags)
	b = binary.BigEndian.AppendUint64(b, hl.Incarnation)
	b = append(b, hl.Nonce[:]...)
	b = binary.AppendUvarint(b, uint64(len(hl.Name)))
	b = append(b, hl.Name...)
	addrs := hl.Addrs
	if len(addrs) > maxHelloAddr {
		addrs = addrs[:maxHelloAddr]
	}
	n := 0
	for _, a := range addrs {
		if len(a) <= maxAddrLen {
			n++
		}
	}
	b = append(b, byte(n))
	for _, a := range addrs {
		if len(a) <= maxAddrLen {
			b = binary.AppendUvarint(b, uint64(len(a)))
			b = append(b, a...)
		}
	}
	if hl.DirectPort != 0 {
		b = binary.BigEndian.AppendUint16(b, hl.DirectPort)
	}
	return b
}

// readHello reads a hello with every length bounded.
func readHello(r *bufio.Reader) (*hello, error) {
	var hdr [4 + 1 + 8 + nonceLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, unexpectedEOF(err)
	}
	if [4]byte(hdr[:4]) != helloMagic {
		return nil, fmt.Errorf("%w: bad handshake magic", ErrProtocol)
	}
	hl := &hello{
		Hidden:      hdr[4]&helloHidden != 0,
		Long:        hdr[4]&helloLong != 0,
		Direct:      hdr[4]&helloDirect != 0,
		Incarnation: binary.BigEndian.Uint64(hdr[5:13]),
		Nonce:       [nonceLen]byte(hdr[13:]),
	}
	name, err := readString(r, maxNameLen)
	if err != nil {
		return nil, err
	}
	hl.Name = name
	n, err := r.ReadByte()
	if err != nil {
		return nil, unexpectedEOF(err)
	}
	if n > maxHelloAddr {
		return nil, fmt.Errorf("%w: %d addresses in hello", ErrProtocol, n)
	}
	for range n {
		a, err := readString(r, maxAddrLen)
		if err != nil {
			return nil, err
		}
		hl.Addrs = append(hl.Addrs, a)
	}
	if hdr[4]&helloDirectPort != 0 {
		var p [2]byte
		if _, err := io.ReadFull(r, p[:]); err != nil {
			return nil, unexpectedEOF(err)
		}
		if hl.DirectPort = binary.BigEndian.Uint16(p[:]); hl.DirectPort == 0 {
			return nil, fmt.Errorf("%w: direct port 0 in hello", ErrProtocol)
		}
	}
	return hl, nil
}

func readString(r *bufio.Reader, max int) (string, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrProtocol, unexpectedEOF(err))
	}
	if n > uint64(max) {
		return "", fmt.Errorf("%w: string of %d bytes, limit %d", ErrProtocol, n, max)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", unexpectedEOF(err)
	}
	return string(b), nil
}

func readMAC(r *bufio.Reader) ([]byte, error) {
	b := make([]byte, macLen)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, unexpectedEOF(err)
	}
	return b, nil
}
