package registry

import (
	"fmt"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/crdt"
	"github.com/nodal-go/nodal/internal/replica"
	"github.com/nodal-go/nodal/internal/wire"
)

// conflictNotice tells another claimant's owner that a conflict was
// resolved with no winner (NotifyAll) and that the sender removed its
// claim: the receiver removes its own too, unless its claim is gone or
// re-resolving the two claims says otherwise. Without it, a claim removed
// before the other owner saw it would leave the other claim standing.
type conflictNotice struct {
	name      string
	from      crdt.Dot // the sender's claim
	fromClaim heldClaim
	to        crdt.Dot // the receiver's claim
}

func appendDot(b []byte, d crdt.Dot) []byte {
	b = wire.AppendString(b, d.Replica.Name)
	b = wire.AppendUvarint(b, d.Replica.Epoch)
	return wire.AppendUvarint(b, d.Counter)
}

func readDot(dec *wire.Decoder) crdt.Dot {
	var d crdt.Dot
	d.Replica.Name = dec.Str()
	d.Replica.Epoch = dec.Uvarint()
	d.Counter = dec.Uvarint()
	return d
}

func (n conflictNotice) encode() []byte {
	b := wire.AppendString(nil, n.name)
	b = appendDot(b, n.from)
	b = regCodec{}.Append(b, n.fromClaim)
	return appendDot(b, n.to)
}

func decodeNotice(b []byte) (conflictNotice, error) {
	var n conflictNotice
	dec := wire.NewDecoder(b)
	name, k, err := nameCodec{}.Decode(b)
	if err != nil {
		return n, fmt.Errorf("registry: bad conflict notice: %w", err)
	}
	n.name = name
	dec = wire.NewDecoderAt(b, k)
	n.from = readDot(&dec)
	if dec.Err() == nil {
		var used int
		n.fromClaim, used, err = regCodec{}.Decode(dec.Rest())
		if err != nil {
			return n, fmt.Errorf("registry: bad conflict notice: %w", err)
		}
		dec = wire.NewDecoderAt(b, dec.Offset()+used)
	}
	n.to = readDot(&dec)
	if err := dec.Done(); err != nil {
		return n, fmt.Errorf("registry: bad conflict notice: %w", err)
	}
	return n, nil
}

// onNotice runs on the engine's goroutine.
func (r *Registry) onNotice(s *replica.State[string, heldClaim], from nodal.NodeRef, payload []byte) {
	n, err := decodeNotice(payload)
	if err != nil {
		log.Warnw("dropped a malformed conflict notice", "scope", r.scope, "from", from.String(), "err", err)
		return
	}
	c, ok := r.localOf(s, n.name)
	if !ok || r.dotOf(c) != n.to || n.from.Replica.Name != from.Name {
		return // our claim is gone already, or the notice is not about it
	}
	_, mine, _ := s.Map().Lookup(r.dotOf(c))
	claims := []Registration{n.fromClaim.reg(), mine.reg()}
	me := 1
	if r.dotOf(c).Compare(n.from) < 0 {
		claims[0], claims[1], me = claims[1], claims[0], 0
	}
	res, failed, why := resolve(r.table, r.defFunc, n.name, claims)
	if failed {
		r.resolverFailures.Add(1)
		log.Warnw("conflict resolved by the default resolver", "scope", r.scope, "name", n.name, "why", why)
	}
	if res.Winner == me {
		return
	}
	r.loseClaim(s, n.name, c, n.fromClaim.pid(), res.Action)
}

// loseClaim removes a local claim that lost a conflict and applies the
// action to its process.
func (r *Registry) loseClaim(s *replica.State[string, heldClaim], name string, c localClaim, other nodal.Pid, a Action) {
	r.drop(s, name, c, ReasonConflict)
	r.conflicts.Add(1)
	s.CountConflict(other.Node)
	if a == Notify {
		_ = r.n.Send(r.pidOf(c), NameConflict{Name: name, Winner: other})
	} else {
		r.n.Exit(r.pidOf(c), &ConflictError{Name: name, Winner: other})
	}
}
