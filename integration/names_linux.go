//go:build linux

package integration

import (
	"context"

	"github.com/nodal-go/nodal"
)

func (b *realBackend) register(ctx context.Context, node, name string, pid nodal.Pid) error {
	if err := b.running(node); err != nil {
		return err
	}
	var v struct {
		Name string `json:"name"`
		Pid  string `json:"pid"`
		OK   bool   `json:"ok"`
	}
	return b.ctl(ctx, node, &v, "register", name, pid.String())
}

func (b *realBackend) whereis(ctx context.Context, node, name string) (nodal.Pid, bool, error) {
	if err := b.running(node); err != nil {
		return nodal.Pid{}, false, err
	}
	var v struct {
		Name string  `json:"name"`
		Pid  *string `json:"pid"`
	}
	if err := b.ctl(ctx, node, &v, "whereis", name); err != nil {
		return nodal.Pid{}, false, err
	}
	if v.Pid == nil {
		return nodal.Pid{}, false, nil
	}
	pid, err := nodal.ParsePid(*v.Pid)
	return pid, err == nil, err
}

func (b *realBackend) registered(ctx context.Context, node string) (map[string]nodal.Pid, error) {
	if err := b.running(node); err != nil {
		return nil, err
	}
	var v struct {
		Names map[string]string `json:"names"`
	}
	if err := b.ctl(ctx, node, &v, "registered"); err != nil {
		return nil, err
	}
	out := make(map[string]nodal.Pid, len(v.Names))
	for name, s := range v.Names {
		pid, err := nodal.ParsePid(s)
		if err != nil {
			return nil, err
		}
		out[name] = pid
	}
	return out, nil
}

func (b *realBackend) syncNames(ctx context.Context, node string) error {
	if err := b.running(node); err != nil {
		return err
	}
	var v struct {
		Node   string   `json:"node"`
		Synced bool     `json:"synced"`
		Peers  []string `json:"peers"`
	}
	return b.ctl(ctx, node, &v, "sync")
}
