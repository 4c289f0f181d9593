//go:build !linux

package spin

// Supported says whether a wait can spin: not here, so waiters park at
// once (a spin of runtime yields alone keeps the network poller from
// running).
const Supported = false

// Yield does nothing here.
func Yield() {}
