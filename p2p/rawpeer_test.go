package p2p

// rawPeer is a test peer that speaks the dist handshake by hand, written
// apart from handshake.go: its own encoding of hello from the wire format,
// its own MAC, its own frames. It never calls hello.append, readHello,
// handshakeMAC, cookieKey or appendFrame, so a bug shared by both halves
// of the real handshake cannot hide from it.
//
// Wire format (handshake.go):
//
//	hello  = "NDL\x01" flags:1 (1 hidden, 2 long) incarnation:8 (big endian)
//	         nonce:32 uvarint(len(name)) name count:1 { uvarint(len(a)) a }
//	dialer -> hello
//	listener -> hello MAC_listener(32)
//	dialer -> status:1 MAC_dialer(32)
//	listener -> verdict:1
//	MAC_role = HMAC-SHA256(key, role | dialer nonce | listener nonce |
//	           for s in (dialer ID, listener ID, dialer name, listener name):
//	           uvarint(len(s)) s), key = SHA-256("nodal/cookie/v1" 0x00 cookie)
//	frame  = type:1 uvarint(len) payload

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/stretchr/testify/require"
)

const rawProto = "/nodal/dist/1.1.0" // spelled out, not DistProtocol

type rawHello struct {
	name  string
	nonce [32]byte
}

type rawPeer struct {
	h      host.Host
	name   string
	cookie string // "" for an impostor that never knew it
}

func newRawPeer(t *testing.T, name, cookie string) *rawPeer {
	t.Helper()
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.DisableRelay(),
		libp2p.Ping(false),
	)
	require.NoError(t, err)
	return &rawPeer{h: h, name: name, cookie: cookie}
}

func (r *rawPeer) close() { _ = r.h.Close() }

func (r *rawPeer) listenAddr(t *testing.T) string {
	t.Helper()
	for _, a := range r.h.Addrs() {
		ip, err1 := a.ValueForProtocol(ma.P_IP4)
		port, err2 := a.ValueForProtocol(ma.P_TCP)
		if err1 == nil && err2 == nil {
			return ip + ":" + port
		}
	}
	t.Fatal("raw peer has no tcp address")
	return ""
}

func encodeHello(name string, nonce [32]byte) []byte {
	b := []byte{'N', 'D', 'L', 1, 0}
	var inc [8]byte
	binary.BigEndian.PutUint64(inc[:], 7)
	b = append(b, inc[:]...)
	b = append(b, nonce[:]...)
	var n [10]byte
	b = append(b, n[:binary.PutUvarint(n[:], uint64(len(name)))]...)
	b = append(b, name...)
	return append(b, 0) // no addresses
}

func decodeHello(r *bufio.Reader) (rawHello, error) {
	var hl rawHello
	var fixed [4 + 1 + 8 + 32]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return hl, err
	}
	if string(fixed[:4]) != "NDL\x01" {
		return hl, errors.New("bad magic")
	}
	copy(hl.nonce[:], fixed[13:])
	n, err := binary.ReadUvarint(r)
	if err != nil || n > 1024 {
		return hl, fmt.Errorf("name length %d: %v", n, err)
	}
	name := make([]byte, n)
	if _, err := io.ReadFull(r, name); err != nil {
		return hl, err
	}
	hl.name = string(name)
	count, err := r.ReadByte()
	if err != nil {
		return hl, err
	}
	for range count {
		l, err := binary.ReadUvarint(r)
		if err != nil || l > 1024 {
			return hl, fmt.Errorf("addr length %d: %v", l, err)
		}
		if _, err := r.Discard(int(l)); err != nil {
			return hl, err
		}
	}
	return hl, nil
}

