package supervisor

import (
	"errors"
	"fmt"
	"sync"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/internal/wire"
)

// The management calls travel between nodes (OTP's
// supervisor:which_children({Sup, Node}) and friends) as two types
// registered with the node's codec, each encoding itself
// (encoding.BinaryAppender and encoding.BinaryUnmarshaler) with
// internal/wire: a request and the one reply. A Child holds Go functions, so
// StartChild stays on the supervisor's node; StartDynamicChild's args
// travel as bytes encoded by the caller node's codec.

// Names of the wire types in the codec. They are part of the protocol.
const (
	requestTypeName = "nodal/supervisor.request"
	replyTypeName   = "nodal/supervisor.reply"
)

// Operations of a request. Their numbers are part of the wire protocol:
// append only.
const (
	opStartDynamic byte = iota + 1
	opTerminate
	opRestart
	opDelete
	opWhich
	opCount
	opStop
	opStartChild // never leaves its node: a Child holds Go functions
)

// request is a management call. Only the fields of its op are set.
type request struct {
	op    byte
	id    string    // opTerminate (static), opRestart, opDelete
	pid   nodal.Pid // opTerminate by pid
	byPid bool      // opTerminate: by pid rather than id
	spec  Child     // opStartChild
	// opStartDynamic: args is the value from a caller on the supervisor's
	// node; from another node encoded is true and raw holds the args in
	// the caller's codec.
	args    any
	raw     []byte
	encoded bool
}

// reply is the answer to every request.
type reply struct {
	pid      nodal.Pid
	err      error
	children []ChildInfo
	count    ChildCount
}

// Error forms in a reply.
const (
	errNil      byte = iota // no error
	errChild                // *ChildError: id, pid, inner error
	errSentinel             // a known sentinel (by code), with the full text
	errText                 // anything else: its text (a *nodal.RemoteError)
)

// sentinels are the errors a management call can return whose identity
// survives the trip (errors.Is works on the caller's node). Their order is
// part of the wire protocol: append only.
var sentinels = []error{
	ErrChildNotFound, ErrChildRunning, ErrChildRestarting, ErrChildAlreadyStarted,
	ErrChildAlreadyPresent, ErrStartChild, ErrInvalidSpec, ErrWrongStrategy,
	ErrNotSupervisor, nodal.ErrNoProc, nodal.ErrStopped, nodal.ErrCodec,
}

// maxErrDepth bounds nested *ChildError on decode.
const maxErrDepth = 4

// minChildSize is the fewest bytes a ChildInfo takes on the wire: an empty
// id (1), a pid with an empty node (3), restarting (1), type (1).
const minChildSize = 6

// sentinelError is a sentinel error that arrived from another node with its
// full text (the text may add detail to the sentinel's own).
type sentinelError struct {
	text     string
	sentinel error
}

func (e *sentinelError) Error() string { return e.text }
func (e *sentinelError) Unwrap() error { return e.sentinel }

