package integration

import (
	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/rpc"
)

// Service is something attached to every node of an in-process cluster at
// each start (restarts included): rpc/, registry/ and groups/ (RPC,
// Registry, Groups), heal/ as it lands, each one line in DefaultServices. In real mode the nodes
// run what `node start` wires up; there Services only tells the harness
// whether one of them reconnects the cluster after a heal.
type Service struct {
	// Name keys the attached value for Cluster.Service.
	Name string
	// Attach attaches the service to n, a node that has just started, and
	// returns the value tests reach through Cluster.Service (an *rpc.RPC,
	// ...). Node.Stop stops what it attached, as for any nodal service.
	Attach func(n *nodal.Node) (any, error)
	// Reconnects says the service reconnects nodes after a partition
	// heals, as heal/ does. With one, Heal and Thaw only lift the faults;
	// without, they also join every running node to the others, which is
	// what heal/ would do.
	Reconnects bool
}

// RPC attaches rpc/ with its default config; Cluster.RPC calls through it.
func RPC() Service {
	return Service{Name: rpc.ServiceName, Attach: func(n *nodal.Node) (any, error) {
		return rpc.New(n, rpc.Config{})
	}}
}

// DefaultServices are the services attached when Options.Services is nil:
// the ones `node start` runs (rpc, the global registry, process groups),
// so that both modes test the same node. heal/ attaches here in one line,
// Service{Name: "heal", Attach: ..., Reconnects: true}, once `node start`
// runs it; Heal and Thaw then leave the reconnecting to it.
func DefaultServices() []Service {
	return []Service{RPC(), Registry(), Groups()}
}

// reconnects reports whether one of services reconnects after a heal.
func reconnects(services []Service) bool {
	for _, s := range services {
		if s.Reconnects {
			return true
		}
	}
	return false
}
