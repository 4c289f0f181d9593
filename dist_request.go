package nodal

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/nodal-go/nodal/p2p"
)

type pendingReq struct {
	node    string
	ch      chan any  // receives a Pid or an error
	onReply func(any) // run on the reader goroutine before ch is sent to
}

func (d *dist) newPending(node string, onReply func(any)) (uint64, chan any) {
	ch := make(chan any, 1)
	d.reqMu.Lock()
	d.nextReq++
	req := d.nextReq
	d.pending[req] = &pendingReq{node: node, ch: ch, onReply: onReply}
	d.reqMu.Unlock()
	return req, ch
}

func (d *dist) dropPending(req uint64) {
	d.reqMu.Lock()
	delete(d.pending, req)
	d.reqMu.Unlock()
}

func (d *dist) await(ctx context.Context, req uint64, ch chan any) (any, error) {
	select {
	case v := <-ch:
		if err, ok := v.(error); ok {
			return nil, err
		}
		return v, nil
	case <-ctx.Done():
		d.dropPending(req)
		return nil, ctxError(ctx.Err())
	case <-d.ctx.Done():
		d.dropPending(req)
		return nil, ErrStopped
	}
}

func (d *dist) resolvePending(req uint64, v any) {
	d.reqMu.Lock()
	pr, ok := d.pending[req]
	delete(d.pending, req)
	d.reqMu.Unlock()
	if ok {
		if pr.onReply != nil {
			pr.onReply(v)
		}
		pr.ch <- v
	}
}

// failPending fails every request waiting on node.
func (d *dist) failPending(node string, reason error) {
	d.reqMu.Lock()
	var fail []*pendingReq
	for req, pr := range d.pending {
		if pr.node == node {
			fail = append(fail, pr)
			delete(d.pending, req)
		}
	}
	d.reqMu.Unlock()
	for _, pr := range fail {
		pr.ch <- fmt.Errorf("%w: %s went down (%v)", ErrNoConnection, node, reason)
	}
}

func (d *dist) handleReply(p p2p.Peer, kind byte, dec *decoder) error {
	req := dec.Uvarint()
	var v any
	switch kind {
	case dSpawnReply:
		if dec.Byte() == 1 {
			v = dec.pid()
		} else {
			v = &RemoteError{Text: dec.Str()}
		}
	case dWhereisReply:
		if dec.Byte() == 1 {
			v = dec.pid()
		} else {
			v = fmt.Errorf("%w: on %s", ErrNotRegistered, p.Name)
		}
	}
	if err := dec.done(); err != nil {
		return err
	}
	if re, ok := v.(*RemoteError); ok {
		if len(re.Text) > 0 && re.Text[0] == '?' {
			v = fmt.Errorf("%w: %s", ErrUnknownBehaviour, re.Text[1:])
		} else {
			v = fmt.Errorf("nodal: remote spawn failed: %s", re.Text)
		}
	}
	d.reqMu.Lock()
	pr, ok := d.pending[req]
	if ok && pr.node != p.Name {
		ok = false // a reply must come from the node asked
	}
	d.reqMu.Unlock()
	if ok {
		d.resolvePending(req, v)
	}
	return nil
}

// WhereisOn returns the pid registered as name on node (rpc:call(Node,
// erlang, whereis, [Name])). A name that is not registered there gives an
// error wrapping ErrNotRegistered.
func (n *Node) WhereisOn(ctx context.Context, node, name string) (Pid, error) {
	if err := ValidateNodeName(node); err != nil {
		return Pid{}, err
	}
	if node == n.name {
		pid, ok := n.Whereis(name)
		if !ok {
			return Pid{}, fmt.Errorf("%w: %s", ErrNotRegistered, name)
		}
		return pid, nil
	}
	d, err := n.distributed()
	if err != nil {
		return Pid{}, fmt.Errorf("%w: %s", ErrNoConnection, node)
	}
	if err := d.ensureConnected(ctx, node); err != nil {
		return Pid{}, err
	}
	req, wait := d.newPending(node, nil)
	b := binary.AppendUvarint([]byte{dWhereisReq}, req)
	b = appendString(b, name)
	if err := d.host.Send(ctx, node, b); err != nil {
		d.dropPending(req)
		return Pid{}, fmt.Errorf("nodal: whereis on %s: %w", node, err)
	}
	v, err := d.await(ctx, req, wait)
	if err != nil {
		return Pid{}, err
	}
	return v.(Pid), nil
}

// CallName calls the process registered as name on node
// (gen_server:call({Name, Node}, Req)).
func (p *Process) CallName(ctx context.Context, node, name string, req any) (any, error) {
	pid, err := p.node.WhereisOn(ctx, node, name)
	if err != nil {
		return nil, err
	}
	return p.Call(ctx, pid, req)
}

// CallName is Process.CallName from outside any process.
func (n *Node) CallName(ctx context.Context, node, name string, req any) (any, error) {
	pid, err := n.WhereisOn(ctx, node, name)
	if err != nil {
		return nil, err
	}
	return n.Call(ctx, pid, req)
}

// handleWhereisRequest answers another node's WhereisOn.
func (d *dist) handleWhereisRequest(p p2p.Peer, dec *decoder) error {
	req := dec.Uvarint()
	name := dec.Str()
	if err := dec.done(); err != nil {
		return err
	}
	pid, ok := d.n.Whereis(name)
	b := binary.AppendUvarint([]byte{dWhereisReply}, req)
	if ok {
		b = append(b, 1)
		b = appendPid(b, pid)
	} else {
		b = append(b, 0)
	}
	d.sendAsyncFrame(p.Name, b, nil)
	return nil
}
