//go:build !linux

package integration

// NewRealCluster runs nodes as OS processes in network namespaces of
// their own, which needs Linux: elsewhere it skips the test.
func NewRealCluster(t TB, n int, opts Options) *Cluster {
	t.Helper()
	t.Skip("integration: real mode needs Linux (network namespaces and iptables)")
	return nil
}
