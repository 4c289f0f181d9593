//go:build !linux

package nodal

// spinSupported says whether spin can yield the OS thread: not here, so
// processes park at once (a spin of runtime yields alone keeps the
// network poller from running).
const spinSupported = false

func osYield() {}
