package nodal_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nodal-go/nodal"
)

// Two nodes on loopback: a process on a spawns a behaviour on b, calls it,
// monitors it, and sees it end; the remote process prints on a's output.
func Example_distribution() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfgA := nodal.DefaultLocalConfig("a@127.0.0.1", "example-cookie")
	var printed syncWriter
	cfgA.Stdout = &printed // what processes print through a's group leader
	a, err := nodal.Start(ctx, cfgA)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer a.Stop(context.Background())
	cfgB := nodal.DefaultLocalConfig("b@127.0.0.1", "example-cookie")
	cfgB.Seeds = []string{a.GossipAddr()}
	b, err := nodal.Start(ctx, cfgB)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Stop(context.Background())

	// A behaviour other nodes may spawn on b: it answers one call, then ends.
	_ = b.RegisterBehaviour("echo-once", func(p *nodal.Process, args any) error {
		p.Printf("echo-once started on %s with %v\n", p.Node().Name(), args)
		m, err := p.Receive(p.Context())
		if err != nil {
			return err
		}
		req := m.(nodal.CallRequest)
		p.Reply(req.From, fmt.Sprintf("echo: %v", req.Req))
		return nodal.ReasonNormal
	})
	for len(a.Nodes()) == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("a sees", a.Nodes())

	done := make(chan struct{})
	_, _ = a.Spawn(func(p *nodal.Process) error {
		defer close(done)
		pid, ref, err := p.SpawnMonitorOn(ctx, "b@127.0.0.1", "echo-once", "hello")
		if err != nil {
			return err
		}
		reply, err := p.Call(ctx, pid, "ping")
		fmt.Println("reply:", reply, err)
		m, _ := p.ReceiveMatch(ctx, func(m any) bool { d, ok := m.(nodal.Down); return ok && d.Ref == ref })
		fmt.Println("down:", m.(nodal.Down).Reason)
		return nil
	})
	<-done
	for printed.String() == "" {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Print("printed on a: ", printed.String())
	// Output:
	// a sees [b@127.0.0.1]
	// reply: echo: ping <nil>
	// down: normal
	// printed on a: echo-once started on b@127.0.0.1 with hello
}

type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
