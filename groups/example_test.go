package groups_test

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/groups"
	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// Processes on three nodes join one group; any node sees them all, sends to
// all of them, and calls all of them. A monitor reports a member that
// exits.
func Example() {
	net := p2ptest.New()
	defer net.Close()
	ctx := context.Background()
	var nodes []*nodal.Node
	var scopes []*groups.Scope
	var members []nodal.Pid
	for i, name := range []string{"a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3"} {
		cfg := nodal.DefaultLocalConfig(name, "example-cookie")
		cfg.P2P.Network = net
		if i > 0 {
			cfg.Seeds = []string{nodes[0].GossipAddr()}
		}
		n, err := nodal.Start(ctx, cfg)
		if err != nil {
			panic(err)
		}
		s, err := groups.New(n, groups.Config{Scope: "example"})
		if err != nil {
			panic(err)
		}
		// an echo process: replies to calls with its node's name
		pid, err := n.Spawn(func(p *nodal.Process) error {
			for {
				m, err := p.Receive(ctx)
				if err != nil {
					return err
				}
				if c, ok := m.(nodal.CallRequest); ok {
					p.Reply(c.From, "hello from "+n.Name())
				}
			}
		})
		if err != nil {
			panic(err)
		}
		if err := s.Join(ctx, "workers", pid); err != nil {
			panic(err)
		}
		nodes, scopes, members = append(nodes, n), append(scopes, s), append(members, pid)
	}
	defer func() {
		for _, n := range slices.Backward(nodes) {
			_ = n.Stop(ctx)
		}
	}()
	a := scopes[0]
	deadline := time.Now().Add(30 * time.Second)
	for a.Count("workers") < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // the other nodes' joins arrive
	}
	fmt.Println("groups:", a.WhichGroups())
	fmt.Println("members:", len(a.Members("workers")), "local:", len(a.LocalMembers("workers")))

	replies, failed, err := a.Call(ctx, "workers", "hi")
	if err != nil {
		panic(err)
	}
	for _, r := range replies {
		fmt.Println(r.Value)
	}
	fmt.Println("failed:", len(failed))

	_, mon, err := a.Monitor("workers")
	if err != nil {
		panic(err)
	}
	defer mon.Stop()
	nodes[1].Exit(members[1], nodal.ReasonKill)
	ev := <-mon.Events()
	fmt.Println(ev.Kind, ev.Group, ev.Pids[0] == members[1], ev.Cause)
	// Output:
	// groups: [workers]
	// members: 3 local: 1
	// hello from a@10.0.0.1
	// hello from b@10.0.0.2
	// hello from c@10.0.0.3
	// failed: 0
	// leave workers true remote
}
