package rpc_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/p2p/p2ptest"
	"github.com/nodal-go/nodal/rpc"
)

// Job is the work the dispatcher hands out.
type Job struct {
	ID int
	N  int
}

// Done is a job's result and where it ran.
type Done struct {
	ID   int
	Sum  int
	Node string
}

func init() {
	_ = nodal.RegisterType("example.job", Job{})
	_ = nodal.RegisterType("example.done", Done{})
}

// The seed's work dispatcher: every node exposes job.run, and the
// dispatcher sends each job to a random node of the cluster (itself
// included), as async requests collected with their job as label.
func Example_workDispatcher() {
	net := p2ptest.New()
	defer net.Close()
	ctx := context.Background()
	var nodes []*nodal.Node
	var rpcs []*rpc.RPC
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
		r, err := rpc.New(n, rpc.Config{})
		if err != nil {
			panic(err)
		}
		err = rpc.Register(r, "job.run", func(_ context.Context, j Job) (Done, error) {
			sum := 0
			for k := 1; k <= j.N; k++ {
				sum += k
			}
			return Done{ID: j.ID, Sum: sum, Node: n.Name()}, nil
		})
		if err != nil {
			panic(err)
		}
		nodes, rpcs = append(nodes, n), append(rpcs, r)
	}
	defer func() {
		for _, n := range slices.Backward(nodes) {
			_ = n.Stop(ctx)
		}
	}()
	dispatcher := rpcs[0]
	deadline := time.Now().Add(30 * time.Second)
	for len(dispatcher.Nodes()) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // wait for the cluster
	}

	rng := rand.New(rand.NewPCG(1, 2))
	reqs := rpc.NewRequests[Job](dispatcher)
	for id := 1; id <= 5; id++ {
		live := dispatcher.Nodes()
		node := live[rng.IntN(len(live))]
		j := Job{ID: id, N: id * 10}
		if err := reqs.Send(ctx, node, "job.run", j, j); err != nil {
			fmt.Println("dispatch:", err)
		}
	}
	results := map[int]int{}
	ran := map[string]bool{}
	for reqs.Len() > 0 {
		resp, err := reqs.Receive(ctx)
		if err != nil || resp.Err != nil {
			fmt.Println("job failed:", err, resp.Err)
			continue
		}
		d := resp.Value.(Done)
		results[resp.Label.ID] = d.Sum
		ran[d.Node] = true
	}
	for id := 1; id <= 5; id++ {
		fmt.Printf("job %d: sum 1..%d = %d\n", id, id*10, results[id])
	}
	fmt.Println("ran on more than one node:", len(ran) > 1)
	// Output:
	// job 1: sum 1..10 = 55
	// job 2: sum 1..20 = 210
	// job 3: sum 1..30 = 465
	// job 4: sum 1..40 = 820
	// job 5: sum 1..50 = 1275
	// ran on more than one node: true
}
