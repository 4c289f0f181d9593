// Package integration tests nodal across real OS processes: it builds the
// nodal binary (cmd/node) once, starts nodes with "nodal start" on loopback,
// drives them with "nodal ctl" and with nodes embedded in the test, and
// kills them for real (kill -9).
//
// # Usage
//
//	go test -race ./integration/
//
// The helpers in helpers_test.go (startNode, ctl, ctlJSON, eventually)
// are meant to be reused by further tests here, such as network
// partitions with netns and iptables.
//
// # Concurrency
//
// Each test owns the processes it starts; a cluster's close kills them and
// waits for their output readers, and t.Cleanup calls it too.
//
// # Guarantees
//
// Tests pick ports by binding port 0 (the nodes report what they bound in
// their up line), never assert on timing, and leave no process behind.
package integration