// AppendBinary implements encoding.BinaryAppender: the codec calls it when
// the request goes to another node.
func (r request) AppendBinary(b []byte) ([]byte, error) {
	switch r.op {
	case opStartChild:
		return b, errors.New("a child spec holds Go functions and cannot go to another node: call StartChild on the supervisor's node")
	case opStartDynamic:
		if !r.encoded {
			return b, errors.New("StartDynamicChild args must be encoded by the caller's codec to leave the node")
		}
		return wire.AppendBytes(append(b, r.op), r.raw), nil
	case opTerminate:
		b = wire.AppendString(append(b, r.op), r.id)
		b = appendPid(b, r.pid)
		return wire.AppendBool(b, r.byPid), nil
	case opRestart, opDelete:
		return wire.AppendString(append(b, r.op), r.id), nil
	case opWhich, opCount, opStop:
		return append(b, r.op), nil
	}
	return b, fmt.Errorf("unknown supervisor request %d", r.op)
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (r *request) UnmarshalBinary(data []byte) error {
	d := wire.NewDecoder(data)
	*r = request{op: d.Byte()}
	switch r.op {
	case opStartDynamic:
		r.raw = append([]byte(nil), d.Bytes()...)
		r.encoded = true
	case opTerminate:
		r.id = d.Str()
		r.pid = readPid(&d)
		r.byPid = d.Bool()
	case opRestart, opDelete:
		r.id = d.Str()
	case opWhich, opCount, opStop:
	default:
		d.Fail("unknown supervisor request")
	}
	return d.Done()
}

// AppendBinary implements encoding.BinaryAppender.
func (r reply) AppendBinary(b []byte) ([]byte, error) {
	b = appendPid(b, r.pid)
	b = appendErr(b, r.err, 0)
	b = wire.AppendUvarint(b, uint64(len(r.children)))
	for _, ch := range r.children {
		b = wire.AppendString(b, ch.ID)
		b = appendPid(b, ch.Pid)
		b = wire.AppendBool(b, ch.Restarting)
		b = wire.AppendUvarint(b, uint64(ch.Type))
	}
	for _, n := range []int{r.count.Specs, r.count.Active, r.count.Supervisors, r.count.Workers} {
		b = wire.AppendUvarint(b, uint64(n))
	}
	return b, nil
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler. It allocates no
// more children than data can hold.
func (r *reply) UnmarshalBinary(data []byte) error {
	d := wire.NewDecoder(data)
	*r = reply{}
	r.pid = readPid(&d)
	r.err = readErr(&d, 0)
	n := d.Count(minChildSize)
	if n > 0 {
		r.children = make([]ChildInfo, 0, n)
	}
	for range n {
		var ch ChildInfo
		ch.ID = d.Str()
		ch.Pid = readPid(&d)
		ch.Restarting = d.Bool()
		ch.Type = ChildType(d.Uvarint())
		if d.Err() != nil {
			break
		}
		r.children = append(r.children, ch)
	}
	r.count.Specs = int(d.Uvarint())
	r.count.Active = int(d.Uvarint())
	r.count.Supervisors = int(d.Uvarint())
	r.count.Workers = int(d.Uvarint())
	if err := d.Done(); err != nil {
		*r = reply{}
		return err
	}
	return nil
}

func appendPid(b []byte, p nodal.Pid) []byte {
	return wire.AppendIdent(b, p.Node, p.ID, p.Incarnation)
}

func readPid(d *wire.Decoder) nodal.Pid {
	node, id, inc := d.Ident()
	return nodal.Pid{Node: node, ID: id, Incarnation: inc}
}

func appendErr(b []byte, err error, depth int) []byte {
	if err == nil {
		return append(b, errNil)
	}
	if ce, ok := err.(*ChildError); ok && depth < maxErrDepth {
		b = wire.AppendString(append(b, errChild), ce.ID)
		b = appendPid(b, ce.Pid)
		return appendErr(b, ce.Err, depth+1)
	}
	for i, s := range sentinels {
		if errors.Is(err, s) {
			b = append(b, errSentinel, byte(i))
			return wire.AppendString(b, err.Error())
		}
	}
	return wire.AppendString(append(b, errText), err.Error())
}

func readErr(d *wire.Decoder, depth int) error {
	switch form := d.Byte(); form {
	case errNil:
		return nil
	case errChild:
		if depth >= maxErrDepth {
			d.Fail("supervisor error nested too deep")
			return nil
		}
		id := d.Str()
		pid := readPid(d)
		return &ChildError{ID: id, Pid: pid, Err: readErr(d, depth+1)}
	case errSentinel:
		code := d.Byte()
		text := d.Str()
		if int(code) >= len(sentinels) {
			return &nodal.RemoteError{Text: text} // a newer node's error: keep its words
		}
		return &sentinelError{text: text, sentinel: sentinels[code]}
	case errText:
		return &nodal.RemoteError{Text: d.Str()}
	default:
		d.Fail("bad supervisor error form")
		return nil
	}
}

// registered remembers the codecs that know the request and reply types.
var registered sync.Map // *nodal.Codec -> struct{}

func init() { registerTypes(nodal.DefaultCodec) }

// registerTypes registers the request and reply types with c, once. Start
// does it for the supervisor's node and every management call for the
// caller's node, so a node with its own Config.Codec needs no set-up.
// Registration cannot fail unless another type took the names, a
// programming error that makes the management calls to and from that node
// fail (undecodable frames) and is logged.
func registerTypes(c *nodal.Codec) {
	if _, ok := registered.Load(c); ok {
		return
	}
	for _, t := range []struct {
		name string
		v    any
	}{{requestTypeName, request{}}, {replyTypeName, reply{}}} {
		if err := c.Register(t.name, t.v); err != nil {
			log.Errorw("supervisor wire type not registered", "type", t.name, "error", err)
			return
		}
	}
	registered.Store(c, struct{}{})
}
