package nodal

import (
	"encoding/binary"
	"errors"
)

// Supervisor management calls travel between nodes (OTP's
// supervisor:which_children({Sup, Node}) and friends): their requests and
// the reply are built-in codec kinds. A ChildSpec holds Go functions, so
// StartChild stays on the supervisor's node; StartDynamicChild's args go
// through the codec like any message.

// Operations of tagSupRequest.
const (
	supOpStartDynamic byte = iota + 1
	supOpTerminate
	supOpRestart
	supOpDelete
	supOpWhich
	supOpCount
	supOpStop
)

// Error forms in a supReply.
const (
	supErrNil      byte = iota // no error
	supErrChild                // *ChildError: id, pid, inner error
	supErrSentinel             // a known sentinel (by code), with the full text
	supErrText                 // anything else: its text (a *RemoteError)
)

// supSentinels are the errors a management call can return whose identity
// survives the trip (errors.Is works on the caller's node). Their order is
// part of the wire protocol: append only.
var supSentinels = []error{
	ErrChildNotFound, ErrChildRunning, ErrChildRestarting, ErrChildAlreadyStarted,
	ErrChildAlreadyPresent, ErrStartChild, ErrInvalidSpec, ErrWrongStrategy,
	ErrNotSupervisor, ErrNoProc, ErrStopped,
}

// maxSupErrDepth bounds nested *ChildError on decode.
const maxSupErrDepth = 4

// sentinelError is a sentinel error that arrived from another node with its
// full text (the text may add detail to the sentinel's own).
type sentinelError struct {
	text     string
	sentinel error
}

func (e *sentinelError) Error() string { return e.text }
func (e *sentinelError) Unwrap() error { return e.sentinel }

// appendSupervisor encodes the supervisor management kinds; ok is false for
// any other value.
func (c *Codec) appendSupervisor(b []byte, v any, depth int) (_ []byte, ok bool, _ error) {
	switch x := v.(type) {
	case supStartChild:
		return b, true, &CodecError{Type: "nodal.ChildSpec", Err: errors.New(
			"a child spec holds Go functions and cannot go to another node: call StartChild on the supervisor's node")}
	case supStartDynamic:
		if depth >= maxValueDepth {
			return b, true, &CodecError{Type: "nodal.supStartDynamic", Err: errors.New("nested too deep")}
		}
		b, err := c.appendValue(append(b, tagSupRequest, supOpStartDynamic), x.args, depth+1)
		return b, true, err
	case supTerminate:
		b = appendString(append(b, tagSupRequest, supOpTerminate), x.id)
		b = appendPid(b, x.pid)
		return appendBool(b, x.byPid), true, nil
	case supRestart:
		return appendString(append(b, tagSupRequest, supOpRestart), x.id), true, nil
	case supDelete:
		return appendString(append(b, tagSupRequest, supOpDelete), x.id), true, nil
	case supWhich:
		return append(b, tagSupRequest, supOpWhich), true, nil
	case supCount:
		return append(b, tagSupRequest, supOpCount), true, nil
	case supStop:
		return append(b, tagSupRequest, supOpStop), true, nil
	case supReply:
		b = appendPid(append(b, tagSupReply), x.pid)
		b = appendSupErr(b, x.err, 0)
		b = binary.AppendUvarint(b, uint64(len(x.children)))
		for _, ch := range x.children {
			b = appendString(b, ch.ID)
			b = appendPid(b, ch.Pid)
			b = appendBool(b, ch.Restarting)
			b = binary.AppendUvarint(b, uint64(ch.Type))
		}
		for _, n := range []int{x.count.Specs, x.count.Active, x.count.Supervisors, x.count.Workers} {
			b = binary.AppendUvarint(b, uint64(n))
		}
		return b, true, nil
	}
	return b, false, nil
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendSupErr(b []byte, err error, depth int) []byte {
	if err == nil {
		return append(b, supErrNil)
	}
	if ce, ok := err.(*ChildError); ok && depth < maxSupErrDepth {
		b = appendString(append(b, supErrChild), ce.ID)
		b = appendPid(b, ce.Pid)
		return appendSupErr(b, ce.Err, depth+1)
	}
	for i, s := range supSentinels {
		if errors.Is(err, s) {
			b = append(b, supErrSentinel, byte(i))
			return appendString(b, err.Error())
		}
	}
	return appendString(append(b, supErrText), err.Error())
}

func (c *Codec) decodeSupRequest(d *decoder) any {
	switch op := d.byte(); op {
	case supOpStartDynamic:
		if d.depth >= maxValueDepth {
			d.fail("value nested too deep")
			return nil
		}
		d.depth++
		args := c.decodeValue(d)
		d.depth--
		return supStartDynamic{args: args}
	case supOpTerminate:
		id := d.string()
		pid := d.pid()
		return supTerminate{id: id, pid: pid, byPid: d.bool()}
	case supOpRestart:
		return supRestart{id: d.string()}
	case supOpDelete:
		return supDelete{id: d.string()}
	case supOpWhich:
		return supWhich{}
	case supOpCount:
		return supCount{}
	case supOpStop:
		return supStop{}
	default:
		d.fail("unknown supervisor request")
		return nil
	}
}

func (d *decoder) supReply() any {
	var r supReply
	r.pid = d.pid()
	r.err = d.supErr(0)
	n := d.uvarint()
	// Each child takes at least 5 bytes: never allocate beyond the input.
	if d.err == nil && n > uint64(len(d.b)-d.off)/5 {
		d.fail("child count exceeds input")
	}
	if d.err != nil {
		return nil
	}
	if n > 0 {
		r.children = make([]ChildInfo, 0, n)
	}
	for range n {
		var ch ChildInfo
		ch.ID = d.string()
		ch.Pid = d.pid()
		ch.Restarting = d.bool()
		ch.Type = ChildType(d.uvarint())
		if d.err != nil {
			return nil
		}
		r.children = append(r.children, ch)
	}
	r.count.Specs = int(d.uvarint())
	r.count.Active = int(d.uvarint())
	r.count.Supervisors = int(d.uvarint())
	r.count.Workers = int(d.uvarint())
	if d.err != nil {
		return nil
	}
	return r
}

func (d *decoder) supErr(depth int) error {
	switch form := d.byte(); form {
	case supErrNil:
		return nil
	case supErrChild:
		if depth >= maxSupErrDepth {
			d.fail("supervisor error nested too deep")
			return nil
		}
		id := d.string()
		pid := d.pid()
		return &ChildError{ID: id, Pid: pid, Err: d.supErr(depth + 1)}
	case supErrSentinel:
		code := d.byte()
		text := d.string()
		if int(code) >= len(supSentinels) {
			return &RemoteError{Text: text} // a newer node's error: keep its words
		}
		return &sentinelError{text: text, sentinel: supSentinels[code]}
	case supErrText:
		return &RemoteError{Text: d.string()}
	default:
		d.fail("bad supervisor error form")
		return nil
	}
}

func (d *decoder) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail("bad bool")
	return false
}
