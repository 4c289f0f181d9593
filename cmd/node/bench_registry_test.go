package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/nodal-go/nodal"
	"github.com/stretchr/testify/require"
)

// TestVisibleLag: the k-th registration to return is visible on a node
// from that node's first sample counting more than k names, and on every
// node from the latest of those.
func TestVisibleLag(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	done := []time.Duration{ms(3), ms(1), ms(2), ms(4)} // returned in the order 1, 2, 3, 4 ms
	polls := [][]countSample{
		{{ms(2), 1}, {ms(5), 3}, {ms(9), 4}}, // b: 1st at 2, 2nd and 3rd at 5, 4th at 9
		{{ms(1), 0}, {ms(6), 2}, {ms(8), 4}}, // c: 1st and 2nd at 6, 3rd and 4th at 8
	}
	// lags, everywhere: 1st max(2-1, 6-1) = 5, 2nd max(5-2, 6-2) = 4,
	// 3rd max(5-3, 8-3) = 5, 4th max(9-4, 8-4) = 5.
	p50, p99 := visibleLag(done, polls)
	if p50 != ms(5) || p99 != ms(5) {
		t.Fatalf("p50 %v p99 %v, want 5ms and 5ms", p50, p99)
	}
	p50, p99 = visibleLag(done, polls[:1]) // b alone: 1, 3, 2, 5
	if p50 != ms(3) || p99 != ms(5) {
		t.Fatalf("b alone: p50 %v p99 %v, want 3ms and 5ms", p50, p99)
	}
}

// A bench_regwatch on b counts the names registered on a as they become
// visible there and, once it sees the number it waits for, sends its
// samples: increasing counts, the last one that number, timed in order.
func TestRegWatch(t *testing.T) {
	defer leaktest.AfterTest(t)()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const cookie = "regwatch-test-cookie"
	a := startTestNode(t, ctx, startOptions{Name: "rwa@127.0.0.1", Cookie: cookie})
	defer stopNode(a.Node)
	b := startTestNode(t, ctx, startOptions{Name: "rwb@127.0.0.1", Cookie: cookie, Join: []string{a.Gossip}})
	defer stopNode(b.Node)
	require.Eventually(t, func() bool { return len(a.Registry.Nodes()) == 1 }, 30*time.Second, 10*time.Millisecond)
	const want = 50
	sink := make(chan benchRegSamples, 1)
	_, err := a.Node.Spawn(func(p *nodal.Process) error {
		if _, err := p.SpawnOn(ctx, b.Node.Name(), "bench_regwatch", benchRegWatchArgs{Reply: p.Self(), Want: want}); err != nil {
			return err
		}
		for i := range want {
			pid, err := p.Spawn(func(q *nodal.Process) error { <-q.Context().Done(); return nil })
			if err != nil {
				return err
			}
			if err := a.Registry.Register(ctx, fmt.Sprintf("rw-%d", i), pid); err != nil {
				return err
			}
		}
		m, err := p.Receive(ctx)
		if err != nil {
			return err
		}
		sink <- m.(benchRegSamples)
		return nil
	})
	require.NoError(t, err)
	var s benchRegSamples
	select {
	case s = <-sink:
	case <-ctx.Done():
		t.Fatal("no samples from bench_regwatch")
	}
	require.NotEmpty(t, s.Count)
	require.Equal(t, want, s.Count[len(s.Count)-1], "it ends when it sees them all")
	require.True(t, slices.IsSorted(s.At), "samples in time order")
	for i := 1; i < len(s.Count); i++ {
		require.Greater(t, s.Count[i], s.Count[i-1], "a sample only when the count grew")
	}

	// One waiting for a count that never comes ends with the process it
	// reports to (linked), here one that fails.
	watcher := make(chan nodal.Pid, 1)
	_, err = a.Node.Spawn(func(p *nodal.Process) error {
		w, err := p.SpawnOn(ctx, b.Node.Name(), "bench_regwatch", benchRegWatchArgs{Reply: p.Self(), Want: 1 << 30})
		if err != nil {
			return err
		}
		watcher <- w
		return errors.New("the bench failed")
	})
	require.NoError(t, err)
	w := <-watcher
	require.Eventually(t, func() bool {
		_, err := b.Node.ProcessInfo(w)
		return err != nil
	}, 30*time.Second, 10*time.Millisecond, "the watcher ends with its bench")
}
