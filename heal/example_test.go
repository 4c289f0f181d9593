package heal_test

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/heal"
	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// Two nodes with a heal service each: the view, a majority vote, and a
// reconciler attached for heals.
func Example() {
	net := p2ptest.New(p2ptest.WithSeed(1))
	defer net.Close()
	start := func(name string, seeds ...string) (*nodal.Node, *heal.Heal) {
		cfg := nodal.DefaultLocalConfig(name, "example-cookie")
		cfg.P2P.Network, cfg.Stdout, cfg.Seeds = net, io.Discard, seeds
		n, err := nodal.Start(context.Background(), cfg)
		if err != nil {
			panic(err)
		}
		h, err := heal.New(n, heal.Config{Expected: []string{"a@10.0.0.1", "b@10.0.0.2"}, Seeds: seeds})
		if err != nil {
			panic(err)
		}
		h.HandleVotes(func(ctx context.Context, p heal.Proposal) bool { return string(p.Value) == "blue" })
		return n, h
	}
	a, ha := start("a@10.0.0.1")
	b, _ := start("b@10.0.0.2", a.GossipAddr())
	defer b.Stop(context.Background())
	defer a.Stop(context.Background())

	// A reconciler runs after every heal with the nodes that came back.
	_ = ha.AddReconciler("example", heal.ReconcilerFunc(func(ctx context.Context, peers []string) (heal.Exchange, error) {
		return heal.Exchange{}, nil
	}))
	for len(ha.View().Reachable) < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	v := ha.View()
	fmt.Println("reachable:", v.Reachable, "majority:", v.Majority)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := ha.Propose(ctx, "colour", []byte("blue"))
	fmt.Println(r.Outcome, r.Yes, err)
	r, err = ha.Propose(ctx, "colour", []byte("red"))
	fmt.Println(r.Outcome, "yes:", len(r.Yes), err) // decided at the first no: 2 of 2 needed
	// Output:
	// reachable: [a@10.0.0.1 b@10.0.0.2] majority: true
	// majority [a@10.0.0.1 b@10.0.0.2] <nil>
	// no majority yes: 0 <nil>
}
