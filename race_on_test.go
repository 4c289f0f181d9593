//go:build race

package nodal

// raceEnabled says the tests run under the race detector.
const raceEnabled = true
