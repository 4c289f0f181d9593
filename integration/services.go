package integration

import (
	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/groups"
	"github.com/nodal-go/nodal/heal"
	"github.com/nodal-go/nodal/registry"
	"github.com/nodal-go/nodal/rpc"
)

// Service is something attached to every node of an in-process cluster at
// each start (restarts included): rpc/, registry/, groups/ and heal/
// (RPC, Registry, Groups, Healing), each one line in DefaultServices. In real mode the nodes
// run what `node start` wires up; there Services only tells the harness
// whether one of them reconnects the cluster after a heal.
type Service struct {
	// Name keys the attached value for Cluster.Service.
	Name string
	// Attach attaches the service to n, a node that has just started, and
	// returns the value tests reach through Cluster.Service (an *rpc.RPC,
	// ...). attached holds what the services before it in the list
	// returned on this node, by Name (heal's reconcilers are the registry
	// and groups). Node.Stop stops what it attached, as for any nodal
	// service.
	Attach func(n *nodal.Node, attached map[string]any) (any, error)
	// Reconnects says the service reconnects nodes after a partition
	// heals, as heal/ does. With one, Heal and Thaw only lift the faults;
	// without, they also join every running node to the others, which is
	// what heal/ would do.
	Reconnects bool
}

// RPC attaches rpc/ with its default config; Cluster.RPC calls through it.
func RPC() Service {
	return Service{Name: rpc.ServiceName, Attach: func(n *nodal.Node, _ map[string]any) (any, error) {
		return rpc.New(n, rpc.Config{})
	}}
}

// DefaultServices are the services attached when Options.Services is nil:
// the ones `node start` runs (rpc, the global registry, process groups,
// heal), so that both modes test the same node.
func DefaultServices() []Service {
	return []Service{RPC(), Registry(), Groups(), Healing()}
}

// Healing attaches heal/ with its default config and, as `node start`
// does, the registry and groups attached before it as its reconcilers. It
// reconnects the cluster after a partition by itself: Heal and Thaw then
// only lift the faults.
func Healing() Service {
	return Service{Name: heal.ServiceName, Reconnects: true, Attach: func(n *nodal.Node, attached map[string]any) (any, error) {
		h, err := heal.New(n, heal.Config{})
		if err != nil {
			return nil, err
		}
		if reg, ok := attached["registry"].(*registry.Registry); ok {
			if err := h.AddReconciler("registry", heal.CountedSync(reg.Sync, func(peers []string) heal.Exchange {
				return heal.Exchange(reg.ExchangedSinceUp(peers...))
			})); err != nil {
				return nil, err
			}
		}
		if sc, ok := attached["groups"].(*groups.Scope); ok {
			if err := h.AddReconciler("groups", heal.CountedSync(sc.Sync, func(peers []string) heal.Exchange {
				return heal.Exchange(sc.ExchangedSinceUp(peers...))
			})); err != nil {
				return nil, err
			}
		}
		return h, nil
	}}
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
