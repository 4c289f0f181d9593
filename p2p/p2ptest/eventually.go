package p2ptest

import (
	"fmt"
	"testing"
	"time"
)

// PollInterval is how often Eventually checks its condition. Inside a
// testing/synctest bubble the wait costs no real time.
const PollInterval = 50 * time.Millisecond

// Eventually checks cond every PollInterval until it holds, and fails the
// test with t.Fatalf if it still does not after timeout. Inside a
// testing/synctest bubble the timeout is fake time, so a generous one (60
// seconds for memberlist convergence) costs nothing while the test passes.
// msgAndArgs, if given, is a format string and its arguments describing
// the condition. It returns how long the wait took.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msgAndArgs ...any) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for !cond() {
		if !time.Now().Before(deadline) {
			t.Fatalf("p2ptest: condition not met within %v%s", timeout, describe(msgAndArgs))
		}
		time.Sleep(PollInterval)
	}
	return time.Since(start)
}

func describe(msgAndArgs []any) string {
	if len(msgAndArgs) == 0 {
		return ""
	}
	if f, ok := msgAndArgs[0].(string); ok {
		return ": " + fmt.Sprintf(f, msgAndArgs[1:]...)
	}
	return ": " + fmt.Sprint(msgAndArgs...)
}
