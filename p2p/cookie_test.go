package p2p

import (
	"context"
	"strings"
	"testing"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
)

// captureLogs routes go-log output at warn and above into a logCapture
// until the returned function is called.
func captureLogs(t *testing.T) (*logCapture, func()) {
	t.Helper()
	require.NoError(t, logging.SetLogLevel("nodal/p2p", "warn"))
	pr := logging.NewPipeReader(logging.PipeFormat(logging.PlaintextOutput), logging.PipeLevel(logging.LevelWarn))
	lc := &logCapture{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := pr.Read(buf)
			if n > 0 {
				_, _ = lc.Write(append([]byte(nil), buf[:n]...))
			}
			if err != nil {
				return
			}
		}
	}()
	return lc, func() {
		_ = pr.Close()
		<-done
		_ = logging.SetLogLevel("nodal/p2p", "error")
	}
}

func TestCookieMismatchLibp2p(t *testing.T) {
	defer leaktest.AfterTest(t)()
	lc, stopLogs := captureLogs(t)
	defer stopLogs()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ra, rb := newRecorder(), newRecorder()
	cfgA := loopbackConfig("a@127.0.0.1")
	cfgA.Cookie = "alpha-cookie-7731"
	a, err := Start(ctx, cfgA, ra)
	require.NoError(t, err)
	defer stopAll(t, a)
	cfgB := loopbackConfig("b@127.0.0.1")
	cfgB.Cookie = "bravo-cookie-9924"
	b, err := Start(ctx, cfgB, rb)
	require.NoError(t, err)
	defer stopAll(t, b)

	_, err = b.ConnectAddr(ctx, a.ListenAddrs()[0])
	require.ErrorIs(t, err, ErrCookieMismatch)
	require.Contains(t, err.Error(), "cookie mismatch from a@127.0.0.1")
	// Both sides said why, in words.
	waitUntil(t, 5*time.Second, func() bool {
		return lc.contains("cookie mismatch from a@127.0.0.1") && lc.contains("cookie mismatch from b@127.0.0.1")
	}, "both sides log the mismatch; got %s", lc.all())
	// Nothing was delivered or connected, and no cookie is in the logs or the error.
	require.Empty(t, ra.snapshot())
	require.Empty(t, rb.snapshot())
	require.Empty(t, a.Peers())
	require.Empty(t, b.Peers())
	for _, c := range []string{cfgA.Cookie, cfgB.Cookie} {
		require.NotContains(t, lc.all(), c)
		require.NotContains(t, err.Error(), c)
	}
}

func TestCookieMismatchGossip(t *testing.T) {
	defer leaktest.AfterTest(t)()
	lc, stopLogs := captureLogs(t)
	defer stopLogs()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfgA := loopbackConfig("a@127.0.0.1")
	cfgA.Cookie = "alpha-cookie-7731"
	a, err := Start(ctx, cfgA, newRecorder())
	require.NoError(t, err)
	defer stopAll(t, a)
	cfgB := loopbackConfig("b@127.0.0.1", a.GossipAddr())
	cfgB.Cookie = "bravo-cookie-9924"
	_, err = Start(ctx, cfgB, newRecorder())
	require.ErrorIs(t, err, ErrCookieMismatch)
	require.Contains(t, err.Error(), "cookie mismatch")
	require.Equal(t, []string{"a@127.0.0.1"}, memberNames(a.Members()))
	waitUntil(t, 5*time.Second, func() bool {
		return lc.contains("cookie mismatch from gossip seed "+a.GossipAddr()) && // the joiner
			lc.contains("(gossip could not be decrypted)") // the seed
	}, "both sides log the mismatch; got %s", lc.all())
	for _, c := range []string{cfgA.Cookie, cfgB.Cookie} {
		require.NotContains(t, lc.all(), c)
		require.False(t, strings.Contains(err.Error(), c))
	}
}