// mac is the proof of role; an impostor (no cookie) sends junk of the right size.
func (r *rawPeer) mac(role string, d, l rawHello, dID, lID peer.ID) []byte {
	if r.cookie == "" {
		junk := make([]byte, 32)
		_, _ = rand.Read(junk)
		return junk
	}
	k := sha256.Sum256(append([]byte("nodal/cookie/v1\x00"), r.cookie...))
	m := hmac.New(sha256.New, k[:])
	m.Write([]byte(role))
	m.Write(d.nonce[:])
	m.Write(l.nonce[:])
	for _, s := range []string{string(dID), string(lID), d.name, l.name} {
		var n [10]byte
		m.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		m.Write([]byte(s))
	}
	return m.Sum(nil)
}

func rawNonce() (n [32]byte) {
	_, _ = rand.Read(n[:])
	return n
}

func rawFrame(typ byte, payload []byte) []byte {
	var n [10]byte
	b := append([]byte{typ}, n[:binary.PutUvarint(n[:], uint64(len(payload)))]...)
	return append(b, payload...)
}

// rawSession is the dialer's side after its handshake.
type rawSession struct {
	s       network.Stream
	br      *bufio.Reader
	verdict byte
	theirs  rawHello
}

// dial opens a dist stream to target and runs the dialer's handshake:
// it always claims success (status 0), with its MAC (junk for an impostor).
func (r *rawPeer) dial(ctx context.Context, target *Host) (*rawSession, error) {
	id := target.Self().ID
	addr, err := ma.NewMultiaddr("/ip4/127.0.0.1/tcp/" + portOf(target.ListenAddrs()[0]))
	if err != nil {
		return nil, err
	}
	if err := r.h.Connect(ctx, peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{addr}}); err != nil {
		return nil, err
	}
	s, err := r.h.NewStream(ctx, id, rawProto)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	mine := rawHello{name: r.name, nonce: rawNonce()}
	if _, err := s.Write(encodeHello(mine.name, mine.nonce)); err != nil {
		return nil, err
	}
	br := bufio.NewReader(s)
	theirs, err := decodeHello(br)
	if err != nil {
		return nil, fmt.Errorf("listener hello: %w", err)
	}
	if _, err := io.ReadFull(br, make([]byte, 32)); err != nil { // the listener's MAC, not checked
		return nil, err
	}
	reply := append([]byte{0}, r.mac("dialer", mine, theirs, r.h.ID(), id)...)
	if _, err := s.Write(reply); err != nil {
		return nil, err
	}
	v, err := br.ReadByte()
	if err != nil {
		return nil, fmt.Errorf("verdict: %w", err)
	}
	return &rawSession{s: s, br: br, verdict: v, theirs: theirs}, nil
}

// listenResult is what the raw listener saw of one handshake.
type listenResult struct {
	status byte // the real dialer's status (1 = cookie mismatch)
	err    error
}

// listen makes r answer dist streams as a listener that claims success
// (verdict 0) and then sends a data frame; each outcome goes to the channel.
func (r *rawPeer) listen() <-chan listenResult {
	out := make(chan listenResult, 8)
	r.h.SetStreamHandler(rawProto, func(s network.Stream) {
		defer func() { _ = s.Close() }()
		res := listenResult{status: 0xff}
		defer func() { out <- res }()
		br := bufio.NewReader(s)
		theirs, err := decodeHello(br)
		if err != nil {
			res.err = err
			return
		}
		mine := rawHello{name: r.name, nonce: rawNonce()}
		msg := append(encodeHello(mine.name, mine.nonce), r.mac("listener", theirs, mine, s.Conn().RemotePeer(), r.h.ID())...)
		if _, err := s.Write(msg); err != nil {
			res.err = err
			return
		}
		var reply [33]byte
		if _, err := io.ReadFull(br, reply[:]); err != nil {
			res.err = err
			return
		}
		res.status = reply[0]
		_, _ = s.Write(append([]byte{0}, rawFrame(0, []byte("from the impostor"))...))
	})
	return out
}

func portOf(hostport string) string {
	for i := len(hostport) - 1; i >= 0; i-- {
		if hostport[i] == ':' {
			return hostport[i+1:]
		}
	}
	return hostport
}
