package integration

import (
	"context"
	"errors"
	"fmt"

	"github.com/nodal-go/nodal"
)

// barrierName is looked up on a monitored process's node right after the
// monitor (as the `node` binary's ctl monitor does): the answer comes
// back on the same ordered path, so once it is in, the monitor has
// reached that node. Nothing is registered under it.
const barrierName = "nodal_harness_barrier"

// monitorBarrier waits until a monitor p has just set on target has
// reached target's node. An unreachable node is no failure: the monitor
// then fires with noconnection.
func monitorBarrier(ctx context.Context, p *nodal.Process, target nodal.Pid) error {
	if target.Node == p.Node().Name() {
		return nil
	}
	_, err := p.Node().WhereisOn(ctx, target.Node, barrierName)
	if err == nil || errors.Is(err, nodal.ErrNotRegistered) || errors.Is(err, nodal.ErrNoConnection) {
		return nil
	}
	return fmt.Errorf("monitor %v: %w", target, err)
}
