package nodal

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// waitBound is how long a test waits for something that should happen at
// once: a hang guard, not a timing assertion.
const waitBound = 10 * time.Second

// procT is the require.TestingT for assertions that run in a process
// goroutine, where require(t, ...) with the test's t is wrong (FailNow
// would end the process goroutine, not the test, and the test would wait
// forever). A failed assertion is recorded and ends the process with a
// panic (its exit reason); the test goroutine sees it through waitFor and
// check, which fail the test at once with the process's message.
type procT struct {
	mu     sync.Mutex
	errs   []string
	once   sync.Once
	failed chan struct{} // closed at the first failure
}

var _ require.TestingT = (*procT)(nil)

// errProcAssert is the panic value (and exit reason) of a failed procT assertion.
type errProcAssert struct{ msg string }

func (e errProcAssert) Error() string { return "assertion failed in a process: " + e.msg }

func newProcT() *procT { return &procT{failed: make(chan struct{})} }

// Errorf implements require.TestingT.
func (pt *procT) Errorf(format string, args ...any) {
	pt.mu.Lock()
	pt.errs = append(pt.errs, fmt.Sprintf(format, args...))
	pt.mu.Unlock()
	pt.once.Do(func() { close(pt.failed) })
}

// FailNow implements require.TestingT: it ends the process.
func (pt *procT) FailNow() {
	pt.once.Do(func() { close(pt.failed) })
	panic(errProcAssert{msg: pt.message()})
}

// Fatal records args and ends the process.
func (pt *procT) Fatal(args ...any) {
	pt.Errorf("%s", fmt.Sprint(args...))
	pt.FailNow()
}

// Fatalf records the message and ends the process.
func (pt *procT) Fatalf(format string, args ...any) {
	pt.Errorf(format, args...)
	pt.FailNow()
}

// Helper lets helpers that take a tb accept a procT.
func (pt *procT) Helper() {}

func (pt *procT) message() string {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	return strings.Join(pt.errs, "\n")
}

// check fails the test (on the test goroutine) if an assertion in a process failed.
func (pt *procT) check(t testing.TB) {
	t.Helper()
	select {
	case <-pt.failed:
		t.Fatalf("in a process:\n%s", pt.message())
	default:
	}
}

// tb is what the receive helpers need: a *testing.T or a *procT.
type tb interface {
	require.TestingT
	Helper()
	Fatalf(format string, args ...any)
}

// waitFor receives one value from ch on the test goroutine, failing the
// test after waitBound, or at once when an assertion in a process
// (reported to pt, which may be nil) failed.
func waitFor[T any](t testing.TB, pt *procT, ch <-chan T, what string) T {
	t.Helper()
	return waitForWithin(t, pt, ch, waitBound, what)
}

// waitForWithin is waitFor with another bound, for waits on much work.
func waitForWithin[T any](t testing.TB, pt *procT, ch <-chan T, bound time.Duration, what string) T {
	t.Helper()
	var failed <-chan struct{}
	if pt != nil {
		failed = pt.failed
	}
	timer := time.NewTimer(bound)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-failed:
		t.Fatalf("waiting for %s, in a process:\n%s", what, pt.message())
	case <-timer.C:
		t.Fatalf("timed out after %s waiting for %s", bound, what)
	}
	var zero T
	return zero
}

// hold is a wait inside a process (or a callback) on a channel the test
// closes: bounded, so that a test that failed before closing it does not
// leave a goroutine that Stop waits for forever.
func hold(ch <-chan struct{}) {
	select {
	case <-ch:
	case <-time.After(waitBound):
	}
}

// testCtx bounds a call made from the test goroutine by waitBound.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	t.Cleanup(cancel)
	return ctx
}
