package p2p_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nodal-go/nodal/p2p"
	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// printer is a Handler that prints what happens.
type printer struct {
	mu   sync.Mutex
	self string
	got  chan struct{}
}

func (p *printer) NodeUp(peer p2p.Peer) {}

func (p *printer) Frame(peer p2p.Peer, data []byte) {
	p.mu.Lock()
	fmt.Printf("%s got %q from %s\n", p.self, data, peer.Name)
	p.mu.Unlock()
	p.got <- struct{}{}
}

func (p *printer) NodeDown(peer p2p.Peer, reason error) {}

// Two nodes on the in-process network: b joins a through a's gossip
// address, and a frame goes from b to a.
func Example() {
	net := p2ptest.New()
	defer net.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	ha := &printer{self: "a", got: make(chan struct{}, 1)}
	a, err := p2p.Start(ctx, p2p.Config{
		Name: "a@10.0.0.1", Cookie: "example-cookie", Profile: p2p.ProfileLocal, Advanced: p2p.Advanced{Network: net},
	}, ha)
	if err != nil {
		panic(err)
	}
	b, err := p2p.Start(ctx, p2p.Config{
		Name: "b@10.0.0.2", Cookie: "example-cookie", Profile: p2p.ProfileLocal, Advanced: p2p.Advanced{Network: net},
		Seeds: []string{a.GossipAddr()},
	}, &printer{self: "b", got: make(chan struct{}, 1)})
	if err != nil {
		panic(err)
	}
	// Start returned after the join: b knows the membership.
	for _, m := range b.Members() {
		fmt.Println("member:", m.Name)
	}
	if err := b.Send(ctx, "a@10.0.0.1", []byte("hello")); err != nil { // dials a if needed
		panic(err)
	}
	<-ha.got
	_ = b.Stop(ctx)
	_ = a.Stop(ctx)
	// Output:
	// member: a@10.0.0.1
	// member: b@10.0.0.2
	// a got "hello" from b@10.0.0.2
}
