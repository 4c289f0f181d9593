package nodal

import (
	"fmt"
	"slices"
)

// Status is what a process is doing, as ProcessInfo reports it.
type Status int

const (
	// StatusRunning: a Func process executing its code, or an actor handling
	// a message (or about to).
	StatusRunning Status = iota + 1
	// StatusWaiting: blocked in Receive or ReceiveMatch.
	StatusWaiting
	// StatusIdle: an actor with no message to handle and no goroutine.
	StatusIdle
	// StatusExiting: an actor running its Terminate callback.
	StatusExiting
)

// String returns the status in lower case: "running", "waiting", "idle",
// "exiting".
func (s Status) String() string {
	switch s {
	case StatusRunning:
		return "running"
	case StatusWaiting:
		return "waiting"
	case StatusIdle:
		return "idle"
	case StatusExiting:
		return "exiting"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// ProcessInfo is a snapshot of a live process (erlang:process_info/1). The
// slices are sorted.
type ProcessInfo struct {
	Pid             Pid
	Status          Status
	MessageQueueLen int
	Links           []Pid
	Monitors        []Ref // monitors this process holds
	MonitoredBy     []Pid // processes monitoring this one
	RegisteredName  string
	TrapExit        bool
	GroupLeader     Pid
}

// ProcessInfo returns a snapshot of the process pid. It returns an error
// wrapping ErrNoProc if the process is not alive (or not on this node).
func (n *Node) ProcessInfo(pid Pid) (ProcessInfo, error) {
	var p *Process
	if n.isLocal(pid) {
		p = n.procs.get(pid.ID)
	}
	if p == nil {
		return ProcessInfo{}, fmt.Errorf("%w: %v", ErrNoProc, pid)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead {
		return ProcessInfo{}, fmt.Errorf("%w: %v", ErrNoProc, pid)
	}
	info := ProcessInfo{
		Pid:             p.pid,
		MessageQueueLen: p.queueLenLocked(),
		RegisteredName:  p.nameLocked(),
		TrapExit:        p.trapExit,
	}
	if p.groupLeader != nil {
		info.GroupLeader = *p.groupLeader
	}
	switch {
	case p.exiting:
		info.Status = StatusExiting
	case p.parked:
		info.Status = StatusWaiting
	case p.kind == kindActor && !p.scheduled:
		info.Status = StatusIdle
	default:
		info.Status = StatusRunning
	}
	p.links.each(func(l Pid, _ struct{}) { info.Links = append(info.Links, l) })
	slices.SortFunc(info.Links, Pid.Compare)
	p.monitors.each(func(ref Ref, _ Pid) { info.Monitors = append(info.Monitors, ref) })
	slices.SortFunc(info.Monitors, Ref.Compare)
	p.monitoredBy.each(func(_ Ref, w Pid) { info.MonitoredBy = append(info.MonitoredBy, w) })
	slices.SortFunc(info.MonitoredBy, Pid.Compare)
	return info, nil
}

// Fresh reports whether p is, as far as other processes can tell, as a
// newly spawned one: alive, with no message waiting, no links, no monitors
// it holds or that watch it, no registered name and not trapping exits.
// It answers what a ProcessInfo of p would, without building one (rpc asks
// it after every call an idle call process ran). Call it from p's own
// goroutine, as every Process method.
func (p *Process) Fresh() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.dead && p.queueLenLocked() == 0 && p.links.len() == 0 && p.monitors.len() == 0 &&
		p.monitoredBy.len() == 0 && p.nameLocked() == "" && !p.trapExit
}
