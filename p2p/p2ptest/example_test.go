package p2ptest_test

import (
	"fmt"

	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// Two memberlist transports on a simulated network: a packet gets through,
// is lost across a partition, and gets through again after Heal.
func Example() {
	net := p2ptest.New(p2ptest.WithSeed(1))
	defer net.Close()

	a, _ := net.NewTransport("a@10.0.0.1", "")
	b, _ := net.NewTransport("b@10.0.0.2", "")
	addrB, _ := net.GossipAddr("b@10.0.0.2")
	fmt.Println("b listens on", addrB)

	send := func() {
		_, _ = a.WriteTo([]byte("ping"), addrB)
		select {
		case p := <-b.PacketCh():
			fmt.Printf("b got %q from %s\n", p.Buf, p.From)
		default:
			fmt.Println("b got nothing")
		}
	}
	send()
	net.Partition("a@10.0.0.1", "b@10.0.0.2")
	send()
	net.Heal()
	send()

	s := net.Stats()
	fmt.Printf("delivered %d, dropped %d\n", s.Delivered, s.Dropped())
	// Output:
	// b listens on 10.0.0.2:20000
	// b got "ping" from 10.0.0.1:20000
	// b got nothing
	// b got "ping" from 10.0.0.1:20000
	// delivered 2, dropped 1
}

// A link limited to 1,500 bytes per second one way: the bucket (one
// packet) lets the first packet through at once; the next ones would
// wait more than PacketQueue, so they are dropped, as by a full router
// queue. The other way has no limit.
func ExampleNetwork_SetBandwidth() {
	net := p2ptest.New()
	defer net.Close()
	a, _ := net.NewTransport("a@10.0.0.1", "")
	b, _ := net.NewTransport("b@10.0.0.2", "")
	net.SetBandwidth("a@10.0.0.1", "b@10.0.0.2", 1500)
	addrA, _ := net.GossipAddr("a@10.0.0.1")
	addrB, _ := net.GossipAddr("b@10.0.0.2")
	for range 3 {
		_, _ = a.WriteTo(make([]byte, 1000), addrB)
		_, _ = b.WriteTo(make([]byte, 1000), addrA)
	}
	ab, ba := net.PairStats("a@10.0.0.1", "b@10.0.0.2"), net.PairStats("b@10.0.0.2", "a@10.0.0.1")
	fmt.Printf("a -> b: delivered %d, dropped by the limit %d\n", ab.Delivered, ab.DroppedBandwidth)
	fmt.Printf("b -> a: delivered %d, dropped by the limit %d\n", ba.Delivered, ba.DroppedBandwidth)
	// Output:
	// a -> b: delivered 1, dropped by the limit 2
	// b -> a: delivered 3, dropped by the limit 0
}
