package p2p

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
)

// TestSendHeadShortensARepeatedHead checks Link.SendHead: a frame whose head
// is the one of the data frame queued just before it, by SendHead, goes in
// its short form; any other data frame in between, or another head, makes
// the next one long again. A control frame (a pong) is not a data frame and
// changes nothing.
func TestSendHeadShortensARepeatedHead(t *testing.T) {
	defer leaktest.AfterTest(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h := startHidden(t, ctx)
	defer stopAll(t, h)
	c := newConn(h, Peer{Name: "x@127.0.0.1"}, nil, nil, true)
	l := Link{c: c}
	h1, h2, short := []byte("head1"), []byte("head2"), []byte{'*'}
	require.NoError(t, l.SendHead(ctx, h1, short, []byte("a")))
	require.NoError(t, l.SendHead(ctx, h1, short, []byte("b")))
	require.NoError(t, c.enqueue(ctx, framePong, []byte("01234567"), false))
	require.NoError(t, l.SendHead(ctx, h1, short, []byte("c")))
	require.NoError(t, l.Send(ctx, []byte("plain")))
	require.NoError(t, l.SendHead(ctx, h1, short, []byte("d")))
	require.NoError(t, l.SendHead(ctx, h2, short, []byte("e")))
	require.NoError(t, l.SendHead(ctx, h2, short, []byte("f")))
	require.NoError(t, l.SendHead(ctx, h1, short, []byte("g")))

	c.mu.Lock()
	queued := bytes.Clone(c.buf)
	c.mu.Unlock()
	fr := frameReader{r: bytes.NewReader(queued), max: 1 << 20}
	var got []string
	for {
		typ, p, err := fr.next()
		if err != nil {
			break
		}
		if typ == frameData {
			got = append(got, string(p))
		}
	}
	require.Equal(t, []string{"head1a", "*b", "*c", "plain", "head1d", "head2e", "*f", "head1g"}, got)

	// The size limit is the long frame's.
	big := make([]byte, h.cfg.Advanced.MaxFrameSize)
	require.ErrorIs(t, l.SendHead(ctx, h1, short, big), ErrFrameTooLarge)
}
