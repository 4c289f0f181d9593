package p2p

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/hashicorp/memberlist"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/stretchr/testify/require"
)

// FuzzFrameDecoder feeds arbitrary bytes to the frame decoder: it must
// never panic, never hand out more than the limit, and re-encoding what it
// decoded must give back the bytes it consumed.
func FuzzFrameDecoder(f *testing.F) {
	var seed []byte
	seed = appendFrame(seed, frameData, []byte("hello"))
	seed = appendFrame(seed, framePing, []byte("12345678"))
	seed = appendFrame(seed, frameBye, []byte{byeLeft})
	f.Add(seed)
	f.Add([]byte{0, 0x80, 0x80, 0x80, 0x80, 0x10})
	f.Add([]byte{0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{7, 1, 0})
	f.Add(appendFrame(nil, frameData, make([]byte, 300)))
	const max = 256
	f.Fuzz(func(t *testing.T, in []byte) {
		fr := frameReader{r: bufio.NewReaderSize(bytes.NewReader(in), 16), max: max}
		var out []byte
		for {
			typ, p, err := fr.next()
			if err != nil {
				if errors.Is(err, io.EOF) {
					require.True(t, bytes.Equal(in, out), "clean EOF only at a frame boundary")
				}
				require.True(t, errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
					errors.Is(err, ErrProtocol) || errors.Is(err, ErrFrameTooLarge), "unexpected error %v", err)
				return
			}
			require.LessOrEqual(t, len(p), max)
			out = appendFrame(out, typ, p)
			require.True(t, bytes.HasPrefix(in, out), "re-encoding differs from input")
		}
	})
}

// FuzzHello checks the handshake parser on arbitrary input.
func FuzzHello(f *testing.F) {
	h := &hello{Name: "a@127.0.0.1", Incarnation: 42, Hidden: true, Long: true, Addrs: []string{"/ip4/127.0.0.1/tcp/1"}}
	f.Add(h.append(nil))
	f.Add((&hello{Name: "b@127.0.0.1", Direct: true, DirectPort: 40000}).append(nil))
	f.Add([]byte("NDL\x01"))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := readHello(bufio.NewReader(bytes.NewReader(in)))
		if err != nil {
			return
		}
		require.LessOrEqual(t, len(got.Name), maxNameLen)
		require.LessOrEqual(t, len(got.Addrs), maxHelloAddr)
		again, err := readHello(bufio.NewReader(bytes.NewReader(got.append(nil))))
		require.NoError(t, err)
		require.Equal(t, got, again)
	})
}

// FuzzMeta checks the memberlist meta decoder on arbitrary input.
func FuzzMeta(f *testing.F) {
	f.Add([]byte{metaVersion, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0})
	_, pub, _ := crypto.GenerateEd25519Key(rand.Reader)
	id, _ := peer.IDFromPublicKey(pub)
	f.Add((&nodeMeta{Incarnation: 1, ID: id, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/10.0.0.1/tcp/4001")}}).encode(512))
	f.Add((&nodeMeta{Incarnation: 2, Leaving: true, ID: id, Tags: map[string]string{"svc": "registry", "z": ""}}).encode(512))
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := decodeMeta(in)
		if err != nil {
			require.ErrorIs(t, err, ErrProtocol)
			return
		}
		if checkTags(m.Tags) != nil {
			return // decodable but more than this node would send
		}
		again, err := decodeMeta(m.encode(512))
		require.NoError(t, err)
		require.Equal(t, m.Incarnation, again.Incarnation)
		require.Equal(t, m.ID, again.ID)
		require.Equal(t, m.Hidden, again.Hidden)
		require.Equal(t, m.Leaving, again.Leaving)
		require.Equal(t, m.Tags, again.Tags)
	})
}

func TestMetaFitsLimit(t *testing.T) {
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	require.NoError(t, err)
	id, err := peer.IDFromPublicKey(pub)
	require.NoError(t, err)
	m := &nodeMeta{Incarnation: 7, ID: id}
	for i := range 100 {
		m.Addrs = append(m.Addrs, ma.StringCast(fmt.Sprintf("/dns/host-%03d.example.com/tcp/%d", i, 4000+i)))
	}
	b := m.encode(memberlist.MetaMaxSize)
	require.LessOrEqual(t, len(b), memberlist.MetaMaxSize)
	got, err := decodeMeta(b)
	require.NoError(t, err)
	require.Equal(t, id, got.ID)
	require.Equal(t, uint64(7), got.Incarnation)
	require.NotEmpty(t, got.Addrs)
	require.Equal(t, m.Addrs[:len(got.Addrs)], got.Addrs, "a prefix of the addresses, in order")

	// The largest tags still leave room for addresses.
	m.Tags = map[string]string{"k": string(make([]byte, MaxTagsSize-3))}
	require.NoError(t, checkTags(m.Tags))
	b = m.encode(memberlist.MetaMaxSize)
	require.LessOrEqual(t, len(b), memberlist.MetaMaxSize)
	got, err = decodeMeta(b)
	require.NoError(t, err)
	require.Equal(t, m.Tags, got.Tags)
	require.GreaterOrEqual(t, len(got.Addrs), 5)

	// A version 1 meta (no tags) is still read.
	v1 := (&nodeMeta{Incarnation: 9, ID: id}).encode(memberlist.MetaMaxSize)
	v1[0] = metaVersion1
	v1 = v1[:len(v1)-1] // no tag count
	got, err = decodeMeta(v1)
	require.NoError(t, err)
	require.Equal(t, uint64(9), got.Incarnation)
	require.Nil(t, got.Tags)
}

// FuzzGossipFrame checks the gossip frame decoder (push/pull state and
// broadcasts) on arbitrary input: no panic, and what it decodes encodes
// back to the input.
func FuzzGossipFrame(f *testing.F) {
	f.Add(appendGossip(nil, gossipBroadcast, "a@127.0.0.1", 42, []byte("hello")))
	f.Add(appendGossip(nil, gossipState, "b@host", 1, nil))
	f.Add([]byte{gossipVersion, gossipBroadcast, 255})
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, kind := range []byte{gossipState, gossipBroadcast} {
			from, inc, payload, err := decodeGossip(in, kind)
			if err != nil {
				require.ErrorIs(t, err, ErrProtocol)
				continue
			}
			require.LessOrEqual(t, len(from), maxNameLen)
			require.Equal(t, in, appendGossip(nil, kind, from, inc, payload))
		}
	})
}
