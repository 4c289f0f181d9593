package supervisor_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/p2p/p2ptest"
	"github.com/nodal-go/nodal/supervisor"
)

// pinger is a worker that answers calls with "pong" and crashes on "crash".
func pinger(p *nodal.Process) error {
	for {
		msg, err := p.Receive(p.Context())
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case nodal.CallRequest:
			p.Reply(m.From, "pong")
		case string:
			if m == "crash" {
				return errors.New("crashed")
			}
		}
	}
}

// whereisOther waits until name is registered to a pid other than old.
func whereisOther(n *nodal.Node, name string, old nodal.Pid) nodal.Pid {
	for {
		if pid, ok := n.Whereis(name); ok && pid != old {
			return pid
		}
		time.Sleep(time.Millisecond)
	}
}

// A one_for_one supervisor restarts a crashed worker; the replacement is
// registered under the same name and answers at once.
func ExampleStart() {
	ctx := context.Background()
	n, err := nodal.Start(ctx, nodal.Config{})
	if err != nil {
		panic(err)
	}
	defer n.Stop(ctx)

	sup, err := supervisor.Start(ctx, n, supervisor.Spec{
		Strategy: supervisor.OneForOne,
		Children: []supervisor.Child{{
			ID: "pinger",
			Start: func(p *nodal.Process) (nodal.Pid, error) {
				return p.Spawn(pinger, nodal.WithName("pinger"), nodal.WithLink())
			},
		}},
	})
	if err != nil {
		panic(err)
	}

	first, _ := n.Whereis("pinger")
	n.Send(first, "crash")
	second := whereisOther(n, "pinger", first)
	reply, err := n.Call(ctx, second, "ping")
	fmt.Println(reply, err)

	children, err := supervisor.WhichChildren(ctx, n, sup)
	if err != nil {
		panic(err)
	}
	for _, c := range children {
		fmt.Println(c.ID, c.Type, c.Pid == second)
	}
	// Output:
	// pong <nil>
	// pinger worker true
}

// A simple_one_for_one supervisor starts children from one template, each
// with its own argument, and a supervision tree nests it under a root.
func ExampleStartDynamicChild() {
	ctx := context.Background()
	n, err := nodal.Start(ctx, nodal.Config{})
	if err != nil {
		panic(err)
	}
	defer n.Stop(ctx)

	sessions := supervisor.Nested("sessions", supervisor.Spec{
		Strategy: supervisor.SimpleOneForOne,
		Template: &supervisor.ChildTemplate{
			Restart: supervisor.Transient,
			Start: func(p *nodal.Process, args any) (nodal.Pid, error) {
				return p.Spawn(pinger, nodal.WithName("session-"+args.(string)), nodal.WithLink())
			},
		},
	})
	root, err := supervisor.Start(ctx, n, supervisor.Spec{
		Strategy: supervisor.RestForOne,
		Children: []supervisor.Child{sessions},
	})
	if err != nil {
		panic(err)
	}
	tree, _ := supervisor.WhichChildren(ctx, n, root)
	sessionsSup := tree[0].Pid
	for _, user := range []string{"ann", "bob"} {
		if _, err := supervisor.StartDynamicChild(ctx, n, sessionsSup, user); err != nil {
			panic(err)
		}
	}
	count, _ := supervisor.CountChildren(ctx, n, sessionsSup)
	fmt.Printf("%s: %d sessions, %d active\n", tree[0].ID, count.Workers, count.Active)
	fmt.Println(n.Registered())
	// Output:
	// sessions: 2 sessions, 2 active
	// [session-ann session-bob]
}

// A supervisor on a keeps a worker running on b (OTP's start_worker(Node)),
// with c as its failover. When b is cut off from a, the worker's link
// breaks with reason noconnection on both sides: the worker on b dies, and
// the supervisor restarts it on c, the first connected node of its list.
func ExampleRemote() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	net := p2ptest.New(p2ptest.WithSeed(1)) // an in-process network
	defer net.Close()
	var nodes []*nodal.Node
	for _, name := range []string{"a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3"} {
		cfg := nodal.DefaultLocalConfig(name, "example-cookie")
		cfg.P2P.Network = net
		if len(nodes) > 0 {
			cfg.Seeds = []string{nodes[0].GossipAddr()}
		}
		n, err := nodal.Start(ctx, cfg)
		if err != nil {
			panic(err)
		}
		defer n.Stop(context.Background())
		// The behaviour the supervisor starts, on every node that may run it.
		err = n.RegisterBehaviour("worker", func(p *nodal.Process, _ any) error {
			_, err := p.Receive(p.Context())
			return err
		})
		if err != nil {
			panic(err)
		}
		nodes = append(nodes, n)
	}
	a := nodes[0]
	for len(a.Nodes()) < 2 || len(nodes[1].Nodes()) < 2 || len(nodes[2].Nodes()) < 2 {
		time.Sleep(10 * time.Millisecond)
	}

	sup, err := supervisor.Start(ctx, a, supervisor.Spec{
		Intensity: 5,
		Children: []supervisor.Child{
			supervisor.Remote("worker", "b@10.0.0.2", "worker", nil, supervisor.Failover("c@10.0.0.3")),
		},
	})
	if err != nil {
		panic(err)
	}
	where := func() string {
		kids, err := supervisor.WhichChildren(ctx, a, sup)
		if err != nil {
			panic(err)
		}
		return kids[0].Pid.Node
	}
	fmt.Println("worker runs on", where())

	net.Partition("a@10.0.0.1", "b@10.0.0.2")
	for where() != "c@10.0.0.3" {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("b lost: worker runs on", where())
	// Output:
	// worker runs on b@10.0.0.2
	// b lost: worker runs on c@10.0.0.3
}
