package integration

import (
	"context"
	"errors"
	"fmt"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/registry"
)

// The global registry (registry/) through the Cluster: in-process on the
// *registry.Registry attached to each node (Service "registry"), in real
// mode through `node ctl register/whereis/registered/sync`.

// Registry attaches registry/ with its default config (the default scope,
// the lower-node-exit resolver), as `node start` does.
func Registry() Service {
	return Service{Name: "registry", Attach: func(n *nodal.Node, _ map[string]any) (any, error) {
		return registry.New(n, registry.Config{})
	}}
}

// registryOps is the optional part of a backend that speaks to the registry.
type registryOps interface {
	register(ctx context.Context, node, name string, pid nodal.Pid) error
	whereis(ctx context.Context, node, name string) (nodal.Pid, bool, error)
	registered(ctx context.Context, node string) (map[string]nodal.Pid, error)
	syncNames(ctx context.Context, node string) error
}

func (c *Cluster) registryOps(op, node string) (registryOps, error) {
	if err := c.ready(op, node); err != nil {
		return nil, err
	}
	nb, ok := c.b.(registryOps)
	if !ok {
		return nil, &OpError{Node: node, Op: op, Err: errors.New("the registry is not supported in this mode")}
	}
	return nb, nil
}

// Register registers pid, a process of node, under the global name
// name, through node's registry.
func (c *Cluster) Register(ctx context.Context, node, name string, pid nodal.Pid) error {
	nb, err := c.registryOps("register", node)
	if err != nil {
		return err
	}
	ctx, cancel := c.opCtx(ctx)
	defer cancel()
	return wrap("register", node, nb.register(ctx, node, name, pid))
}

// Whereis returns the holder of the global name as node sees it.
func (c *Cluster) Whereis(ctx context.Context, node, name string) (nodal.Pid, bool, error) {
	nb, err := c.registryOps("whereis", node)
	if err != nil {
		return nodal.Pid{}, false, err
	}
	ctx, cancel := c.opCtx(ctx)
	defer cancel()
	pid, ok, err := nb.whereis(ctx, node, name)
	return pid, ok, wrap("whereis", node, err)
}

// Registered returns every global name node sees, with its holder.
func (c *Cluster) Registered(ctx context.Context, node string) (map[string]nodal.Pid, error) {
	nb, err := c.registryOps("registered", node)
	if err != nil {
		return nil, err
	}
	ctx, cancel := c.opCtx(ctx)
	defer cancel()
	m, err := nb.registered(ctx, node)
	return m, wrap("registered", node, err)
}

// SyncNames returns once node's registry has exchanged its state with
// every reachable node (Erlang's global:sync/0).
func (c *Cluster) SyncNames(ctx context.Context, node string) error {
	nb, err := c.registryOps("sync", node)
	if err != nil {
		return err
	}
	ctx, cancel := c.opCtx(ctx)
	defer cancel()
	return wrap("sync", node, nb.syncNames(ctx, node))
}

func (b *simBackend) registryOf(node string) (*registry.Registry, error) {
	sn, err := b.get(node)
	if err != nil {
		return nil, err
	}
	r, ok := sn.services["registry"].(*registry.Registry)
	if !ok {
		return nil, fmt.Errorf("no registry attached (Options.Services)")
	}
	return r, nil
}

func (b *simBackend) register(ctx context.Context, node, name string, pid nodal.Pid) error {
	r, err := b.registryOf(node)
	if err != nil {
		return err
	}
	return r.Register(ctx, name, pid)
}

func (b *simBackend) whereis(_ context.Context, node, name string) (nodal.Pid, bool, error) {
	r, err := b.registryOf(node)
	if err != nil {
		return nodal.Pid{}, false, err
	}
	pid, ok := r.Whereis(name)
	return pid, ok, nil
}

func (b *simBackend) registered(_ context.Context, node string) (map[string]nodal.Pid, error) {
	r, err := b.registryOf(node)
	if err != nil {
		return nil, err
	}
	return r.Registered(), nil
}

func (b *simBackend) syncNames(ctx context.Context, node string) error {
	r, err := b.registryOf(node)
	if err != nil {
		return err
	}
	return r.Sync(ctx)
}
