//go:build linux

package integration

import (
	"context"

	"github.com/nodal-go/nodal"
)

func (b *realBackend) joinGroup(ctx context.Context, node, group string, pid nodal.Pid) error {
	if err := b.running(node); err != nil {
		return err
	}
	var v struct {
		Group string `json:"group"`
		Pid   string `json:"pid"`
	}
	return b.ctl(ctx, node, &v, "join", group, pid.String())
}

func (b *realBackend) members(ctx context.Context, node, group string) ([]nodal.Pid, error) {
	if err := b.running(node); err != nil {
		return nil, err
	}
	var v struct {
		Group string   `json:"group"`
		Pids  []string `json:"pids"`
	}
	if err := b.ctl(ctx, node, &v, "members", group); err != nil {
		return nil, err
	}
	out := make([]nodal.Pid, 0, len(v.Pids))
	for _, s := range v.Pids {
		pid, err := nodal.ParsePid(s)
		if err != nil {
			return nil, err
		}
		out = append(out, pid)
	}
	return out, nil
}
