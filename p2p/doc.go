// Package p2p moves bytes between named, authenticated nodes and reports who
// is in the cluster. It knows nothing of processes.
package p2p
