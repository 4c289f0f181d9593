package supervisor

import (
	"context"
	"slices"
	"time"

	"github.com/nodal-go/nodal"
)

// RemoteStartTimeout bounds the remote spawn of one start of a Remote
// child, including the connection attempt: 10 s, more than
// nodal.AutoConnectTimeout (7 s), so that a node which is a live member but
// not connected yet gets its full connection attempt.
const RemoteStartTimeout = 10 * time.Second

// RemoteOption configures a Remote child.
type RemoteOption func(*remoteConfig)

type remoteConfig struct {
	failover []string
}

// Failover lets a Remote child start on another node when its own node is
// not connected: each start (the first, and every restart, such as the one
// after the child's node was lost with reason nodal.ReasonNoConnection)
// runs on the first node, in the order [node, nodes...], that is this node
// or connected to it (nodal.Node.Nodes), and on node itself when none is.
// The order is a preference: a child that failed over returns to an
// earlier node at its next restart if that node is back, never by moving a
// running child.
func Failover(nodes ...string) RemoteOption {
	return func(c *remoteConfig) { c.failover = append(c.failover, nodes...) }
}

// Remote returns the Child that runs on another node (OTP's
// start_worker(Node) pattern): its start spawns the nodal.Behaviour
// registered as behaviour on node with args, linked to the supervisor
// (Process.SpawnOn with nodal.WithLink), bounded by RemoteStartTimeout.
// args travel through the codec, so they must be encodable. The child is
// restarted by its Restart type like any other, also when its node is lost:
// its exit reason is then nodal.ReasonNoConnection, an abnormal exit, so a
// Permanent or Transient child is restarted, on node again unless Failover
// places it elsewhere. A restart on a node that cannot be reached fails
// and is retried as any failed restart is, counting towards the
// supervisor's intensity.
//
// No process is doubled by a restart after a lost node. The link between
// the child and the supervisor breaks on both sides: on the child's node
// the child gets the exit signal noconnection too, so a child that does
// not trap exits dies with it, as in Erlang. A child that traps exits may
// live on, cut off; the supervisor remembers it and kills it (reason kill,
// which cannot be trapped) as soon as its node connects again. Until then
// it cannot reach the supervisor's side of the cluster, and nothing there
// can reach it.
//
// The returned Child has Restart Permanent, Type ChildWorker and the
// default Shutdown; change its fields to taste.
func Remote(id, node, behaviour string, args any, opts ...RemoteOption) Child {
	var cfg remoteConfig
	for _, o := range opts {
		o(&cfg)
	}
	nodes := slices.Concat([]string{node}, cfg.failover)
	return Child{
		ID: id,
		Start: func(p *nodal.Process) (nodal.Pid, error) {
			ctx, cancel := context.WithTimeout(p.Context(), RemoteStartTimeout)
			defer cancel()
			return p.SpawnOn(ctx, place(p.Node(), nodes), behaviour, args, nodal.WithLink())
		},
	}
}

// place returns the first of nodes that is n itself or connected to n, or
// nodes[0] when none is.
func place(n *nodal.Node, nodes []string) string {
	if len(nodes) == 1 {
		return nodes[0]
	}
	connected := n.Nodes()
	for _, node := range nodes {
		if node == n.Name() || slices.Contains(connected, node) {
			return node
		}
	}
	return nodes[0]
}
