package p2ptest_test

import (
	"fmt"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// fakeTB records a Fatalf and stops the goroutine, as testing.T does.
type fakeTB struct {
	testing.TB
	msg string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestEventually(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		ready := start.Add(5 * time.Second)
		waited := p2ptest.Eventually(t, time.Minute, func() bool { return !time.Now().Before(ready) })
		require.Equal(t, 5*time.Second, waited, "polls on fake time")

		f := &fakeTB{}
		done := make(chan struct{})
		go func() {
			defer close(done)
			p2ptest.Eventually(f, 3*time.Second, func() bool { return false }, "node %s up", "a@h")
		}()
		<-done
		require.Equal(t, "p2ptest: condition not met within 3s: node a@h up", f.msg)
		require.Equal(t, ready.Add(3*time.Second), time.Now())
	})
}
