package p2p

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/sec"
	ma "github.com/multiformats/go-multiaddr"
)

// ConnectAddr connects to the node whose libp2p listener is listenAddr
// ("host:port") without knowing its name or peer ID, as a ctl tool that
// only knows --listen does, and returns that node once the cookie
// handshake is done.
func (h *Host) ConnectAddr(ctx context.Context, listenAddr string) (Peer, error) {
	addr, err := tcpMultiaddr(listenAddr)
	if err != nil {
		return Peer{}, err
	}
	var id peer.ID
	if r, ok := h.cfg.Advanced.Network.(ListenResolver); ok {
		var found bool
		if id, found = r.HostAt(listenAddr); !found {
			return Peer{}, &PeerError{Node: listenAddr, Err: fmt.Errorf("%w: nothing listens there", ErrNoConnection)}
		}
	} else if id, err = h.probePeerID(ctx, addr); err != nil {
		return Peer{}, &PeerError{Node: listenAddr, Err: err}
	}
	c, err := h.dial(ctx, peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{addr}}, "")
	if err != nil {
		return Peer{}, err
	}
	p := c.peer
	p.Addrs = append([]string(nil), p.Addrs...)
	return p, nil
}

// probePeerID learns who listens on addr: it dials with a throwaway peer ID
// and reads the real one from the security handshake's mismatch error.
func (h *Host) probePeerID(ctx context.Context, addr ma.Multiaddr) (peer.ID, error) {
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return "", err
	}
	fake, err := peer.IDFromPublicKey(pub)
	if err != nil {
		return "", err
	}
	defer h.lh.Peerstore().RemovePeer(fake)
	defer h.lh.Peerstore().ClearAddrs(fake)
	err = h.lh.Connect(ctx, peer.AddrInfo{ID: fake, Addrs: []ma.Multiaddr{addr}})
	if err == nil {
		_ = h.lh.Network().ClosePeer(fake)
		return "", fmt.Errorf("%w: probe dial unexpectedly succeeded", ErrProtocol)
	}
	var mm sec.ErrPeerIDMismatch
	if errors.As(err, &mm) && mm.Actual != "" {
		return mm.Actual, nil
	}
	var mmp *sec.ErrPeerIDMismatch
	if errors.As(err, &mmp) && mmp.Actual != "" {
		return mmp.Actual, nil
	}
	if ctx.Err() != nil {
		return "", ctxErr(ctx)
	}
	return "", fmt.Errorf("%w: %v", ErrNoConnection, err)
}
