//go:build race

package rpc

// raceEnabled: under the race detector sync.Pool drops a share of what is
// put back, so allocation counts are not asserted.
const raceEnabled = true
