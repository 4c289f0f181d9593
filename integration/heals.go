package integration

import (
	"context"
	"errors"
	"time"

	"github.com/nodal-go/nodal/heal"
)

// What heal/ reported through the Cluster: in-process from each node's
// *heal.Heal (Service "heal", its View's Heals), in real mode from `node ctl
// partitions`, which shows the same.

// HealReport is what a node's heal service reported in its Healed events
// since the node's current start: how many, what their reconcilers (the
// registry and groups) exchanged with the returned nodes in all, and the
// last one; and whether it reports a partition now.
type HealReport struct {
	// Partitioned: heal reported expected nodes missing (a
	// PartitionDetected) and not all of them are back (heal.View).
	Partitioned bool
	Heals       int
	Exchange    heal.Exchange // summed over the Healed events
	// Last is the latest Healed event (nil before the first); in real mode
	// it has At, Returned, StillMissing, Lasted, Converged and Exchange.
	Last *heal.Healed
}

// healOps is the optional part of a backend that reads heal reports.
type healOps interface {
	heals(ctx context.Context, node string) (HealReport, error)
}

// Heals returns what node's heal service reported since the node's
// current start (see HealReport). It fails with an *OpError when the
// node runs no heal service (Options.Services without Healing).
func (c *Cluster) Heals(ctx context.Context, node string) (HealReport, error) {
	if err := c.ready("heals", node); err != nil {
		return HealReport{}, err
	}
	hb, ok := c.b.(healOps)
	if !ok {
		return HealReport{}, &OpError{Node: node, Op: "heals", Err: errors.New("heal reports are not supported in this mode")}
	}
	ctx, cancel := c.opCtx(ctx)
	defer cancel()
	r, err := hb.heals(ctx, node)
	return r, wrap("heals", node, err)
}

// WaitPartitioned waits until heal reports a partition on each of nodes
// (HealReport.Partitioned) and returns how long that took: heal detects a
// lost node ReconnectInterval after its connection went, or as soon as
// failure detection declares it failed.
func (c *Cluster) WaitPartitioned(nodes ...string) time.Duration {
	c.t.Helper()
	return c.Eventually(func() bool {
		for _, n := range nodes {
			if r, err := c.Heals(context.Background(), n); err != nil || !r.Partitioned {
				return false
			}
		}
		return true
	}, "heal to report a partition on each of %v", nodes)
}

// HealExchange waits until each of nodes that reported a partition in
// before (HealReports, taken before the heal; see WaitPartitioned) has
// reported a Healed event more and its latest one leaves no expected node
// missing, and returns what the new events of every one of nodes
// exchanged, summed, and how long the wait took. It is how a test prints
// the bytes a heal moved.
func (c *Cluster) HealExchange(before map[string]HealReport, nodes ...string) (heal.Exchange, time.Duration) {
	c.t.Helper()
	var sum heal.Exchange
	took := c.Eventually(func() bool {
		sum = heal.Exchange{}
		for _, n := range nodes {
			r, err := c.Heals(context.Background(), n)
			if err == nil && !before[n].Partitioned {
				sum = sum.Add(heal.Exchange{
					Bytes:     r.Exchange.Bytes - before[n].Exchange.Bytes,
					Entries:   r.Exchange.Entries - before[n].Exchange.Entries,
					Conflicts: r.Exchange.Conflicts - before[n].Exchange.Conflicts,
				})
				continue
			}
			if err != nil || r.Heals <= before[n].Heals || r.Last == nil || len(r.Last.StillMissing) > 0 {
				return false
			}
			sum = sum.Add(heal.Exchange{
				Bytes:     r.Exchange.Bytes - before[n].Exchange.Bytes,
				Entries:   r.Exchange.Entries - before[n].Exchange.Entries,
				Conflicts: r.Exchange.Conflicts - before[n].Exchange.Conflicts,
			})
		}
		return true
	}, "a Healed event on each of %v", nodes)
	return sum, took
}

// HealReports returns Heals of each of nodes, failing the test on an
// error: the "before" of HealExchange.
func (c *Cluster) HealReports(nodes ...string) map[string]HealReport {
	c.t.Helper()
	out := map[string]HealReport{}
	for _, n := range nodes {
		r, err := c.Heals(context.Background(), n)
		if err != nil {
			c.t.Fatalf("integration: %v", err)
		}
		out[n] = r
	}
	return out
}

func (b *simBackend) heals(_ context.Context, node string) (HealReport, error) {
	sn, err := b.get(node)
	if err != nil {
		return HealReport{}, err
	}
	h, ok := sn.services[heal.ServiceName].(*heal.Heal)
	if !ok {
		return HealReport{}, errors.New("no heal service attached (Options.Services)")
	}
	v := h.View()
	return HealReport{Partitioned: v.Partitioned, Heals: v.Heals.Count, Exchange: v.Heals.Exchange, Last: v.Heals.Last}, nil
}
