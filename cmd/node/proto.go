package main

import (
	"fmt"

	"github.com/nodal-go/nodal"
)

// ctlServiceName is the reserved name of the ctl service on every started node.
const ctlServiceName = "nodal_ctl"

// ctlRequest asks a node's ctl service to run one command.
type ctlRequest struct {
	Cmd  string
	Args []string
}

// ctlResponse is the ctl service's answer; which fields are set depends on
// the command. Error is set on failure.
type ctlResponse struct {
	Error       string
	Node        string
	Incarnation uint64
	Listen      []string
	Gossip      string
	ListenBound []string // info: the libp2p addresses bound (Listen: advertised)
	GossipBound string   // info: the gossip address bound (Gossip: advertised)
	Nodes       []string
	Hidden      []string
	Registered  []string
	Count       int
	Pid         string
	Reply       string
	Reason      string
	RTTMicros   float64
	Processes   []ctlProcess
	Func        string // rpc: the function called
	Result      string // rpc: its result as JSON

	Group       string         // groups: the group
	Pids        []string       // groups: members
	GroupCounts map[string]int // groups: memberships per group

	Name  string            // register, unregister, whereis: the global name
	Names map[string]string // registered: global name -> pid
	// NamesCounted: registered --count, Count holds how many (Names is nil)
	NamesCounted bool
}

// ctlProcess is one line of the processes command.
type ctlProcess struct {
	Pid    string
	Name   string
	Status string
	Queue  int
}

// benchSinkArgs starts a bench_sink: whom to acknowledge and how many done
// markers to wait for.
type benchSinkArgs struct {
	Reply   nodal.Pid
	Senders int
}

// benchAck is the sink's acknowledgement: everything it received.
type benchAck struct {
	Messages uint64
	Bytes    uint64
}

// benchRegWatchArgs starts a bench_regwatch: whom to send the samples and
// the count to wait for.
type benchRegWatchArgs struct {
	Reply nodal.Pid
	Want  int
}

// benchRegSamples is what a bench_regwatch saw: at each At (Unix ns, its
// node's clock), Count names.
type benchRegSamples struct {
	At    []int64
	Count []int
}

// benchDone is the marker each sender sends after its last message.
type benchDone struct{}

func init() {
	for name, v := range map[string]any{
		"nodal.ctl.request":      ctlRequest{},
		"nodal.ctl.response":     ctlResponse{},
		"nodal.ctl.process":      ctlProcess{},
		"nodal.bench.sink":       benchSinkArgs{},
		"nodal.bench.regwatch":   benchRegWatchArgs{},
		"nodal.bench.regsamples": benchRegSamples{},
		"nodal.bench.ack":        benchAck{},
		"nodal.bench.done":       benchDone{},
	} {
		if err := nodal.RegisterType(name, v); err != nil {
			panic(fmt.Sprintf("register %s: %v", name, err))
		}
	}
}
