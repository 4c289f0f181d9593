package integration

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/groups"
)

// Process groups (groups/) through the Cluster: in-process on the
// *groups.Scope attached to each node (Service "groups"), in real mode
// through `node ctl join/members`.

// Groups attaches groups/ with its default config (the default scope), as
// `node start` does.
func Groups() Service {
	return Service{Name: "groups", Attach: func(n *nodal.Node, _ map[string]any) (any, error) {
		return groups.New(n, groups.Config{})
	}}
}

// groupOps is the optional part of a backend that speaks to groups.
type groupOps interface {
	joinGroup(ctx context.Context, node, group string, pid nodal.Pid) error
	members(ctx context.Context, node, group string) ([]nodal.Pid, error)
}

func (c *Cluster) groupOps(op, node string) (groupOps, error) {
	if err := c.ready(op, node); err != nil {
		return nil, err
	}
	g, ok := c.b.(groupOps)
	if !ok {
		return nil, &OpError{Node: node, Op: op, Err: errors.New("groups are not supported in this mode")}
	}
	return g, nil
}

// JoinGroup joins pid, a process of node, to group.
func (c *Cluster) JoinGroup(ctx context.Context, node, group string, pid nodal.Pid) error {
	g, err := c.groupOps("join", node)
	if err != nil {
		return err
	}
	ctx, cancel := c.opCtx(ctx)
	defer cancel()
	return wrap("join", node, g.joinGroup(ctx, node, group, pid))
}

// Members returns group's members as node sees them, sorted, a pid once
// per membership.
func (c *Cluster) Members(ctx context.Context, node, group string) ([]nodal.Pid, error) {
	g, err := c.groupOps("members", node)
	if err != nil {
		return nil, err
	}
	ctx, cancel := c.opCtx(ctx)
	defer cancel()
	m, err := g.members(ctx, node, group)
	if err != nil {
		return nil, wrap("members", node, err)
	}
	slices.SortFunc(m, func(a, b nodal.Pid) int { return cmpString(a.String(), b.String()) })
	return m, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (b *simBackend) scopeOf(node string) (*groups.Scope, error) {
	sn, err := b.get(node)
	if err != nil {
		return nil, err
	}
	s, ok := sn.services["groups"].(*groups.Scope)
	if !ok {
		return nil, fmt.Errorf("no groups attached (Options.Services)")
	}
	return s, nil
}

func (b *simBackend) joinGroup(ctx context.Context, node, group string, pid nodal.Pid) error {
	s, err := b.scopeOf(node)
	if err != nil {
		return err
	}
	return s.Join(ctx, group, pid)
}

func (b *simBackend) members(_ context.Context, node, group string) ([]nodal.Pid, error) {
	s, err := b.scopeOf(node)
	if err != nil {
		return nil, err
	}
	return s.Members(group), nil
}
