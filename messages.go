package nodal

// Down is the message a monitoring process receives when the monitored
// process exits (or did not exist: reason noproc; or its node is unreachable:
// reason noconnection). Each monitor delivers at most one Down, exactly one
// unless it is demonitored first.
type Down struct {
	Ref    Ref
	Pid    Pid
	Reason error
}

// Exit is the message a process that traps exits receives instead of dying
// from an exit signal: From is the linked process that exited (or the sender
// of the explicit exit signal; the zero Pid for the node itself, as from
// Node.Exit and Node.Stop).
type Exit struct {
	From   Pid
	Reason error
}

// NodeDown is the message MonitorNode delivers when the monitored node becomes
// unreachable.
type NodeDown struct {
	Node   string
	Reason error
}
