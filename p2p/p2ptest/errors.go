package p2ptest

import "errors"

// Sentinel errors of the simulated network. Callers branch with errors.Is;
// returned errors wrap one of these and name the address or node involved.
var (
	// ErrClosed is returned by every constructor after Network.Close.
	ErrClosed = errors.New("p2ptest: network closed")
	// ErrShutdown is returned by a Transport's send and dial methods after
	// its Shutdown, like a closed socket.
	ErrShutdown = errors.New("p2ptest: transport shut down")
	// ErrInvalidAddr is returned for an address that is not "host:port"
	// with a port in 0..65535.
	ErrInvalidAddr = errors.New("p2ptest: invalid address")
	// ErrAddrInUse is returned when a live transport or host already holds
	// the requested "ip:port", like EADDRINUSE.
	ErrAddrInUse = errors.New("p2ptest: address already in use")
	// ErrNoFreePort is returned when every port of an IP is taken.
	ErrNoFreePort = errors.New("p2ptest: no free port")
	// ErrPeerIDInUse is returned by NewHost when a live host already has the
	// peer ID derived from the key (mocknet cannot hold two).
	ErrPeerIDInUse = errors.New("p2ptest: peer id already in use")
	// ErrNoRoute is returned when an address names a host that the network
	// never allocated an IP for (there is no DNS in the simulation).
	ErrNoRoute = errors.New("p2ptest: no route to host")
	// ErrRefused is returned by a dial when nothing listens at the address
	// or the listener's accept backlog is full, like ECONNREFUSED.
	ErrRefused = errors.New("p2ptest: connection refused")
	// ErrUnreachable is returned by a dial across a cut (Partition, Split,
	// Isolate) or lost to Drop. It fails at once instead of waiting for the
	// dial timeout, so a cut never blocks the dialer.
	ErrUnreachable = errors.New("p2ptest: network unreachable")
)
