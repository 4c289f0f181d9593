//go:build linux

package integration

import (
	"context"
	"time"

	"github.com/nodal-go/nodal/heal"
)

// ctlHeals is the "heals" object of `node ctl --json partitions`: the sums
// of the node's Healed events and the last one.
type ctlHeals struct {
	Count     int    `json:"count"`
	Bytes     uint64 `json:"bytes"`
	Entries   uint64 `json:"entries"`
	Conflicts uint64 `json:"conflicts"`
	Last      *struct {
		At           time.Time `json:"at"`
		Returned     []string  `json:"returned"`
		StillMissing []string  `json:"still_missing"`
		LastedMS     float64   `json:"lasted_ms"`
		ConvergedMS  float64   `json:"converged_ms"`
		Bytes        uint64    `json:"bytes"`
		Entries      uint64    `json:"entries"`
		Conflicts    uint64    `json:"conflicts"`
	} `json:"last"`
}

func (b *realBackend) heals(ctx context.Context, node string) (HealReport, error) {
	if err := b.running(node); err != nil {
		return HealReport{}, err
	}
	var v struct {
		Partitioned bool     `json:"partitioned"`
		Heals       ctlHeals `json:"heals"`
	}
	if err := b.ctl(ctx, node, &v, "partitions"); err != nil {
		return HealReport{}, err
	}
	h := v.Heals
	r := HealReport{Partitioned: v.Partitioned, Heals: h.Count, Exchange: heal.Exchange{Bytes: h.Bytes, Entries: h.Entries, Conflicts: h.Conflicts}}
	if l := h.Last; l != nil {
		ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
		r.Last = &heal.Healed{At: l.At, Returned: l.Returned, StillMissing: l.StillMissing, Lasted: ms(l.LastedMS), Converged: ms(l.ConvergedMS),
			Exchange: heal.Exchange{Bytes: l.Bytes, Entries: l.Entries, Conflicts: l.Conflicts}}
	}
	return r, nil
}
