package integration

import (
	"testing"
	"testing/synctest"
)

// RunBoth runs body twice, as subtests: "in-process" on NewCluster inside
// a testing/synctest bubble (fake clock), and "real" on NewRealCluster
// (skipped, saying why, unless root on Linux). This is how a split test
// is written once and run both fast and for real.
func RunBoth(t *testing.T, n int, opts Options, body func(t *testing.T, c *Cluster)) {
	t.Helper()
	t.Run("in-process", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) { body(t, NewCluster(t, n, opts)) })
	})
	t.Run("real", func(t *testing.T) { body(t, NewRealCluster(t, n, opts)) })
}
