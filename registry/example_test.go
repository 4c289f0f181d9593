package registry_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/registry"
)

// A name registered on one node is found with Whereis: a local read.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := nodal.Start(ctx, nodal.DefaultLocalConfig("a@127.0.0.1", "example-cookie"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer n.Stop(ctx)
	reg, err := registry.New(n, registry.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	pid, _ := n.Spawn(func(p *nodal.Process) error {
		_, err := p.Receive(p.Context())
		return err
	})
	if err := reg.Register(ctx, "db", pid); err != nil {
		fmt.Println(err)
		return
	}
	got, ok := reg.Whereis("db")
	fmt.Println(ok, got == pid)

	other, _ := n.Spawn(func(p *nodal.Process) error { <-p.Context().Done(); return nil })
	err = reg.Register(ctx, "db", other)
	var taken *registry.AlreadyRegisteredError
	fmt.Println(errors.As(err, &taken), taken.Holder == pid)

	_ = reg.Send("db", "hello") // the holder's mailbox gets "hello"
	_, ok = reg.Whereis("nobody")
	fmt.Println(ok)
	// Output:
	// true true
	// true true
	// false
}
