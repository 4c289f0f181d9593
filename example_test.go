package nodal_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/nodal-go/nodal"
)

// Spawn a process, send it a message and receive its answer.
func Example() {
	ctx := context.Background()
	n, err := nodal.Start(ctx, nodal.Config{})
	if err != nil {
		panic(err)
	}
	defer n.Stop(ctx)

	done := make(chan string)
	_, err = n.Spawn(func(p *nodal.Process) error {
		echo, err := p.Spawn(func(p *nodal.Process) error {
			msg, err := p.Receive(p.Context())
			if err != nil {
				return err
			}
			req := msg.([2]any)
			p.Send(req[0].(nodal.Pid), "echo: "+req[1].(string))
			return nil
		})
		if err != nil {
			return err
		}
		p.Send(echo, [2]any{p.Self(), "hello"})
		reply, err := p.Receive(p.Context())
		if err != nil {
			return err
		}
		done <- reply.(string)
		return nil
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(<-done)
	fmt.Println(n.Name())
	// Output:
	// echo: hello
	// nonode@nohost
}

// Selective receive takes the first matching message and leaves the others
// in order (Erlang's receive ... after).
func ExampleProcess_ReceiveMatch() {
	ctx := context.Background()
	n, _ := nodal.Start(ctx, nodal.Config{})
	defer n.Stop(ctx)

	out := make(chan []any)
	pid, _ := n.Spawn(func(p *nodal.Process) error {
		// Wait until all three messages are in the mailbox.
		first, _ := p.ReceiveMatch(p.Context(), func(m any) bool { return m == "go" })
		var got []any
		got = append(got, first)
		for range 2 {
			m, _ := p.Receive(p.Context())
			got = append(got, m)
		}
		out <- got
		return nil
	})
	n.Send(pid, 1)
	n.Send(pid, 2)
	n.Send(pid, "go")
	fmt.Println(<-out)
	// Output: [go 1 2]
}

// A linked process that traps exits receives its partner's exit as an Exit
// message; without trapping it would die with the same reason.
func ExampleProcess_Link() {
	ctx := context.Background()
	n, _ := nodal.Start(ctx, nodal.Config{})
	defer n.Stop(ctx)

	crash := errors.New("crash")
	out := make(chan string)
	_, _ = n.Spawn(func(p *nodal.Process) error {
		p.TrapExit(true)
		child, _ := p.Spawn(func(p *nodal.Process) error {
			return crash // exits with reason "crash"
		}, nodal.WithLink())
		msg, err := p.Receive(p.Context())
		if err != nil {
			return err
		}
		ex := msg.(nodal.Exit)
		out <- fmt.Sprintf("exit from child: %v, reason: %v", ex.From == child, ex.Reason)
		return nil
	})
	fmt.Println(<-out)
	// Output: exit from child: true, reason: crash
}

type counter struct{ n int }

func (c *counter) Init(p *nodal.Process) error { return nil }

func (c *counter) HandleMessage(p *nodal.Process, msg any) error {
	if msg == "incr" {
		c.n++
	}
	return nil
}

func (c *counter) HandleCall(p *nodal.Process, from nodal.From, req any) (any, error) {
	return c.n, nil
}

// An Actor keeps no goroutine while idle; Call is gen_server:call.
func ExampleNode_Call() {
	ctx := context.Background()
	n, _ := nodal.Start(ctx, nodal.Config{})
	defer n.Stop(ctx)

	pid, _ := n.SpawnActor(&counter{}, nodal.WithName("counter"))
	for range 3 {
		_ = n.SendName("counter", "incr")
	}
	v, err := n.Call(ctx, pid, "get")
	fmt.Println(v, err)
	// Output: 3 <nil>
}
