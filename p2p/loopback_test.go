package p2p

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
)

func loopbackConfig(name string, seeds ...string) Config {
	return Config{Name: name, Cookie: "secret-cookie", Seeds: seeds, Profile: ProfileLocal}
}

func TestLoopbackTwoNodesExchangeFrames(t *testing.T) {
	defer leaktest.AfterTest(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ra, rb := newRecorder(), newRecorder()
	a, err := Start(ctx, loopbackConfig("a@127.0.0.1"), ra)
	require.NoError(t, err)
	b, err := Start(ctx, loopbackConfig("b@127.0.0.1", a.GossipAddr()), rb)
	require.NoError(t, err)
	waitUntil(t, 10*time.Second, func() bool { return ra.isUp("b@127.0.0.1") && rb.isUp("a@127.0.0.1") }, "mesh")
	for i := range 100 {
		require.NoError(t, a.Send(ctx, "b@127.0.0.1", []byte(fmt.Sprint(i))))
	}
	waitUntil(t, 10*time.Second, func() bool { return len(rb.frames("a@127.0.0.1")) == 100 }, "frames")
	for i, f := range rb.frames("a@127.0.0.1") {
		require.Equal(t, fmt.Sprint(i), f)
	}
	d, err := b.Ping(ctx, "a@127.0.0.1")
	require.NoError(t, err)
	require.Positive(t, d)
	require.Equal(t, []string{"a@127.0.0.1", "b@127.0.0.1"}, memberNames(a.Members()))

	// A hidden tool that only knows b's listen address: the peer ID comes
	// from the probe dial's Noise mismatch error.
	rc := newRecorder()
	ctl, err := Start(ctx, Config{Name: "ctl@127.0.0.1", Cookie: "secret-cookie", Hidden: true}, rc)
	require.NoError(t, err)
	p, err := ctl.ConnectAddr(ctx, b.ListenAddrs()[0])
	require.NoError(t, err)
	require.Equal(t, b.Self().ID, p.ID)
	require.Equal(t, "b@127.0.0.1", p.Name)
	require.NoError(t, ctl.Send(ctx, "b@127.0.0.1", []byte("from ctl")))
	waitUntil(t, 10*time.Second, func() bool { return len(rb.frames("ctl@127.0.0.1")) == 1 }, "ctl frame")
	require.NotContains(t, memberNames(b.Members()), "ctl@127.0.0.1")
	stopAll(t, ctl)
	rc.check(t)
	stopAll(t, b)
	waitUntil(t, 10*time.Second, func() bool { return !ra.isUp("b@127.0.0.1") }, "down")
	require.ErrorIs(t, ra.downs("b@127.0.0.1")[0], ErrLeft)
	stopAll(t, a)
	ra.check(t)
	rb.check(t)
}
