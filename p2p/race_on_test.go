//go:build race

package p2p

// raceEnabled: the race detector caps live goroutines at 8128, which a
// 50-node full mesh on mocknet exceeds.
const raceEnabled = true
