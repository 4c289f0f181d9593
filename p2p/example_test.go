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
// address, the full mesh connects them, and a frame goes from a to b.
func Example() {
	net := p2ptest.New()
	defer net.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	a, err := p2p.Start(ctx, p2p.Config{
		Name: "a@10.0.0.1", Cookie: "example-cookie", Profile: p2p.ProfileLocal, Network: net,
	}, &printer{self: "a", got: make(chan struct{}, 1)})
	if err != nil {
		panic(err)
	}
	hb := &printer{self: "b", got: make(chan struct{}, 1)}
	b, err := p2p.Start(ctx, p2p.Config{
		Name: "b@10.0.0.2", Cookie: "example-cookie", Profile: p2p.ProfileLocal, Network: net,
		Seeds: []string{a.GossipAddr()},
	}, hb)
	if err != nil {
		panic(err)
	}
	for _, m := range a.Members() {
		fmt.Println("member:", m.Name)
	}
	if err := a.Send(ctx, "b@10.0.0.2", []byte("hello")); err != nil { // dials b if needed
		panic(err)
	}
	<-hb.got
	_ = b.Stop(ctx)
	_ = a.Stop(ctx)
	// Output:
	// member: a@10.0.0.1
	// member: b@10.0.0.2
	// b got "hello" from a@10.0.0.1
}
