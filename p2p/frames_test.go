package p2p

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nodal-go/nodal/p2p/p2ptest"
	"github.com/stretchr/testify/require"
)

func TestOversizedFrames(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New()
		defer net.Close()
		cfgA := simConfig(net, "a@127.0.0.1")
		cfgA.Advanced.MaxFrameSize = 1024
		a := startSim(t, cfgA)
		cfgB := simConfig(net, "b@127.0.0.1", a.GossipAddr())
		cfgB.Advanced.MaxFrameSize = 4096
		b := startSim(t, cfgB)
		nodes := []*simNode{a, b}
		p2ptest.Eventually(t, 60*time.Second, func() bool { return meshed(nodes) })
		ctx := context.Background()
		// The sender refuses what its own limit does not allow.
		err := a.Send(ctx, "b@127.0.0.1", make([]byte, 1025))
		require.ErrorIs(t, err, ErrFrameTooLarge)
		require.ErrorIs(t, a.TrySend("b@127.0.0.1", make([]byte, 1025)), ErrFrameTooLarge)
		require.NoError(t, a.Send(ctx, "b@127.0.0.1", make([]byte, 1024)))
		// The receiver closes a connection that brings more than its limit.
		require.NoError(t, b.Send(ctx, "a@127.0.0.1", []byte("before")))
		require.NoError(t, b.Send(ctx, "a@127.0.0.1", make([]byte, 2000)))
		p2ptest.Eventually(t, 10*time.Second, func() bool { return len(a.rec.downs("b@127.0.0.1")) == 1 })
		require.ErrorIs(t, a.rec.downs("b@127.0.0.1")[0], ErrFrameTooLarge)
		require.Equal(t, []string{"before"}, a.rec.frames("b@127.0.0.1"))
		require.Equal(t, uint64(1), a.Stats().Total.DecodeErrors)
		stopSim(t, nodes...)
		settle()
	})
}

// blockingHandler holds every frame until released.
type blockingHandler struct {
	*recorder
	release chan struct{}
	once    sync.Once
}

func (b *blockingHandler) Frame(p Peer, data []byte) {
	select { // bounded: a failed test must not leave the reader stuck forever
	case <-b.release:
	case <-time.After(10 * time.Minute):
	}
	b.recorder.Frame(p, data)
}

func (b *blockingHandler) free() { b.once.Do(func() { close(b.release) }) }

func TestBackPressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New()
		defer net.Close()
		cfgA := simConfig(net, "a@127.0.0.1")
		cfgA.Advanced.SendQueueBytes = 4096
		a := startSim(t, cfgA)
		slow := &blockingHandler{recorder: newRecorder(), release: make(chan struct{})}
		defer slow.free()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b, err := Start(ctx, simConfig(net, "b@127.0.0.1", a.GossipAddr()), slow)
		require.NoError(t, err)
		p2ptest.Eventually(t, 60*time.Second, func() bool { return a.rec.isUp("b@127.0.0.1") && slow.isUp("a@127.0.0.1") })
		// b's reader is stuck in Frame: the stream fills, then a's queue.
		frame := bytes.Repeat([]byte("x"), 1000)
		sent := 0
		for {
			err := a.TrySend("b@127.0.0.1", frame)
			if err != nil {
				require.ErrorIs(t, err, ErrQueueFull)
				break
			}
			sent++
			time.Sleep(time.Millisecond) // let the writer move what it can
			require.Less(t, sent, 1<<20, "queue never filled")
		}
		// Send blocks while full, bounded by its ctx.
		sctx, scancel := context.WithTimeout(context.Background(), time.Second)
		err = a.Send(sctx, "b@127.0.0.1", frame)
		scancel()
		require.ErrorIs(t, err, ErrTimeout)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, uint64(1), a.Stats().Total.Dropped)
		// Once the receiver moves again, everything queued arrives, in order.
		slow.free()
		p2ptest.Eventually(t, 30*time.Second, func() bool { return len(slow.frames("a@127.0.0.1")) == sent })
		require.NoError(t, a.Send(ctx, "b@127.0.0.1", []byte("after")))
		p2ptest.Eventually(t, 30*time.Second, func() bool { return len(slow.frames("a@127.0.0.1")) == sent+1 })
		st := a.Stats()
		require.Equal(t, uint64(sent+1), st.Peers[0].FramesOut)
		require.Equal(t, "b@127.0.0.1", st.Peers[0].Name)
		require.Equal(t, uint64(sent+1), b.Stats().Total.FramesIn)
		require.NoError(t, b.Stop(ctx))
		stopSim(t, a)
		slow.check(t)
		settle()
	})
}

func TestSimultaneousConnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New()
		defer net.Close()
		// Not joined: the two meet only through ConnectAddr, from both sides at once.
		a := startSim(t, simConfig(net, "a@127.0.0.1"))
		b := startSim(t, simConfig(net, "b@127.0.0.1"))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		errs := make([]error, 2)
		wg.Go(func() { _, errs[0] = a.ConnectAddr(ctx, b.ListenAddrs()[0]) })
		wg.Go(func() { _, errs[1] = b.ConnectAddr(ctx, a.ListenAddrs()[0]) })
		wg.Wait()
		require.NoError(t, errs[0])
		require.NoError(t, errs[1])
		p2ptest.Eventually(t, 10*time.Second, func() bool { return a.rec.isUp("b@127.0.0.1") && b.rec.isUp("a@127.0.0.1") })
		time.Sleep(10 * time.Second)
		require.Len(t, a.rec.of("b@127.0.0.1"), 1, "exactly one connection")
		require.Len(t, b.rec.of("a@127.0.0.1"), 1, "exactly one connection")
		// Both ends use the same one: frames flow both ways.
		require.NoError(t, a.Send(ctx, "b@127.0.0.1", []byte("ab")))
		require.NoError(t, b.Send(ctx, "a@127.0.0.1", []byte("ba")))
		p2ptest.Eventually(t, 10*time.Second, func() bool {
			return len(a.rec.frames("b@127.0.0.1")) == 1 && len(b.rec.frames("a@127.0.0.1")) == 1
		})
		// Disconnect: both sides see ErrDisconnected.
		require.NoError(t, a.Disconnect("b@127.0.0.1"))
		p2ptest.Eventually(t, 10*time.Second, func() bool { return !a.rec.isUp("b@127.0.0.1") && !b.rec.isUp("a@127.0.0.1") })
		require.ErrorIs(t, a.rec.downs("b@127.0.0.1")[0], ErrDisconnected)
		require.ErrorIs(t, b.rec.downs("a@127.0.0.1")[0], ErrDisconnected)
		// A node met before can be reached again by name.
		require.NoError(t, b.Connect(ctx, "a@127.0.0.1"))
		p2ptest.Eventually(t, 10*time.Second, func() bool { return a.rec.isUp("b@127.0.0.1") })
		stopSim(t, a, b)
		settle()
	})
}
