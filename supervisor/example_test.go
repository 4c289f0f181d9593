package supervisor_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nodal-go/nodal"
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
