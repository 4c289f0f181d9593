package nodal

import (
	"context"
	"errors"
	"fmt"

	"github.com/nodal-go/nodal/p2p"
)

// Service is the hook through which cluster services (registry, groups, rpc,
// heal) exchange frames with the same service on other nodes. A service
// attaches to a node by name with AttachService and sends with SendService.
//
// Concurrency: HandleFrame is called on the p2p reader goroutine of the
// sending node, in the order that node sent the frames, and must not block
// (hand work to the service's own goroutine). Frames from different nodes may
// arrive concurrently. data belongs to the service after the call.
type Service interface {
	HandleFrame(from string, data []byte)
}

// NodeEventService is a Service that also wants node-up and node-down
// events. NodeUp comes before any frame of the new connection, NodeDown after
// the last one. Both are called on p2p goroutines and must not block.
type NodeEventService interface {
	Service
	NodeUp(node string, hidden bool)
	NodeDown(node string, reason error)
}

// maxServiceName bounds a service's name.
const maxServiceName = 64

// AttachService attaches s under name; a name can be attached once.
func (n *Node) AttachService(name string, s Service) error {
	if name == "" || len(name) > maxServiceName || s == nil {
		return fmt.Errorf("%w: service needs a name of 1..%d bytes and a handler", ErrBadOption, maxServiceName)
	}
	n.servicesMu.Lock()
	defer n.servicesMu.Unlock()
	if _, ok := n.services[name]; ok {
		return fmt.Errorf("%w: service %q already attached", ErrBadOption, name)
	}
	m := make(map[string]Service, len(n.services)+1)
	for k, v := range n.services {
		m[k] = v
	}
	m[name] = s
	n.services = m
	return nil
}

// DetachService removes the service attached as name.
func (n *Node) DetachService(name string) {
	n.servicesMu.Lock()
	defer n.servicesMu.Unlock()
	m := make(map[string]Service, len(n.services))
	for k, v := range n.services {
		if k != name {
			m[k] = v
		}
	}
	n.services = m
}

func (n *Node) service(name string) Service {
	n.servicesMu.RLock()
	defer n.servicesMu.RUnlock()
	return n.services[name]
}

func (n *Node) eachService(f func(Service)) {
	n.servicesMu.RLock()
	m := n.services
	n.servicesMu.RUnlock()
	for _, name := range sortedKeys(m) {
		f(m[name])
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// SendService sends data to the service attached as name on node. It blocks
// only while node's outbound queue is full, bounded by ctx. An unreachable
// node gives an error wrapping ErrNoConnection.
func (n *Node) SendService(ctx context.Context, node, name string, data []byte) error {
	d, err := n.distributed()
	if err != nil {
		return err
	}
	b := make([]byte, 0, 2+len(name)+len(data)+2)
	b = append(b, dService)
	b = appendString(b, name)
	b = append(b, data...)
	if err := d.host.Send(ctx, node, b); err != nil {
		if errors.Is(err, p2p.ErrNoConnection) {
			return fmt.Errorf("%w: %s", ErrNoConnection, node)
		}
		return err
	}
	return nil
}

func (n *Node) handleServiceFrame(from string, dec *decoder) error {
	name := dec.string()
	if dec.err != nil {
		return dec.err
	}
	s := n.service(name)
	if s == nil {
		return fmt.Errorf("%w: no service %q attached", ErrCodec, name)
	}
	rest := dec.b[dec.off:]
	data := make([]byte, len(rest))
	copy(data, rest)
	s.HandleFrame(from, data)
	return nil
}
