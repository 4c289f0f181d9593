package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/heal"
	"github.com/nodal-go/nodal/p2p"
	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// demoSplitTimeout bounds the split scene: detecting the split, and the
// heal (reconnect, anti-entropy, resolution).
const demoSplitTimeout = time.Minute

// splitDemo is the demo's last scene: three nodes on an in-process network
// the demo can cut, a split, the same global name registered on both
// sides, and the heal that follows by itself.
func (d *demo) splitDemo(ctx context.Context) error {
	con := d.con
	ctx, cancel := context.WithTimeout(ctx, demoSplitTimeout)
	defer cancel()
	net := p2ptest.New(p2ptest.WithSeed(1))
	defer net.Close()
	names := []string{"x@127.0.0.1", "y@127.0.0.1", "z@127.0.0.1"}
	nodes := make([]*runningNode, 0, len(names))
	defer func() {
		for i := len(nodes) - 1; i >= 0; i-- {
			_ = stopNode(nodes[i].Node)
		}
	}()
	var join []string
	for _, name := range names {
		r, err := startNode(ctx, startOptions{Name: name, Cookie: demoCookie, Listen: "127.0.0.1:0", Gossip: "127.0.0.1:0",
			Join: join, Profile: p2p.ProfileLocal, Network: net}, con.nodeOutput(name))
		if err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
		nodes = append(nodes, r)
		join = []string{nodes[0].Gossip}
	}
	x, y, z := nodes[0], nodes[1], nodes[2]
	if err := waitFor(ctx, func() bool {
		for _, n := range nodes {
			if len(n.Heal.View().Reachable) != len(nodes) {
				return false
			}
		}
		return true
	}); err != nil {
		return fmt.Errorf("x, y and z did not see each other: %w", err)
	}
	con.sayf("Three more nodes, x, y and z, run on an in-process network that the demo can cut")
	con.sayf("(a real split needs root and iptables: the integration package does that).")

	net.Split([]string{x.Name()}, []string{y.Name(), z.Name()})
	if err := waitFor(ctx, func() bool { return x.Heal.View().Partitioned && y.Heal.View().Partitioned }); err != nil {
		return fmt.Errorf("the split was not detected: %w", err)
	}
	con.sayf("The network splits: x alone, y and z together. heal on x reports %s missing.", names[1:])

	// One claimant on each side; each traps exits, so it can say how it lost.
	claimant := func(r *runningNode) (nodal.Pid, error) {
		return r.Spawn(func(p *nodal.Process) error {
			p.TrapExit(true)
			m, err := p.ReceiveMatch(p.Context(), func(m any) bool { _, ok := m.(nodal.Exit); return ok })
			if err == nil {
				p.Printf("my claim lost: exit signal %v\n", m.(nodal.Exit).Reason)
			}
			return nil
		})
	}
	px, err := claimant(x)
	if err != nil {
		return err
	}
	py, err := claimant(y)
	if err != nil {
		return err
	}
	if err := x.Registry.Register(ctx, "leader", px); err != nil {
		return fmt.Errorf("register on x: %w", err)
	}
	if err := y.Registry.Register(ctx, "leader", py); err != nil {
		return fmt.Errorf("register on y: %w", err)
	}
	if err := waitFor(ctx, func() bool { pz, ok := z.Registry.Whereis("leader"); return ok && pz == py }); err != nil {
		return fmt.Errorf("z did not see y's registration: %w", err)
	}
	onX, _ := x.Registry.Whereis("leader")
	onZ, _ := z.Registry.Whereis("leader")
	con.sayf("Both sides register the global name \"leader\", and both succeed: each side sees only its own.")
	con.sayf("  x sees leader -> %v    z sees leader -> %v", onX, onZ)

	sub := y.Heal.Subscribe(16)
	defer sub.Close()
	net.Heal()
	con.sayf("The network comes back. Nobody calls join: heal keeps trying the lost nodes and reconnects them.")
	var back []string
	var moved heal.Exchange
	for done := false; !done; {
		select {
		case ev := <-sub.Events():
			if h, ok := ev.(heal.Healed); ok {
				back, moved = append(back, h.Returned...), moved.Add(h.Exchange)
				done = len(h.StillMissing) == 0
			}
		case <-ctx.Done():
			return fmt.Errorf("no heal: %w", ctx.Err())
		}
	}
	con.sayf("heal on y: %s is back; y's registry and groups exchanged %s with it.", strings.Join(back, ", "), moved)
	if err := waitFor(ctx, func() bool {
		for _, n := range nodes {
			if p, ok := n.Registry.Whereis("leader"); !ok || p != px {
				return false
			}
		}
		return true
	}); err != nil {
		return fmt.Errorf("the conflict was not resolved everywhere: %w", err)
	}
	if err := con.waitLine(ctx, "["+y.Name()+"]", "my claim lost"); err != nil {
		return err
	}
	con.sayf("Every node now sees leader -> %v. As Erlang's global does by default, the claim on the", px)
	con.sayf("lower node name (x) kept the name, and y's process got an exit signal naming the winner.")
	con.sayf("")
	return nil
}
